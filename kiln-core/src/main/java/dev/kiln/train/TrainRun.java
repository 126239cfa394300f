package dev.kiln.train;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.cuda.Cuda;
import dev.kiln.cuda.CudaDevice;
import dev.kiln.data.DataLoader;
import dev.kiln.data.ShardedDataset;
import dev.kiln.dist.DataParallel;
import dev.kiln.dist.ProcessGroup;
import dev.kiln.data.DeviceDataset;
import dev.kiln.data.Dataset;
import dev.kiln.data.ImageFolder;
import dev.kiln.data.TensorDataset;
import dev.kiln.data.TrainingData;
import dev.kiln.data.Transform;
import dev.kiln.data.Transforms;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Model;
import dev.kiln.optim.Optimizer;
import dev.kiln.quant.QuantizedModel;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * One training run on Fashion-MNIST as {@code kiln train} does it: load, build, train epoch by epoch with a
 * line per epoch, and after each epoch rewrite the checkpoint and the metrics CSV in the output folder; a
 * {@link TrainListener} sees every step and epoch (the command line draws its progress bar and chart through one).
 */
public final class TrainRun {
    private TrainRun() {}

    /** The run's outcome (the figures of {@code --json}). */
    public record Summary(String model, String device, String precision, int epochs, double testAccuracy, double trainSamplesPerSecond,
                          double seconds, Path checkpoint, Path metrics, List<EpochStats> history) {
        /** One line of JSON; a figure that is not finite (no step trained, a diverged loss) is null, since JSON has no NaN. */
        public String json() {
            return String.format(Locale.ROOT, "{\"model\":\"%s\",\"device\":\"%s\",\"precision\":\"%s\",\"epochs\":%d,\"test_acc\":%s,"
                    + "\"train_samples_per_s\":%s,\"seconds\":%s}", model, device, precision, epochs, jsonNumber("%.4f", testAccuracy),
                    jsonNumber("%.1f", trainSamplesPerSecond), jsonNumber("%.2f", seconds));
        }
    }

    /** x in this format, or null when it is NaN or infinite (JSON has no such numbers). */
    public static String jsonNumber(String format, double x) {
        return Double.isFinite(x) ? String.format(Locale.ROOT, format, x) : "null";
    }

    /**
     * How a run saves and guards itself: a full checkpoint every {@code every} steps (0: at the end of each epoch only;
     * each epoch's end always writes one), the newest {@code keep} kept, and what a non-finite loss does.
     */
    public record Checkpointing(int every, int keep, OnNan onNan) {
        /** Checkpoints per epoch, the last 3 kept, stop at a non-finite loss. */
        public static final Checkpointing DEFAULT = new Checkpointing(0, 3, OnNan.STOP);

        public Checkpointing {
            java.util.Objects.requireNonNull(onNan, "onNan");
            if (every < 0) throw new IllegalArgumentException("--checkpoint-every must be >= 0, got " + every);
            if (keep < 1) throw new IllegalArgumentException("--keep must be >= 1, got " + keep);
        }
    }

    /** Metadata keys of Kiln checkpoints. */
    public static final String META_MODEL = "kiln.model", META_EPOCH = "kiln.epoch", META_TEST_ACC = "kiln.test_acc",
            META_INPUT_SHAPE = "kiln.input_shape", META_CLASSES = "kiln.classes";

    /**
     * Metadata keys of how an image becomes an input (see {@link TrainingData#preprocessing}): the data's name, the
     * side images are resized to before the centre crop, and the per-channel mean and std (comma-separated).
     */
    public static final String META_DATA = "kiln.data", META_RESIZE = "kiln.image.resize", META_MEAN = "kiln.image.mean",
            META_STD = "kiln.image.std";

    /**
     * @param log       where the per-epoch lines go
     * @param listener  what sees each step and epoch ({@link TrainListener#NONE}: nothing)
     */
    public static Summary run(TrainConfig cfg, PrintWriter log, TrainListener listener) throws IOException {
        return run(cfg, log, listener, null, true);
    }

    /**
     * As {@link #run(TrainConfig, PrintWriter, TrainListener)}, profiling steps 20-30 of the first epoch into
     * {@code profile} (null: none); {@code allowResident}: on a GPU, keep the dataset there when it fits.
     */
    public static Summary run(TrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, boolean allowResident) throws IOException {
        return run(cfg, log, listener, profile, allowResident, Checkpointing.DEFAULT, null);
    }

