package dev.kiln.train;

import dev.kiln.Device;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;

/**
 * Everything one {@code kiln train --model gpt|lstm} run needs: the model's sizes (its vocabulary comes from the
 * tokenizer, fit on the text), the tokenizer, the text file and the training settings. {@code steps} of 0 makes an
 * epoch one pass over the training chunks; above 0 an epoch is that many batches. {@code testLimit} of 0 evaluates
 * on every validation chunk. For the LSTM, {@code dim} is its hidden size and {@code heads} and {@code dropout} are 0.
 *
 * @param model gpt or lstm
 * @param context tokens per chunk (the GPT's positions)
 * @param layers transformer blocks or LSTM layers
 * @param heads attention heads (GPT)
 * @param dim the GPT's width or the LSTM's hidden size
 * @param dropout the GPT's dropout while training
 * @param tokenizer how the text becomes ids
 * @param vocab GPT-2's vocab.json ({@link TokenizerKind#GPT2} only, else null)
 * @param merges GPT-2's merges.txt ({@link TokenizerKind#GPT2} only, else null)
 * @param text the UTF-8 text file
 * @param epochs epochs
 * @param steps batches per epoch (0: one pass over the training chunks)
 * @param batchSize chunks per batch
 * @param optimizer the optimizer
 * @param lr its learning rate
 * @param schedule how the rate moves from epoch to epoch
 * @param seed initialisation, chunking and dropout seed
 * @param device where to train
 * @param outDir where the checkpoint and metrics go
 * @param testLimit evaluate on the first this many validation chunks (0: all)
 * @param precision the forward pass's precision
 * @param cudaGraphs replay each full training step as a CUDA graph
 */
public record TextTrainConfig(LanguageModel.Kind model, int context, int layers, int heads, int dim, double dropout,
                              TokenizerKind tokenizer, Path vocab, Path merges, Path text,
                              int epochs, int steps, int batchSize, OptimizerKind optimizer, double lr, LrSchedule schedule, long seed,
                              Device device, Path outDir, int testLimit, Precision precision, boolean cudaGraphs) {
    /** How the text becomes token ids ({@code --tokenizer}). */
    public enum TokenizerKind {
        /** One id per distinct character of the text ({@link dev.kiln.text.CharTokenizer#fit}). */
        CHAR,
        /** One id per UTF-8 byte, 256 ids. */
        BYTE,
        /** GPT-2's byte-level BPE from its vocab.json and merges.txt. */
        GPT2;

        public String cliName() { return name().toLowerCase(Locale.ROOT); }

        public static TokenizerKind parse(String name) {
            for (TokenizerKind k : values()) if (k.cliName().equalsIgnoreCase(name)) return k;
            throw new IllegalArgumentException("unknown tokenizer '" + name + "' (choose char, byte, gpt2)");
        }
    }

    /** A one-epoch float32 run on the CPU with the kind's default sizes, a character tokenizer and batches of 64. */
    public static TextTrainConfig defaults(LanguageModel.Kind model, Path text, Path outDir) {
        return new TextTrainConfig(model, model.defaultContext(), model.defaultLayers(), model.defaultHeads(), model.defaultDim(), model.defaultDropout(),
                TokenizerKind.CHAR, null, null, text, 1, 0, 64, model.defaultOptimizer(), 1e-3, LrSchedule.CONSTANT, 0, Device.CPU, outDir, 0,
                Precision.FP32, false);
    }

    /** This run with other model sizes (heads and dropout are ignored for the LSTM). */
    public TextTrainConfig withSizes(int context, int layers, int heads, int dim, double dropout) {
        boolean gpt = model == LanguageModel.Kind.GPT;
        return new TextTrainConfig(model, context, layers, gpt ? heads : 0, dim, gpt ? dropout : 0, tokenizer, vocab, merges, text, epochs, steps,
                batchSize, optimizer, lr, schedule, seed, device, outDir, testLimit, precision, cudaGraphs);
    }

    /** This run with other training lengths and rate. */
    public TextTrainConfig withTraining(int epochs, int steps, int batchSize, double lr) {
        return new TextTrainConfig(model, context, layers, heads, dim, dropout, tokenizer, vocab, merges, text, epochs, steps,
                batchSize, optimizer, lr, schedule, seed, device, outDir, testLimit, precision, cudaGraphs);
    }

    /** The same run writing to {@code dir}. */
    public TextTrainConfig withOutDir(Path dir) {
        return new TextTrainConfig(model, context, layers, heads, dim, dropout, tokenizer, vocab, merges, text, epochs, steps,
                batchSize, optimizer, lr, schedule, seed, device, dir, testLimit, precision, cudaGraphs);
    }

    /** Checks every setting, in the command line's words. */
    public TextTrainConfig {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tokenizer, "tokenizer");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(precision, "precision");
        Objects.requireNonNull(schedule, "schedule");
        if (context < 1) throw new IllegalArgumentException("--context must be >= 1, got " + context);
        if (layers < 1) throw new IllegalArgumentException("--layers must be >= 1, got " + layers);
        if (dim < 1) throw new IllegalArgumentException("--dim must be >= 1, got " + dim);
        if (model == LanguageModel.Kind.GPT) {
            if (heads < 1) throw new IllegalArgumentException("--heads must be >= 1, got " + heads);
            if (dim % heads != 0) throw new IllegalArgumentException("--dim " + dim + " must be a multiple of --heads " + heads);
            if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("--dropout must be in [0, 1), got " + dropout);
        }
        boolean gpt2 = tokenizer == TokenizerKind.GPT2;
        if (gpt2 && (vocab == null || merges == null)) {
            throw new IllegalArgumentException("--tokenizer gpt2 needs --vocab FILE (GPT-2's vocab.json) and --merges FILE (its merges.txt)");
        }
        if (!gpt2 && (vocab != null || merges != null)) {
            throw new IllegalArgumentException("--vocab and --merges go with --tokenizer gpt2, not " + tokenizer.cliName());
        }
        if (epochs < 1) throw new IllegalArgumentException("--epochs must be >= 1, got " + epochs);
        if (steps < 0) throw new IllegalArgumentException("--steps must be >= 0 (0: one pass over the text per epoch), got " + steps);
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
        if (!(lr > 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("--lr must be a positive number, got " + lr);
        if (testLimit < 0) throw new IllegalArgumentException("--test-limit must be >= 0, got " + testLimit);
        if ((long) steps * batchSize > Integer.MAX_VALUE) throw new IllegalArgumentException("--steps " + steps + " of --batch-size " + batchSize + " is too many chunks per epoch");
        if (cudaGraphs && !device.isCuda()) throw new IllegalArgumentException("--cuda-graphs needs a CUDA device, got " + device);
    }

    /** The model for a tokenizer of {@code vocab} ids. */
    public LanguageModel architecture(int vocab) {
        return switch (model) {
            case GPT -> LanguageModel.Gpt.of(vocab, context, layers, heads, dim, dropout);
            case LSTM -> new LanguageModel.Lstm(vocab, LanguageModel.Lstm.DEFAULT_EMBED, dim, layers);
        };
    }
}
