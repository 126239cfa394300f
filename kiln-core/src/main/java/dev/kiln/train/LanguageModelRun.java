package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.data.Dataset;
import dev.kiln.data.TextCorpus;
import dev.kiln.data.ShardedDataset;
import dev.kiln.data.TokenChunks;
import dev.kiln.dist.ProcessGroup;
import dev.kiln.data.TrainingData;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.nn.SequenceCrossEntropyLoss;
import dev.kiln.optim.Optimizer;
import dev.kiln.text.ByteTokenizer;
import dev.kiln.text.CharTokenizer;
import dev.kiln.text.Gpt2Tokenizer;
import dev.kiln.text.Tokenizer;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/**
 * One {@code kiln train --model gpt|lstm} run: read a UTF-8 text, fit the tokenizer to it, hold out its last 10% for
 * validation, and train next-token prediction on chunks of {@code context} tokens with the {@link Trainer} (loss:
 * {@link SequenceCrossEntropyLoss}). After each epoch the validation loss (the mean next-token cross-entropy over
 * the validation chunks, in order) is reported, and the checkpoint and {@code metrics.csv} are rewritten; the
 * checkpoint's metadata holds the model's kind and sizes, the tokenizer and the training context, so
 * {@link #loadCheckpoint} (and {@code kiln generate}, {@code kiln eval}) rebuild everything from the file alone.
 */
public final class LanguageModelRun {
    private LanguageModelRun() {}

    /** Metadata keys beside {@link TrainRun#META_MODEL}, {@link TrainRun#META_EPOCH} and {@link LanguageModel#META_TOKENIZER}. */
    public static final String META_CONTEXT = "kiln.context", META_TEXT = "kiln.text", META_VALIDATION_FRACTION = "kiln.validation_fraction",
            META_VAL_LOSS = "kiln.val_loss";

    /** metrics.csv's columns for a language model. */
    public static final String CSV_HEADER = "epoch,train_loss,val_loss,val_ppl,val_acc,train_tokens_per_s,train_seconds";

    /**
     * The run's outcome (the figures of {@code --json}).
     *
     * @param validationLoss the last epoch's mean next-token cross-entropy on the validation text (nats per token)
     * @param validationAccuracy how often the most likely next token was the right one
     * @param trainTokensPerSecond training throughput over all epochs
     */
    public record Summary(String model, String device, String precision, int epochs, double validationLoss, double validationAccuracy,
                          double trainTokensPerSecond, double seconds, Path checkpoint, Path metrics, List<EpochStats> history) {
        public double validationPerplexity() { return Math.exp(validationLoss); }

        public String json() {
            // a diverged run's loss (and an overflowing perplexity) is null: JSON has no NaN or Infinity
            return String.format(Locale.ROOT, "{\"model\":\"%s\",\"device\":\"%s\",\"precision\":\"%s\",\"epochs\":%d,\"val_loss\":%s,\"val_ppl\":%s,"
                    + "\"val_acc\":%s,\"train_tokens_per_s\":%s,\"seconds\":%s}", model, device, precision, epochs,
                    TrainRun.jsonNumber("%.4f", validationLoss), TrainRun.jsonNumber("%.3f", validationPerplexity()),
                    TrainRun.jsonNumber("%.4f", validationAccuracy), TrainRun.jsonNumber("%.1f", trainTokensPerSecond), TrainRun.jsonNumber("%.2f", seconds));
        }
    }

    /**
     * A language-model checkpoint, loaded: the model (on the CPU, in evaluation mode), what it is, its tokenizer, the
     * chunk length it was trained on, and the whole metadata.
     */
    public record Loaded(Model model, LanguageModel architecture, Tokenizer tokenizer, int context, Map<String, String> metadata) {
        /** The text file it was trained on, as the checkpoint recorded it (null when it did not). */
        public Path text() {
            String s = metadata.get(META_TEXT);
            return s == null ? null : Path.of(s);
        }

        /** The share of the text held out for validation when it was trained. */
        public double validationFraction() {
            String s = metadata.get(META_VALIDATION_FRACTION);
            try {
                return s == null ? TextCorpus.DEFAULT_VALIDATION_FRACTION : Double.parseDouble(s);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("metadata " + META_VALIDATION_FRACTION + " '" + s + "' is not a number");
            }
        }
    }

