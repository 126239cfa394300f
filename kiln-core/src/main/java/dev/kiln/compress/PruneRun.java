package dev.kiln.compress;

import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.train.TrainConfig;
import dev.kiln.train.TrainListener;
import dev.kiln.train.TrainRun;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * {@code kiln prune}: prune a trained model and, optionally, fine-tune it with the pruned weights held at zero, in
 * {@code rounds} steps of the cubic schedule (prune a little, fine-tune, prune more, ...). Fine-tuning is
 * {@link TrainRun#finetune}: the run's own data, optimizer and checkpoints. The result is a run folder whose
 * {@code model.safetensors} holds the pruned weights as zeros (so {@code kiln eval}, PyTorch and
 * {@link PruneMasks#fromZeros} read it as is) and says in its metadata how it was pruned.
 */
public final class PruneRun {
    private PruneRun() {}

    /** Metadata keys of a pruned checkpoint. */
    public static final String META_AMOUNT = "kiln.prune.amount", META_METHOD = "kiln.prune.method", META_SPARSITY = "kiln.prune.sparsity";

    /** How to prune: unstructured magnitude of {@code amount} in {@code scope}, or 2:4 (amount 0.5, one round). */
    public record Plan(double amount, Pruning.Scope scope, boolean twoOfFour, int rounds, int finetuneEpochs) {
        public Plan {
            if (!(amount > 0 && amount < 1)) throw new IllegalArgumentException("--amount must be in (0, 1), got " + amount);
            if (twoOfFour && amount != 0.5) throw new IllegalArgumentException("--structured 2:4 prunes exactly half (--amount 0.5), got " + amount);
            if (rounds < 1) throw new IllegalArgumentException("--rounds must be >= 1, got " + rounds);
            if (twoOfFour && rounds > 1) throw new IllegalArgumentException("--structured 2:4 is one pattern, pruned in one round (--rounds 1)");
            if (finetuneEpochs < 0) throw new IllegalArgumentException("--finetune-epochs must be >= 0, got " + finetuneEpochs);
            if (rounds > 1 && finetuneEpochs == 0) throw new IllegalArgumentException("--rounds > 1 needs --finetune-epochs >= 1 between the rounds");
        }

        /** Prunes {@code model} to this plan's amount at round {@code round}, returning the masks to hold. */
        PruneMasks prune(Model model, int round) {
            return twoOfFour ? Pruning.twoOfFour(model) : Pruning.magnitude(model, Pruning.scheduledAmount(amount, round, rounds), scope);
        }

        String method() { return twoOfFour ? "2:4" : "magnitude-" + scope.name().toLowerCase(Locale.ROOT).replace('_', '-'); }
    }

    /**
     * Prunes the trained {@code model} (its checkpoint's {@code metadata} is carried over) into {@code out}: with
     * fine-tuning, {@code finetune} is the run to repeat per round (its epochs are the fine-tuning epochs); without,
     * {@code finetune} may be null. Returns the pruned model file.
     */
    public static Path run(Model model, Map<String, String> metadata, Plan plan, TrainConfig finetune, Path out, PrintWriter log) throws IOException {
        Files.createDirectories(out);
        Path file = out.resolve("model.safetensors");
        if (plan.finetuneEpochs() == 0) {
            PruneMasks masks = plan.prune(model, 1);
            log.printf(Locale.ROOT, "kiln: pruned %s (%s): %.2f%% of %d weight tensors are zero%n",
                    masks.names(), plan.method(), 100 * masks.sparsity(), masks.names().size());
            Safetensors.write(file, model.stateDict(), pruneMetadata(metadata, plan, model));
            return file;
        }
        Map<String, Tensor> weights = model.stateDict();
        for (int round = 1; round <= plan.rounds(); round++) {
            int r = round;
            log.printf(Locale.ROOT, "kiln: round %d/%d: prune to %.1f%% (%s), then fine-tune %d epochs%n", r, plan.rounds(),
                    100 * (plan.twoOfFour() ? 0.5 : Pruning.scheduledAmount(plan.amount(), r, plan.rounds())), plan.method(), plan.finetuneEpochs());
            TrainRun.finetune(finetune.withOutDir(out), log, TrainListener.NONE,
                    new TrainRun.StartFrom(weights, m -> plan.prune(m, r)::apply, Map.of(META_METHOD, plan.method(),
                            META_AMOUNT, Double.toString(plan.twoOfFour() ? 0.5 : plan.amount()))));
            weights = Safetensors.read(file).tensors();
        }
        model.loadStateDict(weights);
        Safetensors.Contents saved = Safetensors.read(file);
        Safetensors.write(file, saved.tensors(), pruneMetadata(saved.metadata(), plan, model));
        log.printf(Locale.ROOT, "kiln: %.2f%% of the prunable weights are zero after fine-tuning; wrote %s%n", 100 * Pruning.sparsity(model), file);
        return file;
    }

    /**
     * How a resumed run of a pruned model goes on (its checkpoint carries {@link #META_METHOD}): with masks made from the
     * checkpoint's zeros re-applied after every step, so the pruned weights stay pruned; null for a run that is not
     * pruned.
     */
    public static TrainRun.StartFrom resumedFrom(Map<String, String> checkpointMetadata) {
        String method = checkpointMetadata.get(META_METHOD);
        if (method == null) return null;
        Map<String, String> carried = new LinkedHashMap<>();
        carried.put(META_METHOD, method);
        if (checkpointMetadata.containsKey(META_AMOUNT)) carried.put(META_AMOUNT, checkpointMetadata.get(META_AMOUNT));
        return new TrainRun.StartFrom(null, m -> PruneMasks.fromZeros(m)::apply, carried);
    }

    private static Map<String, String> pruneMetadata(Map<String, String> metadata, Plan plan, Model model) {
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put(META_METHOD, plan.method());
        meta.put(META_AMOUNT, Double.toString(plan.twoOfFour() ? 0.5 : plan.amount()));
        meta.put(META_SPARSITY, String.format(Locale.ROOT, "%.6f", Pruning.sparsity(model)));
        return meta;
    }
}
