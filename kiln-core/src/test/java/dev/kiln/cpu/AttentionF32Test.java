package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The float32 attention (AttentionF32: GEMMs per head) against the double-precision loops (float64 operands) on the
 * same values: outputs, logsumexp and the three gradients, for causal and full attention, L != S, dv != d, an additive
 * mask broadcast over heads with hidden keys, and a query that sees no key (its output NaN, its gradients nothing).
 */
class AttentionF32Test {
    private final Generator gen = new Generator(3);

    private static void close(Tensor want64, Tensor got32, double tol, String what) {
        assertEquals(DType.FLOAT32, got32.dtype(), what + ": dtype");
        double[] w = want64.toDoubleArray(), g = got32.toDoubleArray();
        assertEquals(w.length, g.length, what + ": size");
        double scale = 1e-30;
        for (double v : w) if (!Double.isNaN(v)) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < w.length; i++) {
            if (Double.isNaN(w[i]) ? !Double.isNaN(g[i]) : !(Math.abs(w[i] - g[i]) <= tol * scale)) {
                fail(what + ": element " + i + " want " + w[i] + " got " + g[i] + " (max |want| " + scale + ")");
            }
        }
    }

    private static Tensor f64(Tensor t) { return t == null ? null : t.to(DType.FLOAT64); }

    @Test void matchesTheDoublePath() {
        // b, h, l, s, d, dv, causal, mask
        Object[][] cases = {{2, 3, 17, 17, 16, 16, true, false}, {1, 2, 9, 23, 8, 12, false, false}, {2, 2, 12, 12, 32, 8, false, true},
                {1, 3, 33, 33, 24, 24, true, true},
                // several 64-row blocks: causal blocks see only the keys before their last row (L = S, L < S, L > S)
                {1, 2, 150, 150, 16, 16, true, false}, {1, 1, 70, 130, 8, 12, true, true}, {1, 1, 130, 40, 8, 8, true, false},
                {1, 1, 129, 129, 8, 8, false, true}};
        for (Object[] c : cases) {
            int b = (int) c[0], h = (int) c[1], l = (int) c[2], s = (int) c[3], d = (int) c[4], dv = (int) c[5];
            boolean causal = (boolean) c[6], masked = (boolean) c[7];
            String what = java.util.Arrays.toString(c);
            Tensor q = Tensor.randn(gen, b, h, l, d), k = Tensor.randn(gen, b, h, s, d), v = Tensor.randn(gen, b, h, s, dv);
            Tensor mask = null;
            if (masked) {
                float[] m = new float[b * l * s];
                for (int i = 0; i < m.length; i++) m[i] = (i % 5 == 0) ? Float.NEGATIVE_INFINITY : (float) Math.sin(i);
                for (int j = 0; j < s; j++) m[l / 2 * s + j] = Float.NEGATIVE_INFINITY;   // image 0's middle query sees no key
                mask = Tensor.of(m, b, 1, l, s).expand(b, h, l, s);
            }
            double scale = 1 / Math.sqrt(d);
            Tensor[] want = AttentionCpu.attention(f64(q), f64(k), f64(v), f64(mask), causal, scale);
            Tensor[] got = AttentionCpu.attention(q, k, v, mask, causal, scale);
            close(want[0], got[0], 1e-5, what + " out");
            close(want[1], got[1], 1e-5, what + " logsumexp");
            Tensor g = Tensor.randn(gen, b, h, l, dv);
            Tensor[] gw = AttentionCpu.attentionBackward(f64(g), f64(q), f64(k), f64(v), want[0], want[1], f64(mask), causal, scale);
            Tensor[] gg = AttentionCpu.attentionBackward(g, q, k, v, got[0], got[1], mask, causal, scale);
            close(gw[0], gg[0], 1e-5, what + " dq");
            close(gw[1], gg[1], 1e-5, what + " dk");
            close(gw[2], gg[2], 1e-5, what + " dv");
        }
    }

    /**
     * A self-attention's q, k and v as the views of one (B, L, 3H, d) projection that they are, read in place, a gradient
     * g with the merged heads' strides, and a key-padding mask broadcast over heads and queries (row stride 0): the same
     * values as the double path, the output laid out (B, L, H, dv) and the three gradients in one buffer of the
     * projection's layout.
     */
    @Test void readsAProjectionsHeadsInPlace() {
        for (boolean causal : new boolean[]{true, false}) {
            int b = 2, h = 3, l = 70, d = 16;
            Tensor packed = Tensor.randn(gen, b, l, 3 * h, d);
            Tensor q = packed.narrow(2, 0, h).transpose(1, 2), k = packed.narrow(2, h, h).transpose(1, 2), v = packed.narrow(2, 2 * h, h).transpose(1, 2);
            Tensor g = Tensor.randn(gen, b, l, h, d).transpose(1, 2);
            float[] m = new float[b * l];
            for (int i = 0; i < m.length; i++) m[i] = i % 7 == 3 ? Float.NEGATIVE_INFINITY : 0f;
            Tensor mask = causal ? null : Tensor.of(m, b, 1, 1, l).expand(b, h, l, l);
            double scale = 1 / Math.sqrt(d);
            String what = causal ? "causal" : "key padding";
            Tensor[] want = AttentionCpu.attention(f64(q), f64(k), f64(v), f64(mask), causal, scale);
            Tensor[] got = AttentionCpu.attention(q, k, v, mask, causal, scale);
            close(want[0], got[0], 1e-5, what + " out");
            close(want[1], got[1], 1e-5, what + " logsumexp");
            assertArrayEquals(new int[]{l * h * d, d, h * d, 1}, got[0].strides(), what + ": out laid out (B, L, H, dv)");
            Tensor[] gw = AttentionCpu.attentionBackward(f64(g), f64(q), f64(k), f64(v), want[0], want[1], f64(mask), causal, scale);
            Tensor[] gg = AttentionCpu.attentionBackward(g, q, k, v, got[0], got[1], mask, causal, scale);
            for (int i = 0; i < 3; i++) {
                close(gw[i], gg[i], 1e-5, what + " gradient " + i);
                assertSame(gg[0].storage(), gg[i].storage(), what + ": one buffer for dq, dk and dv");
                assertArrayEquals(q.strides(), gg[i].strides(), what + ": gradient " + i + " in the projection's layout");
                assertEquals(gg[0].offset() + i * h * d, gg[i].offset(), what + ": gradient " + i + "'s place");
            }
        }
    }
}