    /**
     * Trains as {@code cfg} says, writing a line per epoch to {@code log}; {@code listener} sees each step and epoch,
     * {@code profile} (null: none) receives a trace of steps 20-30 of the first epoch.
     */
    public static Summary run(TextTrainConfig cfg, PrintWriter log, TrainListener listener, Path profile) throws IOException {
        return run(cfg, log, listener, profile, TrainRun.Checkpointing.DEFAULT, null);
    }

    /** As {@link #run(TextTrainConfig, PrintWriter, TrainListener, Path)}, checkpointing and resuming as {@link TrainRun} does for images. */
    public static Summary run(TextTrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, TrainRun.Checkpointing ck,
                              TrainCheckpoint.Found resume) throws IOException {
        return run(cfg, log, listener, profile, ck, resume, ProcessGroup.single());
    }

    /** As above, as one rank of {@code group}'s data-parallel job (see {@link TrainRun}'s: rank 0 alone writes and reports). */
    public static Summary run(TextTrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, TrainRun.Checkpointing ck,
                              TrainCheckpoint.Found resume, ProcessGroup group) throws IOException {
        return TrainRun.onDevice(cfg.device(), cfg.precision(), log, () -> train(cfg, log, listener, profile, ck, resume, group));
    }

    private static Summary train(TextTrainConfig cfg, PrintWriter log, TrainListener listener, Path profile, TrainRun.Checkpointing ck,
                                 TrainCheckpoint.Found resume, ProcessGroup group) throws IOException {
        long t0 = System.nanoTime();
        boolean lead = group.rank() == 0;
        int world = group.world();
        if (lead) TrainRun.requireWritableFolder(cfg.outDir());
        Tokenizer tokenizer = cfg.tokenizer() == TextTrainConfig.TokenizerKind.GPT2 ? Gpt2Tokenizer.load(cfg.vocab(), cfg.merges()) : null;
        String text = TextCorpus.readText(cfg.text());
        if (tokenizer == null) tokenizer = cfg.tokenizer() == TextTrainConfig.TokenizerKind.CHAR ? CharTokenizer.fit(text) : new ByteTokenizer();
        TextCorpus corpus = TextCorpus.of(cfg.text().toString(), text, tokenizer, TextCorpus.DEFAULT_VALIDATION_FRACTION);
        text = null; // the ids are what training needs; a large text need not stay twice in memory
        TokenChunks trainChunks = chunks(() -> corpus.trainChunks(cfg.context(), cfg.seed()));
        Dataset train = cfg.steps() > 0 ? new FixedEpochs(trainChunks, cfg.steps() * cfg.batchSize() * world, 0) : trainChunks;
        Dataset validation = TrainingData.head(chunks(() -> corpus.validationChunks(cfg.context())), cfg.testLimit());

        LanguageModel arch = cfg.architecture(tokenizer.vocabSize());
        Generator generator = new Generator(cfg.seed());
        Model model = arch.build(generator);
        model.to(cfg.device());
        Optimizer opt = cfg.optimizer().create(model.parameters(), cfg.lr());
        Trainer trainer = TrainRun.trainer(model, new SequenceCrossEntropyLoss(), opt, listener, cfg.precision(), cfg.cudaGraphs(), profile, ck, group,
                cfg.outDir());
        TrainCheckpoint.State state = new TrainCheckpoint.State(model, opt, generator, trainer.scaler());
        Map<String, String> modelMeta = modelMetadata(arch, tokenizer, cfg), configMeta = TrainCheckpoint.configMeta(cfg);
        Path checkpoint = cfg.outDir().resolve("model.safetensors"), metrics = cfg.outDir().resolve("metrics.csv");

        if (world > 1) train = ShardedDataset.of(train, group.rank(), world, cfg.batchSize(), cfg.seed()); // this rank's share of each global batch
        int steps = (train.size() + cfg.batchSize() - 1) / cfg.batchSize();
        log.printf(Locale.ROOT, "kiln: training %s (%,d parameters: %s) on %s: %s, %s tokenizer (%,d tokens), %,d training and %,d validation tokens, "
                        + "batches of %d x %d tokens, %,d steps per epoch, %s lr %s, %s%s%n",
                arch.kind().cliName(), model.parameterCount(), arch.describe(), world > 1 ? world + " ranks" : cfg.device(), cfg.text(), cfg.tokenizer().cliName(), tokenizer.vocabSize(),
                corpus.trainSize(), corpus.validationSize(), cfg.batchSize(), cfg.context(), steps, cfg.optimizer().name().toLowerCase(Locale.ROOT),
                cfg.lr() + (cfg.schedule() == LrSchedule.CONSTANT ? "" : " " + cfg.schedule().cliName()), cfg.precision().cliName(),
                cfg.cudaGraphs() ? ", CUDA graphs" : "");
        List<EpochStats> history = new ArrayList<>();
        TrainCheckpoint.Resumed resumed = resume == null ? new TrainCheckpoint.Resumed(1, null)
                : TrainCheckpoint.resume(resume, state, history, steps, "steps per epoch, this text", log);
        int firstEpoch = resumed.firstEpoch();
        Trainer.Start start = resumed.start();
        double trainSeconds = 0;
        long trainChunksSeen = 0;
        try (trainer;
             DataLoader trainLoader = DataLoader.builder(train).batchSize(cfg.batchSize()).workers(1).prefetch(3).device(cfg.device()).build();
             DataLoader valLoader = DataLoader.builder(validation).batchSize(cfg.batchSize()).workers(1).device(cfg.device()).build()) {
            for (int e = firstEpoch; e <= cfg.epochs(); e++) {
                int epoch = e;
                Trainer.StepHook checkpointHook = ck.every() == 0 || !lead ? null : (step, lossSum, samples) -> {
                    if (step < steps && ((long) (epoch - 1) * steps + step) % ck.every() == 0) {
                        double sum = lossSum.getAsDouble();
                        if (!Double.isFinite(sum)) throw new Trainer.NonFiniteLossException(step, "the loss is not finite at this step or one since the last check");
                        if (ck.onNan() == OnNan.STOP) TrainRun.requireFinite(model, step);
                        TrainCheckpoint.write(cfg.outDir(), state, new TrainCheckpoint.Position(epoch, step, steps, sum, samples), modelMeta, configMeta,
                                cfg.seed(), history, ck.keep());
                    }
                };
                Trainer.StepHook hook = cfg.schedule().apply(opt, cfg.lr(), e, cfg.epochs(), start == null ? 0 : start.step(), steps, checkpointHook);
                Trainer.TrainResult r;
                try {
                    r = trainer.trainEpoch(trainLoader, "epoch " + e + "/" + cfg.epochs(), start == null ? Trainer.Start.of(e - 1) : start, hook);
                    start = null;
                    if (ck.onNan() == OnNan.STOP && !Double.isFinite(r.meanLoss())) {
                        throw new Trainer.NonFiniteLossException(steps, "the loss is not finite at this step or one since the last check");
                    }
                    if (ck.onNan() == OnNan.STOP) TrainRun.requireFinite(model, steps);
                } catch (Trainer.NonFiniteLossException nan) {
                    throw TrainRun.stopped(nan, e, steps, cfg.outDir());
                }
                if (world > 1) r = TrainRun.overRanks(r, group, cfg.device());
                Evaluation ev = Evaluation.of(model, valLoader, cfg.precision());
                EpochStats s = new EpochStats(e, r.meanLoss(), ev.loss(), ev.accuracy(), r.samplesPerSecond(), r.seconds());
                history.add(s);
                trainSeconds += r.seconds();
                trainChunksSeen += r.samples();
                log.printf(Locale.ROOT, "epoch %d/%d  train loss %.4f  val loss %.4f (perplexity %.2f)  val acc %.2f%%  %,.0f tokens/s  %.1f s%n",
                        e, cfg.epochs(), s.trainLoss(), s.testLoss(), Math.exp(s.testLoss()), 100 * s.testAccuracy(),
                        s.trainSamplesPerSecond() * cfg.context(), s.trainSeconds());
                if (trainer.scaler() != null) {
                    log.printf(Locale.ROOT, "  fp16 loss scale %.0f, %d steps skipped for overflow so far%n", trainer.scaler().scale(), trainer.skippedSteps());
                }
                if (!lead) continue;
                TrainCheckpoint.write(cfg.outDir(), state, new TrainCheckpoint.Position(e, steps, steps, 0, r.samples()), modelMeta, configMeta,
                        cfg.seed(), history, ck.keep());
                saveCheckpoint(checkpoint, model, arch, tokenizer, cfg, e, ev.loss());
                TrainRun.writeCsv(metrics, CSV_HEADER, history.stream().map(h -> csv(h, cfg.context())).toList());
                if (listener != null) listener.epochEnded(s, List.copyOf(history), cfg.outDir());
                log.flush();
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (lead) log.println("kiln: wrote " + checkpoint + " and " + metrics);
        log.flush();
        EpochStats last = history.getLast();
        return new Summary(arch.kind().cliName(), cfg.device().toString(), cfg.precision().cliName(), cfg.epochs(), last.testLoss(), last.testAccuracy(),
                trainChunksSeen * (double) cfg.context() / trainSeconds, seconds, checkpoint, metrics, history);
    }

    /** One line of metrics.csv: every chunk holds {@code context} predicted tokens, so tokens/s = chunks/s x context. */
    private static String csv(EpochStats s, int context) {
        return String.format(Locale.ROOT, "%d,%.6f,%.6f,%.4f,%.6f,%.1f,%.3f", s.epoch(), s.trainLoss(), s.testLoss(), Math.exp(s.testLoss()),
                s.testAccuracy(), s.trainSamplesPerSecond() * context, s.trainSeconds());
    }

    /** Chunks of a part of the text, or an error that says what to change when the part is too short for one. */
    private static TokenChunks chunks(Supplier<TokenChunks> make) {
        try {
            return make.get();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage() + "; give a longer text or a smaller --context", e);
        }
    }

    /** What rebuilds the model and its tokenizer: its kind and sizes, the tokenizer, the context and the text. */
    private static Map<String, String> modelMetadata(LanguageModel arch, Tokenizer tokenizer, TextTrainConfig cfg) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt"); // PyTorch's layout and names
        meta.put(TrainRun.META_MODEL, arch.kind().cliName());
        meta.putAll(arch.metadata());
        meta.put(LanguageModel.META_TOKENIZER, tokenizer.toJson());
        meta.put(META_CONTEXT, Integer.toString(cfg.context()));
        meta.put(META_TEXT, cfg.text().toAbsolutePath().normalize().toString());
        meta.put(META_VALIDATION_FRACTION, Double.toString(TextCorpus.DEFAULT_VALIDATION_FRACTION));
        return meta;
    }