    /**
     * As {@link #run(TrainConfig, PrintWriter, TrainListener, Path, boolean)}, checkpointing as {@code ck} says, and
     * going on from {@code resume} (null: a fresh run) so that the result is bit for bit the uninterrupted run's.
     */
    public static Summary run(TrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, boolean allowResident,
                              Checkpointing ck, TrainCheckpoint.Found resume) throws IOException {
        return run(cfg, log, listener, profile, allowResident, ck, resume, ProcessGroup.single());
    }

    /**
     * As above, as one rank of {@code group}'s data-parallel job (cfg's device is this rank's GPU): the model starts
     * from rank 0's parameters, each rank trains on its share of every global batch of {@code batchSize × world}
     * (the order one process with the global batch would see), gradients are averaged over the ranks, and the train
     * loss is averaged over them too. Rank 0 alone writes (checkpoints, metrics, the model) and reports to
     * {@code listener}; the others should be given a quiet log and no listener.
     */
    public static Summary run(TrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, boolean allowResident,
                              Checkpointing ck, TrainCheckpoint.Found resume, ProcessGroup group) throws IOException {
        return onDevice(cfg.device(), cfg.precision(), log, () -> train(cfg, log, listener, profile, allowResident, ck, resume, group, null));
    }

    /**
     * Where a fine-tuning run starts: trained weights (a state dict; null when a resumed checkpoint brings them) instead
     * of fresh ones, what to do after every optimizer step, made for the model once it is built and loaded (a pruned
     * model re-applies its masks so), and metadata its checkpoints carry (so that a resume knows to do the same).
     */
    public record StartFrom(Map<String, dev.kiln.Tensor> weights, java.util.function.Function<Model, Runnable> afterEachStep,
                            Map<String, String> metadata) {
        public StartFrom {
            metadata = Map.copyOf(metadata);
        }
    }

    /** As {@link #run(TrainConfig, PrintWriter, TrainListener, Path, boolean, Checkpointing, TrainCheckpoint.Found, ProcessGroup)}, going on from {@code from} (the resumed fine-tuning of a pruned run). */
    public static Summary run(TrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, boolean allowResident,
                              Checkpointing ck, TrainCheckpoint.Found resume, ProcessGroup group, StartFrom from) throws IOException {
        return onDevice(cfg.device(), cfg.precision(), log, () -> train(cfg, log, listener, profile, allowResident, ck, resume, group, from));
    }

    /** Fine-tunes: the run of {@code cfg} in one process, starting from {@code from}'s weights and calling its step action after each step. */
    public static Summary finetune(TrainConfig cfg, PrintWriter log, TrainListener listener, StartFrom from) throws IOException {
        java.util.Objects.requireNonNull(from, "from");
        return onDevice(cfg.device(), cfg.precision(), log,
                () -> train(cfg, log, listener, null, true, Checkpointing.DEFAULT, null, ProcessGroup.single(), from));
    }

    /** A run's body, which may fail with an IOException. */
    @FunctionalInterface
    interface Body<T> {
        T run() throws IOException;
    }

    /**
     * Runs a training run's body with the device set up for it: a warning for a precision the CPU does not speed up;
     * matmul TF32 on for a tf32 run and off for the others, and cuDNN's timed algorithm search on (a training loop
     * repeats its shapes, so it pays for itself within the first epoch) unless deterministic mode is on, both restored
     * afterwards.
     */
    static <T> T onDevice(Device device, Precision precision, PrintWriter log, Body<T> body) throws IOException {
        warnAboutPrecision(device, precision, log);
        boolean gpu = device.isCuda();
        boolean tf32Before = gpu && Cuda.allowTf32(device), benchmarkBefore = Cuda.cudnnBenchmark();
        if (gpu) {
            Cuda.setAllowTf32(device, precision == Precision.TF32);
            Cuda.setCudnnBenchmark(!Cuda.deterministic()); // timing could pick other (deterministic) algorithms in another process
        }
        try {
            return body.run();
        } finally {
            if (gpu) Cuda.setAllowTf32(device, tf32Before);
            Cuda.setCudnnBenchmark(benchmarkBefore);
        }
    }

