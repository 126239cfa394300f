package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/**
 * The pre-norm transformer block of GPT-2 and nanoGPT, under their names: {@code x + attn(ln_1(x))}, then
 * {@code x + mlp(ln_2(x))}, with {@code attn} a {@link CausalSelfAttention} ({@code attn.c_attn}, {@code attn.c_proj})
 * and {@code mlp} two linear layers around a GELU ({@code mlp.c_fc} d -> 4d, {@code mlp.c_proj} 4d -> d).
 */
public final class TransformerBlock extends Layer implements Forward {
    private final LayerNorm ln1, ln2;
    private final CausalSelfAttention attn;
    private final Mlp mlp;

    /**
     * @param bias bias on every linear layer and layer norm, or on none (nanoGPT's {@code bias})
     * @param dropout dropout on the attention weights and on both residual branches while training
     * @param gelu the MLP's GELU: GPT-2 uses the tanh form
     * @param eps the layer norms' epsilon
     */
    public TransformerBlock(int dim, int heads, boolean bias, double dropout, F.GeluApproximation gelu, double eps, Generator g) {
        ln1 = registerLayer("ln_1", new LayerNorm(new int[]{dim}, eps, true, bias));
        attn = registerLayer("attn", new CausalSelfAttention(dim, heads, bias, dropout, g));
        ln2 = registerLayer("ln_2", new LayerNorm(new int[]{dim}, eps, true, bias));
        mlp = registerLayer("mlp", new Mlp(dim, bias, dropout, gelu, g));
    }

    /** x (B, T, d) -> (B, T, d). */
    @Override public Tensor forward(Tensor x) { return forward(x, null); }

    /** As {@link #forward(Tensor)} for positions after those the cache holds (null: none); see {@link CausalSelfAttention}. */
    public Tensor forward(Tensor x, KvCache.Entry cache) {
        // each branch's last projection adds the residual in its own op: no branch output kept beside the sum
        x = attn.forward(ln1.forwardForAutocast(x), cache, x);
        return mlp.forward(ln2.forwardForAutocast(x), x);
    }

    /** The attention layer. */
    public CausalSelfAttention attn() { return attn; }

    /** The feed-forward layer. */
    public Mlp mlp() { return mlp; }

    /** nanoGPT's MLP: {@code c_fc} (d -> 4d), GELU, {@code c_proj} (4d -> d), dropout while training. */
    public static final class Mlp extends Layer implements Forward {
        private final Linear cFc, cProj;
        private final GELU gelu;
        private final Dropout dropout;

        Mlp(int dim, boolean bias, double dropout, F.GeluApproximation gelu, Generator g) {
            cFc = registerLayer("c_fc", new Linear(dim, 4 * dim, bias, g));
            this.gelu = registerLayer("gelu", new GELU(gelu));
            cProj = registerLayer("c_proj", new Linear(4 * dim, dim, bias, g));
            this.dropout = registerLayer("dropout", new Dropout(dropout, g));
        }

        @Override public Tensor forward(Tensor x) { return forward(x, null); }

        /**
         * {@code residual + forward(x)} (residual null: none). GELU and c_proj run as one op that keeps c_fc's output
         * alone for backward (GELU's output is computed again there) and adds the residual, unless dropout comes between.
         */
        public Tensor forward(Tensor x, Tensor residual) {
            Tensor h = cFc.forward(x);
            if (dropout.active()) {
                Tensor y = dropout.forward(cProj.forward(gelu.forward(h)));
                return residual == null ? y : residual.add(y);
            }
            return F.linearAfterGelu(h, gelu.approximate(), cProj.weight(), cProj.bias(), residual);
        }

        /** The expanding projection, d -> 4d. */
        public Linear cFc() { return cFc; }

        /** The projection back, 4d -> d. */
        public Linear cProj() { return cProj; }
    }
}
