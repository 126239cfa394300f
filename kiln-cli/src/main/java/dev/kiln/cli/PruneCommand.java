package dev.kiln.cli;

import dev.kiln.compress.PruneRun;
import dev.kiln.compress.Pruning;
import dev.kiln.train.RunFolders;
import dev.kiln.train.TrainCheckpoint;
import dev.kiln.train.TrainConfig;
import dev.kiln.train.TrainRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "prune", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Prunes the Linear and Conv2d weights of a kiln train run by magnitude (or 2:4), optionally fine-tuning with the pruned "
                + "weights held at zero, into a new run folder.")
final class PruneCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "RUN", description = "a kiln train run folder (runs/latest)")
    Path run;

    @Option(names = "--amount", required = true, description = "the fraction of the weights to prune, in (0, 1)")
    double amount;

    @Option(names = "--structured", description = "2:4: keep the 2 largest of every 4 consecutive input weights (needs --amount 0.5)")
    String structured;

    @Option(names = "--scope", defaultValue = "layer", description = "layer (the amount in each layer) or global (one threshold over all; default: ${DEFAULT-VALUE})")
    String scope;

    @Option(names = "--finetune-epochs", defaultValue = "0", description = "epochs of fine-tuning per round, with the run's data and optimizer (default: ${DEFAULT-VALUE})")
    int finetuneEpochs;

    @Option(names = "--rounds", defaultValue = "1", description = "prune in this many rounds of the cubic schedule, fine-tuning after each (default: ${DEFAULT-VALUE})")
    int rounds;

    @Option(names = "--device", description = "where to fine-tune (default: the run's device)")
    String device;

    @Option(names = "--data", description = "the run's data, if it moved")
    Path data;

    @Option(names = "--out", description = "the pruned run's folder (default: RUN-pruned beside the run)")
    Path out;

    @Override public Integer call() throws Exception {
        PruneRun.Plan plan;
        try {
            if (structured != null && !structured.equals("2:4")) throw new IllegalArgumentException("--structured takes 2:4, got " + structured);
            Pruning.Scope s = switch (scope.toLowerCase(java.util.Locale.ROOT)) {
                case "layer" -> Pruning.Scope.PER_LAYER;
                case "global" -> Pruning.Scope.GLOBAL;
                default -> throw new IllegalArgumentException("--scope takes layer or global, got " + scope);
            };
            plan = new PruneRun.Plan(amount, s, structured != null, rounds, finetuneEpochs);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Path runDir = run.toRealPath(); // runs/latest is a link: name the pruned run after the real one
        Path target = out != null ? out : runDir.resolveSibling(runDir.getFileName() + "-pruned");
        RunFolders.requireFresh(target, false);
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(EvalCommand.checkpointFile(runDir), null);
        TrainConfig finetune = null;
        if (finetuneEpochs > 0) {
            TrainCheckpoint.Found found = TrainCheckpoint.find(runDir);
            finetune = TrainCheckpoint.config(found.contents().metadata(), target, finetuneEpochs,
                    device == null ? null : Devices.parse(device), data, false);
        }
        PrintWriter log = spec.commandLine().getOut();
        PruneRun.run(loaded.model(), loaded.metadata(), plan, finetune, target, log);
        log.flush();
        return 0;
    }
}