    /**
     * bf16 and fp16 work on the CPU but through its general kernels (no Vector API fast path, conversions per
     * element), so they are several times slower than fp32 there; tf32 is a GPU setting. Said once, not refused:
     * a CPU run is how one checks a mixed-precision run before paying for a GPU.
     */
    private static void warnAboutPrecision(Device device, Precision precision, PrintWriter log) {
        if (device.isCuda()) return;
        switch (precision) {
            case FP32 -> { }
            case TF32 -> log.println("kiln: warning: --precision tf32 has no effect on the CPU (it is a GPU tensor-core mode); training in fp32");
            case BF16, FP16 -> log.println("kiln: warning: --precision " + precision.cliName() + " on the CPU runs through the general "
                    + "(scalar) kernels and is several times slower than fp32; use it to check a run, not for speed");
        }
    }

    private static Summary train(TrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, boolean allowResident,
                                 Checkpointing ck, TrainCheckpoint.Found resume, ProcessGroup group, StartFrom from) throws IOException {
        long t0 = System.nanoTime();
        boolean lead = group.rank() == 0;
        int world = group.world();
        if (lead) requireWritableFolder(cfg.outDir());
        TrainingData data = TrainingData.open(cfg.dataDir(), cfg.model().imageSize());
        Dataset train = TrainingData.head(data.train(), cfg.limit()), test = TrainingData.head(data.test(), cfg.testLimit());

        Generator generator = new Generator(cfg.seed());
        Model model = cfg.model().build(generator, data.inputShape(), data.classes().size()).channelsLast(cfg.channelsLast());
        model.to(cfg.device());
        if (from != null && from.weights() != null) model.loadStateDict(from.weights());
        Optimizer opt = cfg.optimizer().create(model.parameters(), cfg.lr());
        Trainer trainer = trainer(model, new CrossEntropyLoss(), opt, listener, cfg.precision(), cfg.cudaGraphs(), profile, ck, group, cfg.outDir());
        TrainCheckpoint.State state = new TrainCheckpoint.State(model, opt, generator, trainer.scaler());
        Path checkpoint = cfg.outDir().resolve("model.safetensors"), metrics = cfg.outDir().resolve("metrics.csv");

        log.printf(Locale.ROOT, "kiln: training %s (%,d parameters) on %s: %s, %,d training and %,d test images, batch %s, %s lr %s, %s%s%n",
                cfg.model().cliName(), model.parameterCount(), world > 1 ? world + " ranks (" + (cfg.device().isCuda() ? "one GPU each" : "CPU") + ")" : cfg.device(), data.name(), train.size(), test.size(),
                world > 1 ? cfg.batchSize() * world + " (" + cfg.batchSize() + " per rank)" : cfg.batchSize(),
                cfg.optimizer().name().toLowerCase(Locale.ROOT), cfg.lr() + (cfg.schedule() == LrSchedule.CONSTANT ? "" : " " + cfg.schedule().cliName()),
                cfg.precision().cliName(),
                (cfg.cudaGraphs() ? ", CUDA graphs" : "") + (cfg.augment() ? ", augmented (crops and flips)" : ""));
        List<EpochStats> history = new ArrayList<>();
        TrainCheckpoint.Resumed resumed = resume == null ? new TrainCheckpoint.Resumed(1, null)
                : TrainCheckpoint.resume(resume, state, history, world > 1 ? train.size() / (cfg.batchSize() * world)
                        : (train.size() + cfg.batchSize() - 1) / cfg.batchSize(), "batches per epoch, this data" + (world > 1 ? " on " + world + " ranks" : ""), log);
        int firstEpoch = resumed.firstEpoch();
        Trainer.Start start = resumed.start();
        // made once the weights are final: a resumed pruning run's masks come from the checkpoint's zeros
        Runnable afterStep = from == null ? null : from.afterEachStep().apply(model);
        Map<String, String> modelMeta = new java.util.LinkedHashMap<>(modelMetadata(cfg.model(), data));
        if (from != null) modelMeta.putAll(from.metadata());
        double trainSeconds = 0;
        long trainSamples = 0;
        try (trainer; DeviceDataset residentTrain = resident(train, cfg, allowResident, log);
             DeviceDataset residentTest = resident(test, cfg, allowResident, log);
             DataLoader trainLoader = loader(residentTrain != null ? residentTrain : train, cfg, group, augmentation(cfg, data.inputShape()));
             DataLoader testLoader = DataLoader.builder(residentTest != null ? residentTest : test).batchSize(1000).workers(1).device(cfg.device()).build()) {
            for (int e = firstEpoch; e <= cfg.epochs(); e++) {
                int epoch = e, batches = trainLoader.batchCount();
                Trainer.StepHook checkpointHook = ck.every() == 0 || !lead ? null : (step, lossSum, samples) -> {
                    if (step < batches && ((long) (epoch - 1) * batches + step) % ck.every() == 0) {
                        double sum = lossSum.getAsDouble();
                        if (!Double.isFinite(sum)) throw new Trainer.NonFiniteLossException(step, "the loss is not finite at this step or one since the last check");
                        if (ck.onNan() == OnNan.STOP) requireFinite(model, step);
                        TrainCheckpoint.write(cfg.outDir(), state, new TrainCheckpoint.Position(epoch, step, batches, sum, samples),
                                modelMeta, TrainCheckpoint.configMeta(cfg), cfg.seed(), history, ck.keep());
                    }
                };
                Runnable after = afterStep;
                Trainer.StepHook hook = cfg.schedule().apply(opt, cfg.lr(), e, cfg.epochs(), start == null ? 0 : start.step(), batches,
                        after == null ? checkpointHook : (step, lossSum, samples) -> {
                            after.run(); // before any checkpoint of this step, which then holds what the step left
                            if (checkpointHook != null) checkpointHook.after(step, lossSum, samples);
                        });
                Trainer.TrainResult r;
                try {
                    r = trainer.trainEpoch(trainLoader, "epoch " + e + "/" + cfg.epochs(), start == null ? Trainer.Start.of(e - 1) : start, hook);
                } catch (Trainer.NonFiniteLossException nan) {
                    throw stopped(nan, e, batches, cfg.outDir());
                }
                start = null;
                if (ck.onNan() == OnNan.STOP && !Double.isFinite(r.meanLoss())) {
                    throw stopped(new Trainer.NonFiniteLossException(batches, "the loss is not finite at this step or one since the last check"), e, batches, cfg.outDir());
                }
                if (world > 1) r = overRanks(r, group, cfg.device());
                Evaluation ev = Evaluation.of(model, testLoader, cfg.precision());  // every rank: the same parameters, the same result
                EpochStats s = new EpochStats(e, r.meanLoss(), ev.loss(), ev.accuracy(), r.samplesPerSecond(), r.seconds());
                history.add(s);
                trainSeconds += r.seconds();
                trainSamples += r.samples();
                log.printf(Locale.ROOT, "epoch %d/%d  train loss %.4f  test loss %.4f  test acc %.2f%%  %,.0f samples/s  %.1f s%n",
                        e, cfg.epochs(), s.trainLoss(), s.testLoss(), 100 * s.testAccuracy(), s.trainSamplesPerSecond(), s.trainSeconds());
                if (trainer.scaler() != null) {
                    log.printf(Locale.ROOT, "  fp16 loss scale %.0f, %d steps skipped for overflow so far%n", trainer.scaler().scale(), trainer.skippedSteps());
                }
                if (ck.onNan() == OnNan.STOP) {
                    try {
                        requireFinite(model, batches);
                    } catch (Trainer.NonFiniteLossException nan) {
                        throw stopped(nan, e, batches, cfg.outDir());
                    }
                }
                if (!lead) continue;
                TrainCheckpoint.write(cfg.outDir(), state, new TrainCheckpoint.Position(e, batches, batches, 0, r.samples()),
                        modelMeta, TrainCheckpoint.configMeta(cfg), cfg.seed(), history, ck.keep());
                saveCheckpoint(checkpoint, model, cfg.model(), data, e, ev.accuracy());
                writeMetrics(metrics, history);
                if (listener != null) listener.epochEnded(s, List.copyOf(history), cfg.outDir());
                log.flush();
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (lead) log.println("kiln: wrote " + checkpoint + " and " + metrics);
        log.flush();
        if (trainer.nanSkipped() > 0) log.printf(Locale.ROOT, "kiln: %d steps skipped for a non-finite loss (--on-nan skip)%n", trainer.nanSkipped());
        return new Summary(cfg.model().cliName(), cfg.device().toString(), cfg.precision().cliName(), cfg.epochs(), history.getLast().testAccuracy(),
                trainSamples / trainSeconds, seconds, checkpoint, metrics, history);
    }

    /**
     * A run's trainer as rank {@code group.rank()} of its job: rank 0 alone reports to {@code listener}, profiles and
     * prepares {@code outDir} (temporaries of a crashed write removed); with several ranks the gradients are averaged
     * over them.
     */
    static <M extends Layer & dev.kiln.nn.Forward> Trainer trainer(M model, dev.kiln.nn.Loss loss, Optimizer opt, TrainListener listener,
                                                                   Precision precision, boolean cudaGraphs, Path profile, Checkpointing ck,
                                                                   ProcessGroup group, Path outDir) throws IOException {
        boolean lead = group.rank() == 0;
        Trainer trainer = new Trainer(model, loss, opt, lead ? listener : null, precision);
        if (profile != null && lead) trainer.profileSteps(profile, 20, 30);
        trainer.useCudaGraphs(cudaGraphs);
        trainer.onNan(ck.onNan());
        if (group.world() > 1) trainer.dataParallel(DataParallel.of(model, group));
        if (lead) {
            Files.createDirectories(outDir);
            TrainCheckpoint.removeTemporaries(outDir);
        }
        return trainer;
    }

    /** The training batches: shuffled per epoch, or for a data-parallel rank its share of each global batch (same order). */
    private static DataLoader loader(Dataset train, TrainConfig cfg, ProcessGroup group, Transform augment) {
        if (group.world() == 1) {
            return DataLoader.builder(train).batchSize(cfg.batchSize()).shuffle(cfg.seed()).workers(1).prefetch(3).device(cfg.device())
                    .transform(augment).build();
        }
        return DataLoader.builder(ShardedDataset.of(train, group.rank(), group.world(), cfg.batchSize(), cfg.seed())).batchSize(cfg.batchSize())
                .workers(1).prefetch(3).device(cfg.device()).transform(augment).build();
    }

    /**
     * --augment: random crops of the image's size from it padded by an eighth of its side (4 of CIFAR's 32, as is usual
     * there; 4 of Fashion-MNIST's 28), then a mirror with probability 1/2. Null without it.
     */
    static Transform augmentation(TrainConfig cfg, int[] inputShape) {
        if (!cfg.augment()) return null;
        int side = inputShape[1], pad = (int) Math.max(1, Math.round(side / 8.0));
        if (inputShape[2] != side) throw new IllegalArgumentException("--augment needs square images, got " + inputShape[1] + "x" + inputShape[2]);
        return Transforms.randomCropAndFlip(side, pad, 0.5);
    }

    /** An epoch's result for the whole job: the loss averaged over the ranks, samples and throughput summed. */
    static Trainer.TrainResult overRanks(Trainer.TrainResult r, ProcessGroup group, Device device) {
        Tensor sum = Tensor.of(new double[]{r.meanLoss() * r.samples(), r.samples()}, 2).to(device);
        group.allReduceSum(sum);
        double[] v = sum.toDoubleArray();
        sum.close();
        return new Trainer.TrainResult(v[0] / v[1], (int) v[1], r.seconds());
    }

    /**
     * The dataset resident on the GPU when it takes at most a quarter of the device's free memory (then an epoch
     * uploads only its order); null otherwise, and on the CPU, where the pinned pipeline or host batches are used.
     */
    private static DeviceDataset resident(Dataset dataset, TrainConfig cfg, boolean allowed, PrintWriter log) {
        if (!cfg.device().isCuda() || !allowed || !(dataset instanceof TensorDataset data)) return null;
        CudaDevice dev = CudaDevice.get(cfg.device().index());
        long free = dev.memoryInfo().freeBytes(), need = DeviceDataset.bytesFor(data);
        if (need > free / 4) {
            log.printf(Locale.ROOT, "kiln: %,d examples (%s) do not fit in a quarter of the free device memory; streaming them through pinned buffers%n",
                    data.size(), mib(need));
            return null;
        }
        log.printf(Locale.ROOT, "kiln: %,d examples resident on %s (%s)%n", data.size(), cfg.device(), mib(need));
        return new DeviceDataset(data, cfg.device());
    }

    private static String mib(long bytes) { return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0); }

    /**
     * A stopping run saves no checkpoint whose parameters are not finite (a step with a finite loss can still overflow
     * them): it stops at the step instead, so the newest checkpoint stays a good one. One reduction per parameter, beside
     * a checkpoint that reads every parameter anyway.
     */
    static void requireFinite(Layer model, int step) {
        try (dev.kiln.autograd.GradMode ignored = dev.kiln.autograd.GradMode.disabled()) {
            for (var p : model.namedParameters().entrySet()) {
                if (Double.isNaN(p.getValue().mul(0.0).sum().item())) {
                    throw new Trainer.NonFiniteLossException(step, "the parameter " + p.getKey() + " is not finite after it");
                }
            }
        }
    }

    /** The error that stops a run at a non-finite loss: where, and which checkpoint to resume from. */
    static IllegalStateException stopped(Trainer.NonFiniteLossException nan, int epoch, int batches, Path out) throws IOException {
        List<Path> saved = TrainCheckpoint.checkpoints(out.resolve(TrainCheckpoint.DIR));
        return new IllegalStateException(String.format(Locale.ROOT, "training stopped at step %d of epoch %d (global step %d): %s; %s",
                nan.step(), epoch, (long) (epoch - 1) * batches + nan.step(), nan.getMessage(),
                saved.isEmpty() ? "no checkpoint was written yet" : "the last good checkpoint is " + saved.getLast()
                        + " (--resume it with a lower --lr, or train with --on-nan skip)"), nan);
    }

    /** The metadata that lets a checkpoint's model be rebuilt: which model, the input shape and the class names. */
    static Map<String, String> modelMetadata(ModelZoo kind, TrainingData data) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt"); // the tensors are laid out as PyTorch's, so its loaders accept the file
        meta.put(META_MODEL, kind.cliName());
        meta.put(META_INPUT_SHAPE, Arrays.stream(data.inputShape()).mapToObj(Integer::toString).collect(Collectors.joining(",")));
        meta.put(META_CLASSES, String.join("\n", data.classes()));
        ImageFolder.Options pre = data.preprocessing();
        meta.put(META_DATA, data.name());
        meta.put(META_RESIZE, Integer.toString(pre.resize()));
        meta.put(META_MEAN, floats(pre.mean()));
        meta.put(META_STD, floats(pre.std()));
        return meta;
    }