    /** Writes the state dict with everything {@link #loadCheckpoint} needs to rebuild the model and its tokenizer. */
    public static void saveCheckpoint(Path file, Model model, LanguageModel arch, Tokenizer tokenizer, TextTrainConfig cfg, int epoch,
                                      double validationLoss) throws IOException {
        Map<String, String> meta = modelMetadata(arch, tokenizer, cfg);
        meta.put(TrainRun.META_EPOCH, Integer.toString(epoch));
        meta.put(META_VAL_LOSS, String.format(Locale.ROOT, "%.6f", validationLoss));
        Safetensors.write(file, model.stateDict(), meta);
    }

    /**
     * A checkpoint that {@link #saveCheckpoint} wrote, rebuilt on the CPU in evaluation mode. A file of another model (an
     * image classifier), without a tokenizer, or whose tensors do not fit its sizes is an {@link IllegalArgumentException}
     * naming the file.
     */
    public static Loaded loadCheckpoint(Path file) throws IOException { return loadCheckpoint(file, Safetensors.read(file)); }

    /** As {@link #loadCheckpoint(Path)}, from the contents already read from {@code file}. */
    public static Loaded loadCheckpoint(Path file, Safetensors.Contents c) {
        Map<String, String> meta = c.metadata();
        LanguageModel arch = LanguageModel.fromMetadata(meta, file.toString());
        String json = meta.get(LanguageModel.META_TOKENIZER);
        if (json == null) throw new IllegalArgumentException(file + ": metadata " + LanguageModel.META_TOKENIZER + " is missing; the tokenizer is needed to generate");
        Tokenizer tokenizer;
        try {
            tokenizer = Tokenizer.fromJson(json);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
        if (tokenizer.vocabSize() != arch.vocab()) {
            throw new IllegalArgumentException(file + ": the tokenizer has " + tokenizer.vocabSize() + " tokens but the model " + arch.vocab());
        }
        int context;
        try {
            context = Integer.parseInt(meta.getOrDefault(META_CONTEXT, Integer.toString(Math.min(arch.contextLimit(), arch.kind().defaultContext()))));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(file + ": metadata " + META_CONTEXT + " '" + meta.get(META_CONTEXT) + "' is not a number");
        }
        Model model = arch.build(new Generator(0));
        try {
            model.loadStateDict(TrainCheckpoint.modelTensors(c.tensors())); // a full training checkpoint holds the optimizer's too
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + " does not fit its " + arch.kind().cliName() + " model (" + arch.describe() + "): " + e.getMessage(), e);
        }
        model.eval();
        return new Loaded(model, arch, tokenizer, context, meta);
    }

