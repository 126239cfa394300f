package dev.kiln.train;

import dev.kiln.Generator;
import dev.kiln.models.CharLSTM;
import dev.kiln.models.GPT;
import dev.kiln.nn.F;
import dev.kiln.nn.Model;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A language model that {@code kiln train} builds for a text and {@code kiln generate} rebuilds from a checkpoint:
 * its kind and sizes, which travel in the checkpoint's metadata ({@link #metadata()}, {@link #fromMetadata}) beside
 * the tokenizer, so the file alone is enough to generate.
 */
public sealed interface LanguageModel permits LanguageModel.Gpt, LanguageModel.Lstm {
    /** The kinds {@code kiln train --model} offers for text, with the defaults of each. */
    enum Kind {
        /** A GPT (nanoGPT's shakespeare_char model by default: 6 layers of 6 heads, 384 wide, 256 positions, dropout 0.2). */
        GPT(256, 6, 6, 384, 0.2, OptimizerKind.ADAMW),
        /** The CharLSTM of the benchmark (embedding 128, 2 layers of 512), over 128-token chunks. */
        LSTM(128, 2, 0, 512, 0, OptimizerKind.ADAM);

        private final int context, layers, heads, dim;
        private final double dropout;
        private final OptimizerKind optimizer;

        Kind(int context, int layers, int heads, int dim, double dropout, OptimizerKind optimizer) {
            this.context = context;
            this.layers = layers;
            this.heads = heads;
            this.dim = dim;
            this.dropout = dropout;
            this.optimizer = optimizer;
        }

        public String cliName() { return name().toLowerCase(Locale.ROOT); }

        /** Tokens per training chunk unless told otherwise. */
        public int defaultContext() { return context; }

        /** Transformer blocks (GPT) or LSTM layers. */
        public int defaultLayers() { return layers; }

        /** Attention heads (GPT; 0 for the LSTM, which has none). */
        public int defaultHeads() { return heads; }

        /** The residual stream's width (GPT) or the LSTM's hidden size. */
        public int defaultDim() { return dim; }

        /** Dropout while training (GPT; the LSTM has none). */
        public double defaultDropout() { return dropout; }

        /** AdamW for the GPT (as nanoGPT), Adam for the LSTM. */
        public OptimizerKind defaultOptimizer() { return optimizer; }

        /** The kind named {@code name}, or null when it names none (an image model, say). */
        public static Kind find(String name) {
            for (Kind k : values()) if (k.cliName().equalsIgnoreCase(name)) return k;
            return null;
        }

        public static String names() { return Arrays.stream(values()).map(Kind::cliName).collect(Collectors.joining(", ")); }
    }

    /** Metadata keys: the tokenizer's JSON, and the sizes under {@code kiln.gpt.*} or {@code kiln.lstm.*}. */
    String META_TOKENIZER = "kiln.tokenizer";

    Kind kind();

    /** Tokens in the vocabulary: the tokenizer's. */
    int vocab();

    /** The most tokens the model sees at once: the GPT's context; the LSTM carries a state, so no limit (Integer.MAX_VALUE). */
    int contextLimit();

    /** A fresh model of these sizes, initialised from g. */
    Model build(Generator g);

    /** The sizes as checkpoint metadata (the model kind goes under {@link TrainRun#META_MODEL}). */
    Map<String, String> metadata();

    /** The sizes in a few words, for the log. */
    String describe();

