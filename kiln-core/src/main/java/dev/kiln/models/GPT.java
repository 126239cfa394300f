package dev.kiln.models;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.nn.Dropout;
import dev.kiln.nn.Embedding;
import dev.kiln.nn.F;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Init;
import dev.kiln.nn.KvCache;
import dev.kiln.nn.Layer;
import dev.kiln.nn.LayerNorm;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Model;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.TransformerBlock;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GPT-2-style decoder-only language model under nanoGPT's names ({@code transformer.wte}, {@code transformer.wpe},
 * {@code transformer.h.{i}.ln_1}, {@code .attn.c_attn}, {@code .attn.c_proj}, {@code .ln_2}, {@code .mlp.c_fc},
 * {@code .mlp.c_proj}, {@code transformer.ln_f}, {@code lm_head}): token plus position embeddings, pre-norm
 * {@link TransformerBlock}s, a final layer norm and the head. nanoGPT's initialisation: N(0, 0.02) linear and
 * embedding weights, zero biases, N(0, 0.02 / sqrt(2 layers)) for the residual projections ({@code c_proj}).
 *
 * <p>With {@link Config#tied} the head uses the token embedding's weight (one tensor, counted once); the state dict
 * then lists it under both names, as PyTorch's does, and {@link #load} also takes one without {@code lm_head.weight}.
 * {@link #forward(Tensor, KvCache)} and {@link #generate} decode step by step over a key/value cache;
 * {@link #fromHuggingFace} reads a Hugging Face GPT-2 checkpoint.
 */
public final class GPT extends Model {
    /**
     * The architecture.
     *
     * @param vocab tokens in the vocabulary
     * @param context the most positions a sequence has (nanoGPT's block_size, GPT-2's n_positions)
     * @param layers transformer blocks
     * @param heads attention heads (dim must be a multiple)
     * @param dim width of the residual stream (n_embd)
     * @param dropout on embeddings, attention weights and residual branches while training
     * @param bias biases in the blocks' linear layers and in every layer norm
     * @param headBias a bias on lm_head (nanoGPT and GPT-2 have none)
     * @param tied lm_head uses the token embedding's weight (nanoGPT and GPT-2 do)
     * @param gelu the MLP's GELU (GPT-2's is the tanh form)
     * @param layerNormEps the layer norms' epsilon (GPT-2: 1e-5)
     */
    public record Config(int vocab, int context, int layers, int heads, int dim, double dropout, boolean bias, boolean headBias,
                         boolean tied, F.GeluApproximation gelu, double layerNormEps) {
        /** Checks the sizes and that dim is a multiple of heads. */
        public Config {
            if (vocab < 1 || context < 1 || layers < 1 || heads < 1 || dim < 1) {
                throw new IllegalArgumentException("GPT.Config: sizes must be >= 1, got vocab " + vocab + ", context " + context + ", layers " + layers
                        + ", heads " + heads + ", dim " + dim);
            }
            if (dim % heads != 0) throw new IllegalArgumentException("GPT.Config: dim " + dim + " is not a multiple of heads " + heads);
            if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("GPT.Config: dropout must be in [0, 1), got " + dropout);
            if (gelu == null) throw new IllegalArgumentException("GPT.Config: gelu must not be null");
            if (!(layerNormEps > 0)) throw new IllegalArgumentException("GPT.Config: layerNormEps must be > 0, got " + layerNormEps);
        }

        /** GPT-2's (and nanoGPT's) choices for these sizes: biases, a tied head without bias, tanh GELU, eps 1e-5, no dropout. */
        public static Config gpt2(int vocab, int context, int layers, int heads, int dim) {
            return new Config(vocab, context, layers, heads, dim, 0, true, false, true, F.GeluApproximation.TANH, 1e-5);
        }

        /** GPT-2 small, 124M parameters: 50257 tokens, 1024 positions, 12 layers of 12 heads, 768 wide. */
        public static Config gpt2Small() { return gpt2(50257, 1024, 12, 12, 768); }

        /** This config with another dropout. */
        public Config withDropout(double p) { return new Config(vocab, context, layers, heads, dim, p, bias, headBias, tied, gelu, layerNormEps); }
    }

    private final Config config;
    private final Embedding wte, wpe;
    private final Dropout drop;
    private final TransformerBlock[] blocks;
    private final LayerNorm lnF;
    private final Head lmHead;

    public GPT(Config c, Generator g) {
        this.config = c;
        Container transformer = registerLayer("transformer", new Container());
        wte = transformer.add("wte", new Embedding(c.vocab(), c.dim(), g));
        wpe = transformer.add("wpe", new Embedding(c.context(), c.dim(), g));
        drop = transformer.add("drop", new Dropout(c.dropout(), g));
        List<TransformerBlock> h = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) h.add(new TransformerBlock(c.dim(), c.heads(), c.bias(), c.dropout(), c.gelu(), c.layerNormEps(), g));
        transformer.add("h", new Sequential(h));
        blocks = h.toArray(TransformerBlock[]::new);
        lnF = transformer.add("ln_f", new LayerNorm(new int[]{c.dim()}, c.layerNormEps(), true, c.bias()));
        Tensor headWeight = c.tied() ? wte.weight() : Init.zeros(c.vocab(), c.dim());
        lmHead = registerLayer("lm_head", new Head(headWeight, c.headBias() ? Init.zeros(c.vocab()) : null));
        initialise(g);
    }

    /** nanoGPT's _init_weights, then the scaled residual projections. */
    private void initialise(Generator g) {
        for (Layer l : layers()) {
            switch (l) {
                case Linear lin -> {
                    Init.assign(lin.weight(), Init.normalWithStd(g, 0.02, lin.weight().shape()));
                    if (lin.bias() != null) Init.assign(lin.bias(), Init.zeros(lin.bias().shape()));
                }
                case Embedding e -> Init.assign(e.weight(), Init.normalWithStd(g, 0.02, e.weight().shape()));
                default -> { }
            }
        }
        if (!config.tied()) Init.assign(lmHead.weight, Init.normalWithStd(g, 0.02, lmHead.weight.shape()));
        for (var e : namedParameters().entrySet()) {
            if (e.getKey().endsWith("c_proj.weight")) Init.assign(e.getValue(), Init.normalWithStd(g, 0.02 / Math.sqrt(2.0 * config.layers()), e.getValue().shape()));
        }
    }

    /** The architecture. */
    public Config config() { return config; }

    /** ids (B, T) int64, T at most the context -> logits (B, T, vocab). */
    @Override public Tensor forward(Tensor ids) { return forward(ids, null); }

    /**
     * Logits (B, T, vocab) for ids (B, T) at the positions after those the cache holds (null: none, the ids start the
     * sequence): each layer appends the new keys and values to the cache and attends over all it holds, so a prompt
     * followed by one token at a time gives the logits a full forward pass over the whole sequence would.
     */
    public Tensor forward(Tensor ids, KvCache cache) {
        if (ids.dim() != 2 || ids.dtype().isFloating() || ids.dtype() == DType.BOOL) {
            throw new IllegalArgumentException("GPT: ids must be integer token ids of shape (B, T), got " + ids.dtype() + " " + Shape.str(ids.shape()));
        }
        int t = ids.size(1), past = cache == null ? 0 : cache.length();
        if (cache != null && cache.layers() != blocks.length) {
            throw new IllegalArgumentException("GPT: the cache has " + cache.layers() + " layers, the model " + blocks.length + " (use newCache())");
        }
        if (past + t > config.context()) {
            throw new IllegalArgumentException(past == 0
                    ? "GPT: " + t + " positions exceed the context of " + config.context() + " (crop the ids to the last " + config.context() + ")"
                    : "GPT: the cache holds " + past + " positions; " + t + " more exceed the context of " + config.context());
        }
        // positions past..past+t-1 are rows of the table: a slice, not a lookup of ids made on the host (which a CUDA
        // graph could not capture)
        Tensor x = drop.forward(wte.forward(ids).add(wpe.weight().narrow(0, past, t)));
        for (int i = 0; i < blocks.length; i++) x = blocks[i].forward(x, cache == null ? null : cache.layer(i));
        return lmHead.forward(lnF.forwardForAutocast(x));
    }

    /** An empty cache for this model: one entry per layer, room for the whole context. */
    public KvCache newCache() { return new KvCache(blocks.length, config.context()); }

    /**
     * Appends {@code n} tokens to each row of ids (B, T), each picked by {@code sampling} from the logits of the last
     * position (nanoGPT's generate), and returns the ids (B, T + n). Runs in evaluation mode, without gradients,
     * stepping over a key/value cache; once the sequence outgrows the context, each step runs on its last
     * {@code context} tokens (as nanoGPT crops), without the cache.
     */
    public Tensor generate(Tensor ids, int n, Sampling sampling, Generator g) {
        if (ids.dim() != 2 || ids.size(1) < 1) throw new IllegalArgumentException("GPT.generate: ids must be (B, T) with T >= 1, got " + Shape.str(ids.shape()));
        if (n < 0) throw new IllegalArgumentException("GPT.generate: n must be >= 0, got " + n);
        boolean training = isTraining();
        eval();
        try (KvCache cache = newCache()) {
            return Tensor.noGrad(() -> {
                int b = ids.size(0), t = ids.size(1), ctx = config.context();
                long[] seq = new long[b * (t + n)];
                long[] prompt = ids.toLongArray();
                for (int r = 0; r < b; r++) System.arraycopy(prompt, r * t, seq, r * (t + n), t);
                Tensor logits = forward(window(seq, b, t + n, Math.max(0, t - ctx), Math.min(t, ctx), ids), cache);
                for (int len = t; len < t + n; len++) {
                    Tensor last = logits.select(1, logits.size(1) - 1);
                    for (int r = 0; r < b; r++) seq[r * (t + n) + len] = sampling.next(last.select(0, r), g);
                    if (len + 1 == t + n) break;
                    if (cache.length() < ctx) {
                        logits = forward(window(seq, b, t + n, len, 1, ids), cache);
                    } else {   // full: the sliding window moves every position, so nothing cached stays valid
                        logits = forward(window(seq, b, t + n, len + 1 - ctx, ctx, ids), null);
                    }
                }
                return Tensor.fromHost(seq, DType.INT64, new int[]{b, t + n}, ids.device());
            });
        } finally {
            train(training);
        }
    }

    /** Columns from .. from+len-1 of the (b, width) ids in seq, as a tensor on like's device. */
    private static Tensor window(long[] seq, int b, int width, int from, int len, Tensor like) {
        long[] out = new long[b * len];
        for (int r = 0; r < b; r++) System.arraycopy(seq, r * width + from, out, r * len, len);
        return Tensor.fromHost(out, DType.INT64, new int[]{b, len}, like.device());
    }

    /**
     * {@link #loadStateDict} that also takes a tied model's state dict without {@code lm_head.weight} (as Hugging
     * Face saves one). In a tied model the two names are one tensor: a state dict where they differ is refused.
     */
    public void load(Map<String, Tensor> state) {
        Map<String, Tensor> s = new LinkedHashMap<>(state);
        if (config.tied()) {
            Tensor emb = s.get("transformer.wte.weight"), head = s.get("lm_head.weight");
            if (head == null && emb != null) s.put("lm_head.weight", emb);
            else if (head != null && emb != null && head != emb && java.util.Arrays.equals(head.shape(), emb.shape())
                    && Tensor.noGrad(() -> head.to(emb.dtype()).eq(emb).to(DType.FLOAT32).min().item()) != 1) {
                throw new IllegalArgumentException("GPT.load: the model ties lm_head.weight to transformer.wte.weight, but the state dict has two different"
                        + " tensors under those names: load it into a model whose config has tied = false");
            }
        }
        loadStateDict(s);
    }

    /**
     * A Hugging Face GPT-2 checkpoint, in evaluation mode: {@code config.json} (n_embd, n_layer, n_head, n_positions,
     * vocab_size, layer_norm_epsilon, activation_function "gelu_new" = tanh GELU, tie_word_embeddings) and
     * {@code model.safetensors} (or the shards {@code model.safetensors.index.json} lists) in {@code dir}, as
     * {@code save_pretrained} writes them. Names may carry the {@code transformer.} prefix or not; GPT-2's Conv1D
     * weights, stored (in, out), are transposed; {@code lm_head.weight} may be absent when tied; the attention buffers
     * {@code attn.bias} and {@code attn.masked_bias} are ignored. Missing, unexpected and mis-shaped tensors are
     * reported together, in the file's names.
     *
     * @throws IOException the files cannot be read or are not valid
     * @throws IllegalArgumentException the config or the tensors do not describe a GPT-2 this class builds
     */
    public static GPT fromHuggingFace(Path dir) throws IOException { return Gpt2Checkpoint.load(dir); }

    /** The plain ("transformer") container of nanoGPT's ModuleDict. */
    private static final class Container extends Layer {
        <L extends Layer> L add(String name, L layer) { return registerLayer(name, layer); }
    }

    /** lm_head: logits = x W^T (+ b), W (vocab, dim); W may be the token embedding's (tied). */
    private static final class Head extends Layer implements Forward {
        private final Tensor weight, bias;

        Head(Tensor weight, Tensor bias) {
            this.weight = registerParameter("weight", weight);
            this.bias = bias == null ? null : registerParameter("bias", bias);
        }

        @Override public Tensor forward(Tensor x) { return F.linear(x, weight, bias); }
    }
}