    /**
     * The loaded model's mean next-token loss and accuracy over the validation part of {@code text} (its last
     * share, as held out in training), tokenized by the checkpoint's tokenizer and cut into chunks of its training
     * context, in order; moves the model to {@code device}. {@code limit} of 0 scores every chunk, else the first ones.
     */
    public static Evaluation evaluate(Loaded lm, Path text, Device device, int batchSize, int limit) throws IOException {
        TextCorpus corpus = TextCorpus.of(text.toString(), TextCorpus.readText(text), lm.tokenizer(), lm.validationFraction());
        Dataset validation = TrainingData.head(chunks(() -> corpus.validationChunks(lm.context())), limit);
        lm.model().to(device);
        try (DataLoader loader = DataLoader.builder(validation).batchSize(batchSize).device(device).build()) {
            return Evaluation.of(lm.model(), loader);
        }
    }

    /**
     * Exactly {@code size} training chunks per epoch ({@code --steps} batches), read in order from the endless stream of
     * the chunks' own epochs (each a new cut and order of the text): run epoch e takes positions [e·size, (e+1)·size)
     * of it, so no chunk comes back before a whole pass has been read, however steps and passes line up.
     */
    static final class FixedEpochs implements Dataset {
        private final TokenChunks chunks;
        private final int size;
        private final long first;                // where in the stream this epoch starts
        private int viewPass = -1;               // the pass whose chunk order was cut last, kept: cutting one costs a pass
        private Dataset view;