    public static void saveCheckpoint(Path file, Layer model, ModelZoo kind, TrainingData data, int epoch, double testAccuracy) throws IOException {
        Map<String, String> meta = modelMetadata(kind, data);
        meta.put(META_EPOCH, Integer.toString(epoch));
        meta.put(META_TEST_ACC, String.format(Locale.ROOT, "%.4f", testAccuracy));
        Safetensors.write(file, model.stateDict(), meta);
    }

    /** Fails before any training when the run could not save its files: --out a file, or a folder that cannot be written. */
    static void requireWritableFolder(Path out) throws IOException {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new java.nio.file.FileAlreadyExistsException(out.toString(), null, "--out names a file, not a folder");
        }
        try {
            Files.createDirectories(out);
            Files.delete(Files.createTempFile(out, ".kiln-write-check", ".tmp"));
        } catch (java.nio.file.FileSystemException e) {   // access denied, read-only file system, ...
            throw new IOException("--out " + out + " cannot be written (" + e.getClass().getSimpleName()
                    + (e.getReason() == null ? "" : ": " + e.getReason()) + "); choose another folder", e);
        }
    }

    private static void writeMetrics(Path file, List<EpochStats> history) throws IOException {
        writeCsv(file, EpochStats.CSV_HEADER, history.stream().map(EpochStats::csv).toList());
    }

    /** The whole CSV, rewritten each epoch through a temporary file so it is never half written. */
    static void writeCsv(Path file, String header, List<String> lines) throws IOException {
        StringBuilder sb = new StringBuilder(header).append('\n');
        for (String line : lines) sb.append(line).append('\n');
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.writeString(tmp, sb, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The input shape a checkpoint was trained on: its metadata's, or Fashion-MNIST's for checkpoints that predate it. */
    static int[] inputShape(Map<String, String> meta, Path file) {
        String s = meta.get(META_INPUT_SHAPE);
        if (s == null) return new int[]{1, 28, 28};
        try {
            int[] shape = Arrays.stream(s.split(",")).mapToInt(Integer::parseInt).toArray();
            if (shape.length != 3 || Arrays.stream(shape).anyMatch(d -> d < 1)) throw new NumberFormatException(s);
            return shape;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(file + ": metadata " + META_INPUT_SHAPE + " '" + s + "' is not C,H,W");
        }
    }

    private static String floats(float[] v) {
        StringBuilder sb = new StringBuilder();
        for (float f : v) sb.append(sb.isEmpty() ? "" : ",").append(f);
        return sb.toString();
    }

    /**
     * How images are prepared for a checkpoint's model: as its metadata says, or for checkpoints that predate those keys,
     * as its data most likely was (1x28x28: Fashion-MNIST; 3x32x32 with CIFAR-10's classes: CIFAR-10; else an image folder).
     */
    static ImageFolder.Options preprocessing(Map<String, String> meta, int[] shape, List<String> classes, Path file) {
        if (meta.containsKey(META_MEAN) && meta.containsKey(META_STD) && meta.containsKey(META_RESIZE)) {
            try {
                return new ImageFolder.Options(shape[1], Integer.parseInt(meta.get(META_RESIZE)), shape[0], parseFloats(meta.get(META_MEAN)),
                        parseFloats(meta.get(META_STD)), false);
            } catch (IllegalArgumentException e) {   // NumberFormatException among them
                throw new IllegalArgumentException(file + ": metadata " + META_RESIZE + ", " + META_MEAN + " or " + META_STD + " is malformed: " + e.getMessage());
            }
        }
        String data = meta.getOrDefault(META_DATA, Arrays.equals(shape, new int[]{1, 28, 28}) ? "fashion-mnist"
                : Arrays.equals(shape, new int[]{3, 32, 32}) && classes.equals(dev.kiln.data.Cifar10.CLASSES) ? "cifar10" : "image-folder");
        return TrainingData.preprocessing(data, shape);
    }

    private static float[] parseFloats(String s) {
        String[] parts = s.split(",");
        float[] out = new float[parts.length];
        for (int i = 0; i < parts.length; i++) out[i] = Float.parseFloat(parts[i].trim());
        return out;
    }

    /** The class names a checkpoint was trained with: its metadata's, or Fashion-MNIST's. */
    public static List<String> classes(Map<String, String> meta) {
        String s = meta.get(META_CLASSES);
        return s == null ? dev.kiln.data.FashionMnist.CLASSES : List.of(s.split("\n", -1));
    }

    /**
     * A checkpoint loaded into its model: which zoo model, the input shape (C, H, W) and class names it was trained
     * with, and the rest of its metadata.
     */
    public record LoadedCheckpoint(Model model, ModelZoo kind, int[] inputShape, List<String> classes, Map<String, String> metadata,
                                   ImageFolder.Options preprocessing) {}

    /** Loads a checkpoint written by {@link #saveCheckpoint} (or an int8 one of kiln quantize); kind (null: the one its metadata names) overrides the model. */
    public static LoadedCheckpoint loadCheckpoint(Path file, ModelZoo kind) throws IOException {
        return loadCheckpoint(file, Safetensors.read(file), kind);
    }

    /** As {@link #loadCheckpoint(Path, ModelZoo)}, from the contents already read from {@code file}. */
    public static LoadedCheckpoint loadCheckpoint(Path file, Safetensors.Contents c, ModelZoo kind) {
        if (kind == null) {
            String name = c.metadata().get(META_MODEL);
            if (name == null) throw new IllegalArgumentException(file + " does not say which model it holds; pass --model");
            kind = ModelZoo.parse(name);
        }
        int[] shape = inputShape(c.metadata(), file);
        List<String> classes = classes(c.metadata());
        Model m = kind.build(new Generator(0), shape, classes.size());
        try {
            if (QuantizedModel.isQuantized(c.metadata())) m = QuantizedModel.load(c, m); // kiln quantize's output: int8 layers on this structure
            else m.loadStateDict(TrainCheckpoint.modelTensors(c.tensors())); // a full training checkpoint holds the optimizer's too
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + " does not fit model " + kind.cliName() + ": " + e.getMessage(), e);
        }
        return new LoadedCheckpoint(m, kind, shape, classes, c.metadata(), preprocessing(c.metadata(), shape, classes, file));
    }
}
