package dev.kiln.train;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.amp.GradScaler;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Layer;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.ParamGroup;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A full training checkpoint: everything a run needs to go on exactly where it stopped, in one safetensors file.
 * <ul>
 * <li>tensors: the model's state dict under its own names (as {@link TrainRun#saveCheckpoint}, so PyTorch reads them),
 *     and each parameter's optimizer state under {@code optimizer.<param name>.<state>} (PyTorch's state names:
 *     {@code exp_avg}, {@code exp_avg_sq}, {@code momentum_buffer});</li>
 * <li>metadata: the position ({@code kiln.epoch}, {@code kiln.step} within it, {@code kiln.batches} per epoch), the
 *     epoch's running loss sum, the random state (the {@link Generator}'s seed and counter; the data order is a pure
 *     function of the shuffle seed and the epoch, so the step is the data position), the optimizer's step counts and
 *     hyperparameters, the learning rate, the loss scaler, the metrics so far and the run's configuration
 *     ({@code kiln.config.*}).</li>
 * </ul>
 * A run keeps them in {@code <run>/checkpoints/step-<global step>.safetensors}. Each file is written to a temporary
 * name and renamed into place ({@link Safetensors#write}), so a file under its final name is always whole, and since
 * it holds the metrics too, one rename commits the whole checkpoint. The newest file that reads is the one to resume.
 */
public final class TrainCheckpoint {
    private TrainCheckpoint() {}

    /** The folder of a run that holds its checkpoints. */
    public static final String DIR = "checkpoints";
    /** The prefix of the optimizer state tensors. */
    public static final String OPTIMIZER = "optimizer.";
    static final String META_STEP = "kiln.step", META_BATCHES = "kiln.batches", META_CONFIG = "kiln.config.";

    /** Where a run stands: epoch (1-based) and steps done in it; {@code step == batches} means the epoch finished. */
    record Position(int epoch, int step, int batches, double lossSum, int samples) {
        long globalStep() { return (long) (epoch - 1) * batches + step; }

        boolean epochDone() { return step == batches; }
    }

    /** The training state a checkpoint is made from, or restored into. */
    record State(Layer model, Optimizer optimizer, Generator generator, GradScaler scaler) {}

    /** Where a resumed run goes on: the first epoch to run and, when the checkpoint was written inside it, where in it. */
    record Resumed(int firstEpoch, Trainer.Start start) {}

    /**
     * Loads {@code resume} into a run about to continue: the model's tensors and the training state, the epochs so far
     * (appended to {@code history}). {@code batches} is what this run's data gives per epoch; a checkpoint written with
     * another count is refused, {@code perEpoch} naming the unit and the data ("batches per epoch, this data").
     */
    static Resumed resume(Found resume, State state, List<EpochStats> history, int batches, String perEpoch, java.io.PrintWriter log) {
        state.model().loadStateDict(modelTensors(resume.contents().tensors()));
        restore(resume.contents(), state);
        Position p = position(resume.contents().metadata());
        history.addAll(history(resume.contents().metadata()));
        if (p.batches() != batches) throw new IllegalArgumentException(resume.file() + " was written with " + p.batches() + " " + perEpoch + " gives " + batches);
        log.printf(Locale.ROOT, "kiln: resuming from %s: epoch %d, step %d of %d%n", resume.file(), p.epoch(), p.step(), p.batches());
        return p.epochDone() ? new Resumed(p.epoch() + 1, null) : new Resumed(p.epoch(), new Trainer.Start(p.epoch() - 1, p.step(), p.lossSum(), p.samples()));
    }

    /** Writes checkpoint {@code step-<global step>} under {@code runDir/checkpoints}, then deletes all but the newest {@code keep}. */
    static Path write(Path runDir, State s, Position at, Map<String, String> modelMeta, Map<String, String> config, long shuffleSeed,
                      List<EpochStats> history, int keep) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>(s.model().stateDict());
        Map<String, String> meta = new LinkedHashMap<>(modelMeta);
        meta.put("kiln.checkpoint", "1");
        meta.put(TrainRun.META_EPOCH, Integer.toString(at.epoch()));
        meta.put(META_STEP, Integer.toString(at.step()));
        meta.put(META_BATCHES, Integer.toString(at.batches()));
        meta.put("kiln.global_step", Long.toString(at.globalStep()));
        meta.put("kiln.loss_sum", Double.toString(at.lossSum()));
        meta.put("kiln.samples", Integer.toString(at.samples()));
        meta.put("kiln.generator.seed", Long.toString(s.generator().seed()));
        meta.put("kiln.generator.counter", Long.toString(s.generator().counter()));
        meta.put("kiln.data.shuffle_seed", Long.toString(shuffleSeed));
        if (s.scaler() != null) {
            meta.put("kiln.scaler.scale", Double.toString(s.scaler().scale()));
            meta.put("kiln.scaler.clean_steps", Integer.toString(s.scaler().cleanSteps()));
        }
        putOptimizer(s.model(), s.optimizer(), tensors, meta);
        meta.put("kiln.metrics", history.stream().map(EpochStats::csv).collect(Collectors.joining("\n")));
        meta.putAll(config);
        Path file = runDir.resolve(DIR).resolve(String.format(Locale.ROOT, "step-%09d.safetensors", at.globalStep()));
        Safetensors.write(file, tensors, meta);
        prune(runDir.resolve(DIR), keep);
        return file;
    }

    private static void putOptimizer(Layer model, Optimizer opt, Map<String, Tensor> tensors, Map<String, String> meta) {
        StringBuilder lrs = new StringBuilder(), decays = new StringBuilder();
        for (ParamGroup g : opt.groups()) {
            lrs.append(lrs.isEmpty() ? "" : ",").append(g.lr());
            decays.append(decays.isEmpty() ? "" : ",").append(g.weightDecay());
        }
        meta.put("kiln.optimizer.class", opt.getClass().getSimpleName());
        meta.put("kiln.optimizer.lr", lrs.toString());
        meta.put("kiln.optimizer.weight_decay", decays.toString());
        new java.util.TreeMap<>(opt.hyperparameters()).forEach((k, v) -> meta.put("kiln.optimizer." + k, Double.toString(v)));
        for (var e : model.namedParameters().entrySet()) {
            Optimizer.ParamState ps = opt.exportState(e.getValue());
            // sorted: an optimizer's Map.of has no fixed order, and the file should be the same bytes for the same state
            new java.util.TreeMap<>(ps.tensors()).forEach((k, t) -> tensors.put(OPTIMIZER + e.getKey() + "." + k, t));
            new java.util.TreeMap<>(ps.counts()).forEach((k, n) -> meta.put(OPTIMIZER + e.getKey() + "." + k, Long.toString(n)));
        }
    }

    /** Restores the optimizer, generator and scaler from a checkpoint into {@code s}, whose model already holds its tensors. */
    static void restore(Safetensors.Contents c, State s) {
        Map<String, String> meta = c.metadata();
        for (var e : s.model().namedParameters().entrySet()) {
            String prefix = OPTIMIZER + e.getKey() + ".";
            Map<String, Tensor> ts = new HashMap<>();
            Map<String, Long> counts = new HashMap<>();
            c.tensors().forEach((k, t) -> { if (k.startsWith(prefix) && !k.substring(prefix.length()).contains(".")) ts.put(k.substring(prefix.length()), t); });
            meta.forEach((k, v) -> { if (k.startsWith(prefix) && !k.substring(prefix.length()).contains(".")) counts.put(k.substring(prefix.length()), Long.parseLong(v)); });
            s.optimizer().importState(e.getValue(), new Optimizer.ParamState(ts, counts));
        }
        s.generator().restore(Long.parseLong(require(meta, "kiln.generator.counter")));
        if (s.scaler() != null && meta.containsKey("kiln.scaler.scale")) {
            s.scaler().restore(Double.parseDouble(meta.get("kiln.scaler.scale")), Integer.parseInt(meta.get("kiln.scaler.clean_steps")));
        }
    }

    /** The model's tensors of a checkpoint (without the optimizer's). */
    static Map<String, Tensor> modelTensors(Map<String, Tensor> all) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        all.forEach((k, t) -> { if (!k.startsWith(OPTIMIZER)) out.put(k, t); });
        return out;
    }

    static Position position(Map<String, String> meta) {
        return new Position(Integer.parseInt(require(meta, TrainRun.META_EPOCH)), Integer.parseInt(require(meta, META_STEP)),
                Integer.parseInt(require(meta, META_BATCHES)), Double.parseDouble(require(meta, "kiln.loss_sum")),
                Integer.parseInt(require(meta, "kiln.samples")));
    }

    /** The epochs finished before the checkpoint, as its metrics say. */
    static List<EpochStats> history(Map<String, String> meta) {
        List<EpochStats> out = new ArrayList<>();
        String csv = meta.getOrDefault("kiln.metrics", "");
        for (String line : csv.split("\n")) {
            if (line.isBlank()) continue;
            String[] f = line.split(",");
            out.add(new EpochStats(Integer.parseInt(f[0]), Double.parseDouble(f[1]), Double.parseDouble(f[2]), Double.parseDouble(f[3]),
                    Double.parseDouble(f[4]), Double.parseDouble(f[5])));
        }
        return out;
    }

    // ---------------------------------------------------------------- the run's configuration

    static Map<String, String> configMeta(TrainConfig c) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(META_CONFIG + "model", c.model().cliName());
        m.put(META_CONFIG + "epochs", Integer.toString(c.epochs()));
        m.put(META_CONFIG + "batch_size", Integer.toString(c.batchSize()));
        m.put(META_CONFIG + "optimizer", c.optimizer().name().toLowerCase(Locale.ROOT));
        m.put(META_CONFIG + "lr", Double.toString(c.lr()));
        m.put(META_CONFIG + "lr_schedule", c.schedule().cliName());
        m.put(META_CONFIG + "seed", Long.toString(c.seed()));
        m.put(META_CONFIG + "device", c.device().toString());
        m.put(META_CONFIG + "data", c.dataDir().toAbsolutePath().toString());
        m.put(META_CONFIG + "limit", Integer.toString(c.limit()));
        m.put(META_CONFIG + "test_limit", Integer.toString(c.testLimit()));
        m.put(META_CONFIG + "precision", c.precision().cliName());
        if (c.augment()) m.put(META_CONFIG + "augment", "true");
        return m;
    }

    /**
     * The configuration a checkpoint's run was started with, writing to {@code outDir}; {@code epochs}, {@code device}
     * and {@code dataDir} (each null: the run's own) may change, the rest would change the result and may not.
     */
    public static TrainConfig config(Map<String, String> meta, Path outDir, Integer epochs, Device device, Path dataDir, boolean cudaGraphs) {
        Device d = device != null ? device : Device.parse(require(meta, META_CONFIG + "device"));
        Precision p = Precision.parse(require(meta, META_CONFIG + "precision"));
        return new TrainConfig(ModelZoo.parse(require(meta, META_CONFIG + "model")),
                epochs != null ? epochs : Integer.parseInt(require(meta, META_CONFIG + "epochs")),
                Integer.parseInt(require(meta, META_CONFIG + "batch_size")), OptimizerKind.parse(require(meta, META_CONFIG + "optimizer")),
                Double.parseDouble(require(meta, META_CONFIG + "lr")), Long.parseLong(require(meta, META_CONFIG + "seed")), d,
                dataDir != null ? dataDir : Path.of(require(meta, META_CONFIG + "data")), outDir,
                Integer.parseInt(require(meta, META_CONFIG + "limit")), Integer.parseInt(require(meta, META_CONFIG + "test_limit")), p,
                cudaGraphs && d.isCuda(), LrSchedule.parse(require(meta, META_CONFIG + "lr_schedule")), false,
                Boolean.parseBoolean(meta.getOrDefault(META_CONFIG + "augment", "false")));
    }

    /** A language-model run's configuration, as {@link #configMeta(TrainConfig)} for an image run's. */
    static Map<String, String> configMeta(TextTrainConfig c) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(META_CONFIG + "model", c.model().cliName());
        m.put(META_CONFIG + "context", Integer.toString(c.context()));
        m.put(META_CONFIG + "layers", Integer.toString(c.layers()));
        m.put(META_CONFIG + "heads", Integer.toString(c.heads()));
        m.put(META_CONFIG + "dim", Integer.toString(c.dim()));
        m.put(META_CONFIG + "dropout", Double.toString(c.dropout()));
        m.put(META_CONFIG + "tokenizer", c.tokenizer().cliName());
        if (c.vocab() != null) m.put(META_CONFIG + "vocab", c.vocab().toAbsolutePath().toString());
        if (c.merges() != null) m.put(META_CONFIG + "merges", c.merges().toAbsolutePath().toString());
        m.put(META_CONFIG + "text", c.text().toAbsolutePath().toString());
        m.put(META_CONFIG + "epochs", Integer.toString(c.epochs()));
        m.put(META_CONFIG + "steps", Integer.toString(c.steps()));
        m.put(META_CONFIG + "batch_size", Integer.toString(c.batchSize()));
        m.put(META_CONFIG + "optimizer", c.optimizer().name().toLowerCase(Locale.ROOT));
        m.put(META_CONFIG + "lr", Double.toString(c.lr()));
        m.put(META_CONFIG + "lr_schedule", c.schedule().cliName());
        m.put(META_CONFIG + "seed", Long.toString(c.seed()));
        m.put(META_CONFIG + "device", c.device().toString());
        m.put(META_CONFIG + "test_limit", Integer.toString(c.testLimit()));
        m.put(META_CONFIG + "precision", c.precision().cliName());
        return m;
    }

    /** A language-model checkpoint's run configuration, as {@link #config} for an image run's; {@code text} (null: the run's own) may change. */
    public static TextTrainConfig textConfig(Map<String, String> meta, Path outDir, Integer epochs, Device device, Path text, boolean cudaGraphs) {
        Device d = device != null ? device : Device.parse(require(meta, META_CONFIG + "device"));
        Precision p = Precision.parse(require(meta, META_CONFIG + "precision"));
        String vocab = meta.get(META_CONFIG + "vocab"), merges = meta.get(META_CONFIG + "merges");
        return new TextTrainConfig(LanguageModel.Kind.find(require(meta, META_CONFIG + "model")), Integer.parseInt(require(meta, META_CONFIG + "context")),
                Integer.parseInt(require(meta, META_CONFIG + "layers")), Integer.parseInt(require(meta, META_CONFIG + "heads")),
                Integer.parseInt(require(meta, META_CONFIG + "dim")), Double.parseDouble(require(meta, META_CONFIG + "dropout")),
                TextTrainConfig.TokenizerKind.parse(require(meta, META_CONFIG + "tokenizer")), vocab == null ? null : Path.of(vocab),
                merges == null ? null : Path.of(merges), text != null ? text : Path.of(require(meta, META_CONFIG + "text")),
                epochs != null ? epochs : Integer.parseInt(require(meta, META_CONFIG + "epochs")), Integer.parseInt(require(meta, META_CONFIG + "steps")),
                Integer.parseInt(require(meta, META_CONFIG + "batch_size")), OptimizerKind.parse(require(meta, META_CONFIG + "optimizer")),
                Double.parseDouble(require(meta, META_CONFIG + "lr")), LrSchedule.parse(require(meta, META_CONFIG + "lr_schedule")),
                Long.parseLong(require(meta, META_CONFIG + "seed")), d, outDir, Integer.parseInt(require(meta, META_CONFIG + "test_limit")), p,
                cudaGraphs && d.isCuda());
    }

    static String require(Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) throw new IllegalArgumentException("the checkpoint has no " + key + ": it is not a full training checkpoint of this kind of model");
        return v;
    }

    // ---------------------------------------------------------------- files

    /** A checkpoint found to resume from: its file, what it holds, and the run folder it belongs to. */
    public record Found(Path file, Safetensors.Contents contents, Path runDir) {}

    /**
     * The checkpoint to resume from: {@code runDirOrFile} itself when it is a file, else the newest checkpoint of that run
     * folder that reads whole (an older one when the newest does not). The temporary files of a write that a crash
     * interrupted are deleted first.
     */
    public static Found find(Path runDirOrFile) throws IOException {
        if (Files.isRegularFile(runDirOrFile)) {
            Path parent = runDirOrFile.toAbsolutePath().getParent();
            Path run = parent.getFileName() != null && parent.getFileName().toString().equals(DIR) ? parent.getParent() : parent;
            Safetensors.Contents c = Safetensors.read(runDirOrFile);
            if (!c.metadata().containsKey(META_STEP)) {
                throw new IllegalArgumentException(runDirOrFile + " holds model weights only, no training state; pass the run folder or a file of its "
                        + DIR + "/ folder to --resume");
            }
            return new Found(runDirOrFile, c, run);
        }
        if (!Files.isDirectory(runDirOrFile)) throw new NoSuchFileException(runDirOrFile.toString(), null, "no such run folder or checkpoint");
        removeTemporaries(runDirOrFile);
        IOException last = null;
        for (Path f : checkpoints(runDirOrFile.resolve(DIR)).reversed()) {
            try {
                return new Found(f, Safetensors.read(f), runDirOrFile);
            } catch (IOException torn) {
                last = torn;   // cannot happen through Safetensors.write's rename; an older one will do
            }
        }
        throw new NoSuchFileException(runDirOrFile.toString(), null, "holds no readable training checkpoint under " + DIR + "/"
                + (runDirOrFile.resolve("model.safetensors").toFile().exists() ? " (its model.safetensors has weights only: a run from before --resume?)" : "")
                + (last == null ? "" : "; " + last.getMessage()));
    }

    /** The checkpoints of a run's checkpoints folder, oldest first (the names sort by step). */
    static List<Path> checkpoints(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return List.of();
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "step-*.safetensors")) {
            for (Path f : files) out.add(f);
        }
        out.sort(Comparator.comparing(p -> p.getFileName().toString()));
        return out;
    }

    /** Deletes the temporary files ({@code .*.tmp}) that an interrupted write left in a run folder and its checkpoints folder. */
    static void removeTemporaries(Path runDir) throws IOException {
        for (Path dir : List.of(runDir, runDir.resolve(DIR))) {
            if (!Files.isDirectory(dir)) continue;
            try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, ".*.tmp")) {
                for (Path f : files) Files.deleteIfExists(f);
            }
        }
    }

    private static void prune(Path dir, int keep) throws IOException {
        List<Path> all = checkpoints(dir);
        for (int i = 0; i < all.size() - keep; i++) Files.deleteIfExists(all.get(i));
    }
}