        FixedEpochs(TokenChunks chunks, int size, long first) {
            this.chunks = chunks;
            this.size = size;
            this.first = first;
        }

        @Override public int size() { return size; }

        @Override public Dataset forEpoch(int epoch) { return new FixedEpochs(chunks, size, (long) epoch * size); }

        @Override public Batch batch(int[] indices) {
            int t = chunks.context(), n = chunks.size();
            long[] inputs = new long[indices.length * t], targets = new long[indices.length * t];
            for (int i = 0; i < indices.length; ) {
                int pass = (int) ((first + indices[i]) / n), j = i;
                while (j < indices.length && (first + indices[j]) / n == pass) j++;
                int[] local = new int[j - i];
                for (int k = i; k < j; k++) local[k - i] = (int) ((first + indices[k]) % n);
                Batch b = pass(pass).batch(local);
                System.arraycopy(b.inputs().toLongArray(), 0, inputs, i * t, local.length * t);
                System.arraycopy(b.targets().toLongArray(), 0, targets, i * t, local.length * t);
                i = j;
            }
            int[] shape = {indices.length, t};
            return new Batch(Tensor.fromHost(inputs, DType.INT64, shape, Device.CPU), Tensor.fromHost(targets, DType.INT64, shape.clone(), Device.CPU));
        }

        private synchronized Dataset pass(int pass) {
            if (pass != viewPass) {
                view = chunks.forEpoch(pass);
                viewPass = pass;
            }
            return view;
        }
    }

    /** Whether a checkpoint's metadata names a language model (gpt or lstm). */
    public static boolean isLanguageModel(Map<String, String> metadata) {
        String name = metadata.get(TrainRun.META_MODEL);
        return name != null && LanguageModel.Kind.find(name) != null;
    }
}
