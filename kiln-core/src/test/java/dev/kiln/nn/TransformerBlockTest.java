package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.GradCheck;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** The pre-norm block and its causal self-attention: names, agreement with MultiheadAttention, gradients, the cache. */
class TransformerBlockTest {
    static TransformerBlock block(boolean bias, F.GeluApproximation gelu) {
        TransformerBlock b = new TransformerBlock(8, 2, bias, 0, gelu, 1e-5, new Generator(1)).to(DType.FLOAT64);
        for (Tensor p : b.parameters()) Init.assign(p, randn(p.numel(), p.shape()).mul(0.5).add(p.dim() == 1 ? 0.3 : 0));
        return b;
    }

    @Test void namesAreNanoGpts() {
        assertEquals(List.of("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                        "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"),
                List.copyOf(new TransformerBlock(8, 2, true, 0, F.GeluApproximation.TANH, 1e-5, new Generator(0)).stateDict().keySet()));
        // bias = false: no linear biases and weight-only layer norms, as nanoGPT's LayerNorm(ndim, bias=False)
        assertEquals(List.of("ln_1.weight", "attn.c_attn.weight", "attn.c_proj.weight", "ln_2.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"),
                List.copyOf(new TransformerBlock(8, 2, false, 0, F.GeluApproximation.TANH, 1e-5, new Generator(0)).stateDict().keySet()));
        // 2 (ln) * 2d + (3d^2 + 3d) + (d^2 + d) + (4d^2 + 4d) + (4d^2 + d) with d = 8
        assertEquals(4 * 8 + 3 * 64 + 24 + 64 + 8 + 4 * 64 + 32 + 4 * 64 + 8, new TransformerBlock(8, 2, true, 0, F.GeluApproximation.NONE, 1e-5, new Generator(0)).parameterCount());
    }

    /** c_attn and c_proj hold what in_proj_weight and out_proj hold, so causal self-attention is MultiheadAttention's. */
    @Test void causalSelfAttentionIsMultiheadAttentionWithTheCausalMask() {
        CausalSelfAttention a = block(true, F.GeluApproximation.NONE).attn();
        MultiheadAttention m = new MultiheadAttention(8, 2, true, true, new Generator(0)).to(DType.FLOAT64);
        Init.assign(m.inProjWeight(), a.cAttn().weight());
        Init.assign(m.inProjBias(), a.cAttn().bias());
        Init.assign(m.outProj().weight(), a.cProj().weight());
        Init.assign(m.outProj().bias(), a.cProj().bias());
        Tensor x = randn(2, 3, 5, 8);
        assertArrayEquals(m.forward(x, x, x, null, null, true, false).output().toDoubleArray(), a.forward(x).toDoubleArray(), 1e-12);
    }

    @Test void gradients() {
        for (F.GeluApproximation gelu : F.GeluApproximation.values()) {
            TransformerBlock b = block(true, gelu);
            LayerGradCheck.check(b, randn(3, 2, 3, 8));
            GradCheck.check(in -> b.forward(in[0]), randn(4, 2, 3, 8));
        }
        TransformerBlock noBias = block(false, F.GeluApproximation.TANH);
        LayerGradCheck.check(noBias, randn(5, 1, 4, 8));
    }

    /** The cache: a prompt, then single positions and a chunk of two, give the full pass's output. */
    @Test void steppingOverTheCacheGivesTheFullOutput() {
        TransformerBlock b = block(true, F.GeluApproximation.TANH).eval();
        Tensor x = randn(6, 2, 7, 8);
        double[] full = b.forward(x).toDoubleArray();
        try (KvCache cache = new KvCache(1, 7)) {
            Tensor[] parts = {b.forward(x.narrow(1, 0, 3), cache.layer(0)), b.forward(x.narrow(1, 3, 1), cache.layer(0)),
                    b.forward(x.narrow(1, 4, 2), cache.layer(0)), b.forward(x.narrow(1, 6, 1), cache.layer(0))};
            assertEquals(7, cache.length());
            assertArrayEquals(full, Tensor.cat(List.of(parts), 1).toDoubleArray(), 1e-12);
            IllegalStateException full7 = assertThrows(IllegalStateException.class, () -> b.forward(x.narrow(1, 0, 1), cache.layer(0)));
            assertTrue(full7.getMessage().contains("holds 7 of 7 positions; 1 more do not fit"), full7.getMessage());
            cache.reset();
            assertEquals(0, cache.length());
            IllegalArgumentException batch = assertThrows(IllegalArgumentException.class, () -> b.forward(x.narrow(0, 0, 1), cache.layer(0)));
            assertTrue(batch.getMessage().contains("reset or close it for another batch"), batch.getMessage());
        }
    }

    @Test void errors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new CausalSelfAttention(10, 4, true, 0, new Generator(0)));
        assertTrue(e.getMessage().contains("dim (10) must be a positive multiple of heads (4)"), e.getMessage());
        TransformerBlock b = block(true, F.GeluApproximation.NONE);
        e = assertThrows(IllegalArgumentException.class, () -> b.attn().forward(randn(1, 2, 3, 6)));
        assertTrue(e.getMessage().contains("input must be (B, T, 8), got [2, 3, 6]"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> new KvCache(2, 4).layer(1).keys());
    }

    @Test void dropoutWhileTrainingOnly() {
        TransformerBlock b = new TransformerBlock(8, 2, true, 0.3, F.GeluApproximation.NONE, 1e-5, new Generator(2));
        Tensor x = Tensor.randn(new Generator(3), 2, 4, 8);
        assertTrue(b.forward(x).sub(b.forward(x)).abs().max().item() > 1e-4);
        b.eval();
        assertArrayEquals(b.forward(x).toFloatArray(), b.forward(x).toFloatArray());
    }
}
