package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.Settings;

import dev.kiln.data.FashionMnist;
import dev.kiln.train.LrSchedule;
import dev.kiln.train.ModelZoo;
import dev.kiln.train.OptimizerKind;
import dev.kiln.train.Precision;
import dev.kiln.train.RunFolders;
import dev.kiln.train.TrainConfig;
import dev.kiln.train.TrainRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Trains an image classifier (Fashion-MNIST, CIFAR-10 or a folder of images) and saves model.safetensors, metrics.csv and chart.png.",
                "With no options: the small CNN, 1 epoch, Adam, on the best device."})
final class TrainCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--model", defaultValue = "cnn", description = "mlp, cnn, cnn-bn, resnet-small, resnet18, resnet34 or resnet50 (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--epochs", defaultValue = "1", description = "passes over the training set (default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = "--batch-size", defaultValue = "128", description = "default: ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--optimizer", defaultValue = "adam", description = "adam, adamw or sgd (momentum 0.9) (default: ${DEFAULT-VALUE})")
    String optimizer;

    @Option(names = "--lr", description = "learning rate (default: 0.001 for adam/adamw, 0.05 for sgd)")
    Double lr;

    @Option(names = "--lr-schedule", defaultValue = "constant",
            description = "constant, or cosine (annealed per epoch from --lr towards 0) (default: ${DEFAULT-VALUE})")
    String lrSchedule;

    @Option(names = "--seed", defaultValue = "0", description = "initialisation, shuffling and dropout seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (cuda when usable) (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--data", description = {"Fashion-MNIST (or MNIST) IDX files, CIFAR-10 binary batches, or train/ and val/ (or test/)",
            "folders of class folders of PNG/JPEG images (default: /usr/share/datasets/fashion-mnist)"})
    Path data = FashionMnist.DEFAULT_DIR;

    @Option(names = "--out", description = {"where model.safetensors, metrics.csv and chart.png go (default: a new folder",
            "runs/<time>-<model>, with runs/latest linking to it)"})
    Path out;

    @Option(names = "--overwrite", description = "let --out replace the files of an earlier run in that folder")
    boolean overwrite;

    @Option(names = "--limit", defaultValue = "0", description = "use only the first N training images (0: all)")
    int limit;

    @Option(names = "--test-limit", defaultValue = "0", description = "evaluate on only the first N test images (0: all)")
    int testLimit;

    @Option(names = "--precision", defaultValue = "fp32",
            description = {"fp32, tf32 (TF32 matmuls), bf16 (autocast bfloat16) or fp16 (autocast float16 with loss scaling) (default: ${DEFAULT-VALUE})",
                    "bf16 and fp16 are meant for GPUs; on the CPU they work but are slow (a warning says so)"})
    String precision;

    @Option(names = "--profile", paramLabel = "FILE",
            description = {"profile steps 20-30 of the first epoch: a Chrome trace (chrome://tracing, ui.perfetto.dev) to FILE",
                    "and the per-op table (calls, CPU ms, GPU ms) beside it as .txt"})
    Path profile;

    @Option(names = "--resident", defaultValue = "auto", description = {"auto: on a GPU, keep the whole dataset on the device when it fits in a quarter",
            "of the free memory, else stream batches through pinned buffers; off: always stream (default: ${DEFAULT-VALUE})"})
    String resident;

    @Option(names = "--cuda-graphs", arity = "0..1", fallbackValue = "on", defaultValue = "auto",
            description = {"auto|on|off: capture one training step as a CUDA graph and replay it for every full batch",
            "(after 3 eager warm-up steps; the last partial batch runs eagerly). auto: on for a CUDA device unless",
            "--precision fp16 (its loss scaler reads a flag on the host every step); on: insist (default: ${DEFAULT-VALUE})"})
    String cudaGraphs;

    /** auto is on where a graph is safe: a CUDA device and no host-side loss scaling. */
    private boolean cudaGraphs(Device d, Precision p) {
        return switch (cudaGraphs.toLowerCase(java.util.Locale.ROOT)) {
            case "on" -> true;
            case "off" -> false;
            case "auto" -> d.isCuda() && !p.scalesLoss();
            default -> throw new IllegalArgumentException("--cuda-graphs takes auto, on or off, got '" + cudaGraphs + "'");
        };
    }

    @Option(names = "--json", description = "print a JSON summary as the last line")
    boolean json;

    @Override public Integer call() throws Exception {
        TrainConfig cfg;
        try {
            ModelZoo m = ModelZoo.parse(model);
            OptimizerKind opt = OptimizerKind.parse(optimizer);
            Device d = Devices.parse(device);
            Precision p = Precision.parse(precision);
            cfg = new TrainConfig(m, epochs, batchSize, opt, lr == null ? opt.defaultLr() : lr, seed,
                    d, data, out == null ? Path.of("runs") : out, limit, testLimit, p, cudaGraphs(d, p), LrSchedule.parse(lrSchedule));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        PrintWriter log = spec.commandLine().getOut();
        if (!resident.equals("auto") && !resident.equals("off")) throw new ParameterException(spec.commandLine(), "--resident must be auto or off, got " + resident);
        var listener = new TrainProgress(progressStream(), log, "kiln train --model " + cfg.model().cliName());
        TrainRun.Summary s;
        if (out == null) {
            Path runs = Path.of("runs"), previous = RunFolders.latest(runs);
            Path dir = RunFolders.newRun(runs, cfg.model().cliName(), java.time.LocalDateTime.now());
            try {
                s = TrainRun.run(cfg.withOutDir(dir), log, listener, profile, resident.equals("auto"));
            } catch (Exception | Error e) {
                RunFolders.discardIfEmpty(runs, dir, previous);
                throw e;
            }
        } else {
            RunFolders.requireFresh(out, overwrite);
            s = TrainRun.run(cfg, log, listener, profile, resident.equals("auto"));
        }
        if (json) log.println(s.json());
        log.flush();
        return 0;
    }

    /**
     * The progress bar only where a person watches: a terminal on stderr (not a pipe, a file or a test). The
     * launcher pipes the JVM's stderr through a filter and says whether its own stderr is a terminal (kiln.progress).
     */
    private static PrintStream progressStream() {
        var console = System.console();
        return Settings.get().progress() || console != null && console.isTerminal() ? System.err : null;
    }
}