    /**
     * The model a checkpoint's metadata describes; {@code source} names the file in messages. Metadata of another
     * model (an image classifier) or with sizes missing is an {@link IllegalArgumentException} saying so.
     */
    static LanguageModel fromMetadata(Map<String, String> meta, String source) {
        String name = meta.get(TrainRun.META_MODEL);
        Kind kind = name == null ? null : Kind.find(name);
        if (kind == null) {
            throw new IllegalArgumentException(source + " holds " + (name == null ? "a model it does not name" : "a " + name + " image classifier")
                    + ", not a language model; give a checkpoint of 'kiln train --model " + String.join("|", Kind.names().split(", ")) + "'");
        }
        String p = "kiln." + kind.cliName() + ".";
        try {
            return switch (kind) {
                case GPT -> new Gpt(new GPT.Config(integer(meta, p + "vocab", source), integer(meta, p + "context", source),
                        integer(meta, p + "layers", source), integer(meta, p + "heads", source), integer(meta, p + "dim", source),
                        real(meta, p + "dropout", source), bool(meta, p + "bias", source), bool(meta, p + "head_bias", source),
                        bool(meta, p + "tied", source), gelu(meta, p + "gelu", source), real(meta, p + "layer_norm_eps", source)));
                case LSTM -> new Lstm(integer(meta, p + "vocab", source), integer(meta, p + "embed", source), integer(meta, p + "hidden", source),
                        integer(meta, p + "layers", source));
            };
        } catch (IllegalArgumentException e) {
            throw e.getMessage().startsWith(source) ? e : new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    /**
     * A GPT.
     *
     * @param config its architecture
     */
    record Gpt(GPT.Config config) implements LanguageModel {
        /**
         * The benchmark's GPT (bench/torch_ref.py W7, nanoGPT's shakespeare_char sizes): biases, an untied head with a
         * bias, the exact (erf) GELU, layer-norm epsilon 1e-5.
         */
        public static Gpt of(int vocab, int context, int layers, int heads, int dim, double dropout) {
            return new Gpt(new GPT.Config(vocab, context, layers, heads, dim, dropout, true, true, false, F.GeluApproximation.NONE, 1e-5));
        }

        @Override public Kind kind() { return Kind.GPT; }

        @Override public int vocab() { return config.vocab(); }

        @Override public int contextLimit() { return config.context(); }

        @Override public Model build(Generator g) { return new GPT(config, g); }

        @Override public Map<String, String> metadata() {
            Map<String, String> m = new LinkedHashMap<>();
            String p = "kiln.gpt.";
            m.put(p + "vocab", Integer.toString(config.vocab()));
            m.put(p + "context", Integer.toString(config.context()));
            m.put(p + "layers", Integer.toString(config.layers()));
            m.put(p + "heads", Integer.toString(config.heads()));
            m.put(p + "dim", Integer.toString(config.dim()));
            m.put(p + "dropout", Double.toString(config.dropout()));
            m.put(p + "bias", Boolean.toString(config.bias()));
            m.put(p + "head_bias", Boolean.toString(config.headBias()));
            m.put(p + "tied", Boolean.toString(config.tied()));
            m.put(p + "gelu", config.gelu().name().toLowerCase(Locale.ROOT));
            m.put(p + "layer_norm_eps", Double.toString(config.layerNormEps()));
            return m;
        }

        @Override public String describe() {
            return String.format(Locale.ROOT, "%s, %d heads, dim %d, context %d, dropout %s", plural(config.layers(), "layer"), config.heads(),
                    config.dim(), config.context(), config.dropout());
        }
    }

    /**
     * A {@link CharLSTM}: embedding, LSTM layers, linear head.
     *
     * @param vocab tokens
     * @param embed the embedding's width
     * @param hidden the LSTM's hidden size
     * @param layers LSTM layers
     */
    record Lstm(int vocab, int embed, int hidden, int layers) implements LanguageModel {
        /** The embedding width {@code kiln train} gives it (the benchmark's). */
        public static final int DEFAULT_EMBED = 128;

        /** Checks that every size is at least 1. */
        public Lstm {
            if (vocab < 1 || embed < 1 || hidden < 1 || layers < 1) {
                throw new IllegalArgumentException("LSTM sizes must be >= 1, got vocab " + vocab + ", embed " + embed + ", hidden " + hidden + ", layers " + layers);
            }
        }

        @Override public Kind kind() { return Kind.LSTM; }

        @Override public int contextLimit() { return Integer.MAX_VALUE; }

        @Override public Model build(Generator g) { return new CharLSTM(vocab, embed, hidden, layers, g); }

        @Override public Map<String, String> metadata() {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("kiln.lstm.vocab", Integer.toString(vocab));
            m.put("kiln.lstm.embed", Integer.toString(embed));
            m.put("kiln.lstm.hidden", Integer.toString(hidden));
            m.put("kiln.lstm.layers", Integer.toString(layers));
            return m;
        }

        @Override public String describe() { return plural(layers, "layer") + ", hidden " + hidden + ", embedding " + embed; }
    }

    private static String plural(int n, String noun) { return n + " " + noun + (n == 1 ? "" : "s"); }

    private static String text(Map<String, String> meta, String key, String source) {
        String v = meta.get(key);
        if (v == null) throw new IllegalArgumentException(source + ": metadata " + key + " is missing (a checkpoint of an older Kiln?)");
        return v;
    }

    private static int integer(Map<String, String> meta, String key, String source) {
        try {
            return Integer.parseInt(text(meta, key, source));
        } catch (NumberFormatException e) {
            throw malformed(meta, key, source);
        }
    }

    private static double real(Map<String, String> meta, String key, String source) {
        try {
            return Double.parseDouble(text(meta, key, source));
        } catch (NumberFormatException e) {
            throw malformed(meta, key, source);
        }
    }

    private static boolean bool(Map<String, String> meta, String key, String source) {
        return switch (text(meta, key, source)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw malformed(meta, key, source);
        };
    }

    private static F.GeluApproximation gelu(Map<String, String> meta, String key, String source) {
        String v = text(meta, key, source);
        for (F.GeluApproximation g : F.GeluApproximation.values()) if (g.name().equalsIgnoreCase(v)) return g;
        throw malformed(meta, key, source);
    }

    private static IllegalArgumentException malformed(Map<String, String> meta, String key, String source) {
        return new IllegalArgumentException(source + ": metadata " + key + " '" + meta.get(key) + "' is malformed");
    }
}
