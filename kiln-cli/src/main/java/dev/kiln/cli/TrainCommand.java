package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.Settings;

import dev.kiln.data.FashionMnist;
import dev.kiln.train.LanguageModel;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.LrSchedule;
import dev.kiln.train.ModelZoo;
import dev.kiln.train.OnNan;
import dev.kiln.train.OptimizerKind;
import dev.kiln.train.Precision;
import dev.kiln.train.RunFolders;
import dev.kiln.train.TextTrainConfig;
import dev.kiln.train.TrainCheckpoint;
import dev.kiln.train.TrainConfig;
import dev.kiln.train.TrainRun;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Trains an image classifier (Fashion-MNIST, CIFAR-10 or a folder of images), or a language model on a text file "
                + "(--model gpt|lstm --data FILE.txt), and saves model.safetensors, metrics.csv and chart.png.",
                "With no options: the small CNN, 1 epoch, Adam, on the best device."})
final class TrainCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--model", defaultValue = "cnn", description = "image classifiers: mlp, cnn, cnn-bn, resnet-small, resnet18, resnet34 or resnet50; "
            + "language models (with --data FILE.txt): gpt or lstm (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--epochs", defaultValue = "1", description = "passes over the training set (default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = {"--batch-size", "--batch"}, description = "images, or text chunks, per batch (default: 128 for images, 64 for gpt and lstm)")
    Integer batchSize;

    @Option(names = "--optimizer", description = "adam, adamw or sgd (momentum 0.9) (default: adamw for gpt, else adam)")
    String optimizer;

    @Option(names = "--lr", description = "learning rate (default: 0.001 for adam/adamw, 0.05 for sgd)")
    Double lr;

    @Option(names = "--lr-schedule", defaultValue = "constant",
            description = "constant; cosine (annealed per epoch from --lr towards 0); or onecycle (per step: up from --lr/25 "
                    + "to --lr over the first 30%% of the steps, then down towards 0, as PyTorch's OneCycleLR) (default: ${DEFAULT-VALUE})")
    String lrSchedule;

    @Option(names = "--seed", defaultValue = "0", description = "initialisation, shuffling and dropout seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--deterministic", description = {"GPU ops sum in a fixed order, so the run repeats bit for bit and a resumed run ends as an "
            + "uninterrupted one (cuDNN's deterministic algorithms, no timed search; models with embeddings are refused on the GPU for now)"})
    boolean deterministic;

    @Option(names = "--channels-last", arity = "0..1", fallbackValue = "on", defaultValue = "auto", paramLabel = "auto|on|off",
            description = {"image models: activations channels-last (NHWC), the layout of cuDNN's fastest convolutions, as PyTorch's "
            + "memory_format=torch.channels_last; auto (the default): on for CUDA; parameters and checkpoints are the same either way"})
    String channelsLast;

    private boolean channelsLast(Device d) { return onForCuda("--channels-last", channelsLast, d); }

    /** An auto|on|off option's value: auto is on for a CUDA device. */
    static boolean onForCuda(String option, String value, Device d) {
        return switch (value.toLowerCase(java.util.Locale.ROOT)) {
            case "on" -> true;
            case "off" -> false;
            case "auto" -> d.isCuda();
            default -> throw new IllegalArgumentException(option + " takes auto, on or off, got '" + value + "'");
        };
    }

    @Option(names = "--augment", description = {"image models: each training batch randomly cropped from the image padded by an eighth of "
            + "its side, and mirrored left to right with probability 1/2 (torchvision's RandomCrop + RandomHorizontalFlip), on the "
            + "batch's device; kept by a resumed run"})
    boolean augment;

    @Option(names = "--gpus", paramLabel = "N", description = {"train data-parallel on N GPUs of this host, one process each (kiln launch "
            + "--nproc-per-node N -- train ...); --batch-size is per GPU, so the global batch is N times it"})
    Integer gpus;

    private dev.kiln.dist.ProcessGroup group = dev.kiln.dist.ProcessGroup.single(); // a data-parallel rank's job (started by a launcher)

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (cuda when usable) (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--data", description = {"Fashion-MNIST (or MNIST) IDX files, CIFAR-10 binary batches, or train/ and val/ (or test/)",
            "folders of class folders of PNG/JPEG images (default: /usr/share/datasets/fashion-mnist);",
            "for gpt and lstm a UTF-8 text file (required): its last 10%% is held out for validation"})
    Path data;

    @Option(names = "--out", description = {"where model.safetensors, metrics.csv and chart.png go (default: a new folder",
            "runs/<time>-<model>, with runs/latest linking to it)"})
    Path out;

    @Option(names = "--overwrite", description = "let --out replace the files of an earlier run in that folder")
    boolean overwrite;

    @Option(names = "--limit", defaultValue = "0", description = "use only the first N training images (0: all)")
    int limit;

    @Option(names = "--test-limit", defaultValue = "0", description = "evaluate on only the first N test images, or validation chunks (0: all)")
    int testLimit;

    @ArgGroup(exclusive = false, heading = "%nLanguage models (--model gpt|lstm):%n")
    TextOptions text = new TextOptions();

    /** The options of a language-model run; each is null (its default) unless given. */
    static final class TextOptions {
        @Option(names = "--tokenizer", description = "char (the text's characters), byte (UTF-8 bytes) or gpt2 (GPT-2's BPE, with --vocab and --merges) (default: char)")
        String tokenizer;

        @Option(names = "--vocab", paramLabel = "FILE", description = "GPT-2's vocab.json, for --tokenizer gpt2")
        Path vocab;

        @Option(names = "--merges", paramLabel = "FILE", description = "GPT-2's merges.txt, for --tokenizer gpt2")
        Path merges;

        @Option(names = "--context", description = "tokens per training chunk; the GPT's positions (default: 256 for gpt, 128 for lstm)")
        Integer context;

        @Option(names = "--layers", description = "transformer blocks or LSTM layers (default: 6 for gpt, 2 for lstm)")
        Integer layers;

        @Option(names = "--heads", description = "attention heads of the GPT (default: 6)")
        Integer heads;

        @Option(names = "--dim", description = "the GPT's width or the LSTM's hidden size (default: 384 for gpt, 512 for lstm)")
        Integer dim;

        @Option(names = "--dropout", description = "the GPT's dropout while training (default: 0.2)")
        Double dropout;

        @Option(names = "--steps", description = "batches per epoch, read on through fresh cuts of the text where the last epoch stopped "
                + "(default: one pass over the training text per epoch)")
        Integer steps;

        /** The first option given, for the message that says it needs gpt or lstm; null when none was. */
        String given() {
            Object[][] all = {{"--tokenizer", tokenizer}, {"--vocab", vocab}, {"--merges", merges}, {"--context", context}, {"--layers", layers},
                    {"--heads", heads}, {"--dim", dim}, {"--dropout", dropout}, {"--steps", steps}};
            for (Object[] o : all) if (o[1] != null) return (String) o[0];
            return null;
        }
    }

    @Option(names = "--precision", defaultValue = "fp32",
            description = {"fp32, tf32 (TF32 matmuls), bf16 (autocast bfloat16) or fp16 (autocast float16 with loss scaling) (default: ${DEFAULT-VALUE})",
                    "bf16 and fp16 are meant for GPUs; on the CPU they work but are slow (a warning says so)"})
    String precision;

    @Option(names = "--profile", paramLabel = "FILE",
            description = {"profile steps 20-30 of the first epoch: a Chrome trace (chrome://tracing, ui.perfetto.dev) to FILE",
                    "and beside it as .txt the phases (data wait, forward, backward, optimizer: time, peak GPU memory, each op's share)",
                    "and the per-op table (calls, CPU ms, GPU ms)"})
    Path profile;

    @Option(names = "--resident", defaultValue = "auto", description = {"auto: on a GPU, keep the whole dataset on the device when it fits in a quarter",
            "of the free memory, else stream batches through pinned buffers; off: always stream (default: ${DEFAULT-VALUE})"})
    String resident;

    @Option(names = "--cuda-graphs", arity = "0..1", fallbackValue = "on", defaultValue = "auto",
            description = {"auto|on|off: capture one training step as a CUDA graph and replay it for every full batch",
            "(after 3 eager warm-up steps; the last partial batch runs eagerly; fp16's loss scaling runs inside it).",
            "auto: on for a CUDA device; on: insist (default: ${DEFAULT-VALUE})"})
    String cudaGraphs;

    /** auto is on where a graph can run: a CUDA device. */
    private boolean cudaGraphs(Device d) { return onForCuda("--cuda-graphs", cudaGraphs, d); }

    @Option(names = "--json", description = "print a JSON summary as the last line")
    boolean json;

    @Option(names = "--resume", paramLabel = "RUN_DIR|FILE", description = {"go on with an interrupted run from its newest complete checkpoint",
            "(or that checkpoint file), in its folder, with its settings; --epochs, --device and --data may change"})
    Path resume;

    @Option(names = "--checkpoint-every", paramLabel = "N", defaultValue = "0",
            description = "also write a full checkpoint (weights, optimizer, position) every N steps (0: at each epoch's end only) (default: ${DEFAULT-VALUE})")
    int checkpointEvery;

    @Option(names = "--keep", paramLabel = "K", defaultValue = "3", description = "full checkpoints kept in RUN/checkpoints/, the newest (default: ${DEFAULT-VALUE})")
    int keep;

    @Option(names = "--tensorboard", paramLabel = "DIR",
            description = "also write TensorBoard event files (settings as hparams, step loss, per-epoch losses, accuracy, throughput, learning rate, "
                    + "the GPU's readings) into DIR: tensorboard --logdir DIR")
    Path tensorboard;

    @Option(names = "--tensorboard-histograms", paramLabel = "N", defaultValue = "0",
            description = "with --tensorboard: histograms of every parameter's weights and gradients every N epochs (0: none) (default: ${DEFAULT-VALUE})")
    int tensorboardHistograms;

    private TensorBoardListener tensorBoardListener; // made with the run's listener when --tensorboard is given
    private dev.kiln.cuda.GpuMonitor gpuMonitor;     // made with the run's listener when it trains on a GPU

    @Option(names = "--on-nan", defaultValue = "stop",
            description = "stop: a NaN or infinite loss ends the run naming the step; skip: leave that step's update out (default: ${DEFAULT-VALUE})")
    String onNan;

    /** The options that would change a run's result: a resumed run keeps its own. */
    private static final String[] FIXED_WHEN_RESUMING = {"--model", "--batch-size", "--optimizer", "--lr", "--lr-schedule", "--seed", "--limit",
            "--test-limit", "--precision", "--out", "--overwrite", "--tokenizer", "--vocab", "--merges", "--context", "--layers", "--heads", "--dim",
            "--dropout", "--steps"};

    @Override public Integer call() throws Exception {
        if (!resident.equals("auto") && !resident.equals("off")) throw new ParameterException(spec.commandLine(), "--resident must be auto or off, got " + resident);
        var job = Ranks.job();
        var parsed = spec.commandLine().getParseResult();
        if (deterministic) dev.kiln.cuda.Cuda.setDeterministic(true);
        if (gpus != null) {
            if (gpus < 1) throw new ParameterException(spec.commandLine(), "--gpus must be >= 1, got " + gpus);
            if (job.distributed()) throw new ParameterException(spec.commandLine(), "--gpus starts the ranks itself: this process is already rank " + job.rank());
            if (parsed.hasMatchedOption("--device")) throw new ParameterException(spec.commandLine(), "--gpus N trains on cuda:0 .. cuda:N-1; leave out --device");
            return Ranks.launch(gpus, "train", parsed.originalArgs(), spec.commandLine().getOut());
        }
        LanguageModel.Kind lm = LanguageModel.Kind.find(model);
        PrintWriter log = spec.commandLine().getOut();
        if (job.distributed()) {
            if (parsed.hasMatchedOption("--device") && !Devices.parse(device).equals(Ranks.device(job))) {
                throw new ParameterException(spec.commandLine(), "rank " + job.rank() + " trains on cuda:LOCAL_RANK = " + Ranks.device(job) + ", not --device " + device);
            }
            device = Ranks.device(job).toString();
            group = Ranks.group(job);
            if (job.rank() != 0) log = new PrintWriter(java.io.OutputStream.nullOutputStream()); // rank 0 speaks for the job
        }
        String summary;
        try (var g = group) {
            summary = resume != null ? resumeImageModel(log) : lm != null ? trainLanguageModel(lm, log) : trainImageModel(log);
        } finally {
            if (tensorBoardListener != null) tensorBoardListener.close();
            if (gpuMonitor != null) gpuMonitor.close();
        }
        if (json) log.println(summary);
        log.flush();
        return 0;
    }

    private String trainImageModel(PrintWriter log) throws Exception {
        TrainConfig cfg;
        try {
            ModelZoo m = parseModel();
            if (text.given() != null) throw new IllegalArgumentException(text.given() + " goes with --model gpt or lstm, not " + m.cliName());
            OptimizerKind opt = OptimizerKind.parse(optimizer == null ? "adam" : optimizer);
            Device d = Devices.parse(device);
            Precision p = Precision.parse(precision);
            cfg = new TrainConfig(m, epochs, batchSize == null ? 128 : batchSize, opt, lr == null ? opt.defaultLr() : lr, seed,
                    d, data == null ? FashionMnist.DEFAULT_DIR : data, out == null ? Path.of("runs") : out, limit, testLimit, p, cudaGraphs(d),
                    LrSchedule.parse(lrSchedule), channelsLast(d), augment);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        TrainConfig c = cfg;
        TrainRun.Checkpointing ck = checkpointing();
        if (group.rank() != 0) return TrainRun.run(c, log, null, null, resident.equals("auto"), ck, null, group).json(); // writes nothing
        var listener = observed(new TrainProgress(progressStream(), log, "kiln train --model " + cfg.model().cliName()), c.device(), c, log);
        return inRunFolder(cfg.model().cliName(), dir -> TrainRun.run(c.withOutDir(dir), log, listener, profile, resident.equals("auto"), ck, null, group)).json();
    }

    /** --resume of a language-model run: as for images, with --data naming the text (when it moved). */
    private String resumeLanguageModel(PrintWriter log, TrainCheckpoint.Found found, TrainRun.Checkpointing ck) throws Exception {
        var parsed = spec.commandLine().getParseResult();
        TextTrainConfig cfg;
        try {
            cfg = TrainCheckpoint.textConfig(found.contents().metadata(), found.runDir(), parsed.hasMatchedOption("--epochs") ? epochs : null,
                    resumeDevice(), data, !cudaGraphs.equalsIgnoreCase("off"));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), found.file() + ": " + e.getMessage());
        }
        if (group.rank() != 0) return LanguageModelRun.run(cfg, log, null, null, ck, found, group).json();
        var listener = observed(new TrainProgress(progressStream(), log, "kiln train --resume " + resume, cfg.context()), cfg.device(), cfg, log);
        return LanguageModelRun.run(cfg, log, listener, profile, ck, found, group).json();
    }

    /** The device a resumed run goes on with: a rank's own GPU, --device when given, else (null) the run's. */
    private Device resumeDevice() {
        if (group.world() > 1) return Devices.parse(device);   // call() set it to cuda:LOCAL_RANK
        return spec.commandLine().getParseResult().hasMatchedOption("--device") ? Devices.parse(device) : null;
    }

    /**
     * The run's listener: the progress bar, the GPU monitor on a GPU (absent elsewhere), and the TensorBoard writer
     * around them when --tensorboard is given.
     */
    private dev.kiln.train.TrainListener observed(TrainProgress progress, Device d, Record cfg, PrintWriter log) {
        gpuMonitor = dev.kiln.cuda.GpuMonitor.start(d, java.time.Duration.ofMillis(250)); // 4 a second: a sub-second epoch still gets samples
        var listener = gpuMonitor == null ? progress : new GpuWatch(progress.showing(gpuMonitor), gpuMonitor, log);
        if (tensorboard == null) return listener;
        tensorBoardListener = new TensorBoardListener(listener, tensorboard, gpuMonitor, tensorboardHistograms, cfg);
        return tensorBoardListener;
    }

    private TrainRun.Checkpointing checkpointing() {
        try {
            return new TrainRun.Checkpointing(checkpointEvery, keep, OnNan.parse(onNan));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
    }

    /** --resume: the run's settings from its checkpoint, in its own folder, going on from where the checkpoint stands. */
    private String resumeImageModel(PrintWriter log) throws Exception {
        var parsed = spec.commandLine().getParseResult();
        for (String o : FIXED_WHEN_RESUMING) {
            if (parsed.hasMatchedOption(o)) {
                throw new ParameterException(spec.commandLine(), o + " cannot be given with --resume: the run goes on with its own settings "
                        + "(saved in its checkpoints); only --epochs, --device, --data and the checkpoint options may change");
            }
        }
        TrainRun.Checkpointing ck = checkpointing();
        TrainCheckpoint.Found found = TrainCheckpoint.find(resume);
        if (group.rank() == 0) dev.kiln.train.RunFolders.markResumed(found.runDir());
        if (LanguageModelRun.isLanguageModel(found.contents().metadata())) return resumeLanguageModel(log, found, ck);
        TrainConfig cfg;
        try {
            cfg = TrainCheckpoint.config(found.contents().metadata(), found.runDir(), parsed.hasMatchedOption("--epochs") ? epochs : null,
                    resumeDevice(), data, !cudaGraphs.equalsIgnoreCase("off"));
            cfg = cfg.withChannelsLast(channelsLast(cfg.device()));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), found.file() + ": " + e.getMessage());
        }
        // a pruned run (kiln prune --finetune-epochs) goes on with its zeros held at zero
        TrainRun.StartFrom pruned = dev.kiln.compress.PruneRun.resumedFrom(found.contents().metadata());
        if (pruned != null && group.rank() == 0) log.println("kiln: a pruned run: its zero weights stay zero (masks from the checkpoint)");
        if (group.rank() != 0) return TrainRun.run(cfg, log, null, null, resident.equals("auto"), ck, found, group, pruned).json();
        var listener = observed(new TrainProgress(progressStream(), log, "kiln train --resume " + resume), cfg.device(), cfg, log);
        return TrainRun.run(cfg, log, listener, profile, resident.equals("auto"), ck, found, group, pruned).json();
    }

    private String trainLanguageModel(LanguageModel.Kind kind, PrintWriter log) throws Exception {
        TextTrainConfig cfg;
        try {
            if (data == null) throw new IllegalArgumentException("--model " + kind.cliName() + " needs --data FILE.txt, the UTF-8 text to learn");
            if (limit != 0) throw new IllegalArgumentException("--limit counts images; for gpt and lstm use --steps N (batches per epoch)");
            if (kind == LanguageModel.Kind.LSTM && (text.heads != null || text.dropout != null)) {
                throw new IllegalArgumentException((text.heads != null ? "--heads" : "--dropout") + " goes with --model gpt; the LSTM has neither");
            }
            OptimizerKind opt = optimizer == null ? kind.defaultOptimizer() : OptimizerKind.parse(optimizer);
            Device d = Devices.parse(device);
            Precision p = Precision.parse(precision);
            cfg = new TextTrainConfig(kind, or(text.context, kind.defaultContext()), or(text.layers, kind.defaultLayers()), or(text.heads, kind.defaultHeads()),
                    or(text.dim, kind.defaultDim()), text.dropout == null ? kind.defaultDropout() : text.dropout,
                    TextTrainConfig.TokenizerKind.parse(text.tokenizer == null ? "char" : text.tokenizer), text.vocab, text.merges, data,
                    epochs, or(text.steps, 0), batchSize == null ? 64 : batchSize, opt, lr == null ? opt.defaultLr() : lr, LrSchedule.parse(lrSchedule), seed,
                    d, out == null ? Path.of("runs") : out, testLimit, p, cudaGraphs(d));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        TrainRun.Checkpointing ck = checkpointing();
        TextTrainConfig c = cfg;
        if (group.rank() != 0) return LanguageModelRun.run(c, log, null, null, ck, null, group).json(); // writes nothing
        var listener = observed(new TrainProgress(progressStream(), log, "kiln train --model " + kind.cliName() + " --data " + data.getFileName(), cfg.context()), c.device(), c, log);
        return inRunFolder(kind.cliName(), dir -> LanguageModelRun.run(c.withOutDir(dir), log, listener, profile, ck, null, group)).json();
    }

    private static int or(Integer value, int otherwise) { return value == null ? otherwise : value; }

    /** The image model, or an error listing every model (the language models too). */
    private ModelZoo parseModel() {
        try {
            return ModelZoo.parse(model);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown model '" + model + "' (choose " + ModelZoo.names() + ", " + LanguageModel.Kind.names() + ")");
        }
    }

    /** A run given the folder it writes to. */
    @FunctionalInterface
    private interface Run<T> {
        T in(Path dir) throws IOException;
    }

    /**
     * Runs in --out (refused when it holds an earlier run, unless --overwrite) or in a new folder runs/&lt;time&gt;-&lt;model&gt;,
     * which is removed again, with runs/latest pointed back, when the run fails before writing anything.
     */
    private <T> T inRunFolder(String name, Run<T> run) throws IOException {
        if (out != null) {
            RunFolders.requireFresh(out, overwrite);
            return run.in(out);
        }
        Path runs = Path.of("runs"), previous = RunFolders.latest(runs);
        Path dir = RunFolders.newRun(runs, name, java.time.LocalDateTime.now());
        try {
            return run.in(dir);
        } catch (Exception | Error e) {
            RunFolders.discardIfEmpty(runs, dir, previous);
            throw e;
        }
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
