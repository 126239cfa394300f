package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Scaled dot-product attention: the fused CPU kernel (taken for float32/float64) against float64 finite differences,
 * and against the composite it replaces, with causal, bool and additive masks, L != S and non-contiguous inputs.
 */
class AttentionGradTest {
    @Test void attentionGradient() {
        for (boolean causal : new boolean[]{false, true}) {
            GradCheck.check(x -> F.scaledDotProductAttention(x[0], x[1], x[2], causal), randn(111, 2, 3, 4), randn(112, 2, 3, 4), randn(113, 2, 3, 2));
        }
        // multi-head layout: (B, T, H, d) transposed to (B, H, T, d), a non-contiguous view
        GradCheck.check(x -> F.scaledDotProductAttention(x[0].transpose(1, 2), x[1].transpose(1, 2), x[2].transpose(1, 2), true),
                randn(114, 1, 3, 2, 2), randn(115, 1, 3, 2, 2), randn(116, 1, 3, 2, 2));
    }

    @Test void maskedAttentionGradient() {
        Tensor padding = Tensor.of(new double[]{1, 1, 0, 1, 0, 1, 1, 1}, 2, 1, 1, 4).gt(0.5); // (B, 1, 1, S)
        GradCheck.check(x -> F.scaledDotProductAttention(x[0], x[1], x[2], padding, false), randn(121, 2, 2, 3, 3), randn(122, 2, 2, 4, 3), randn(123, 2, 2, 4, 5));
        Tensor additive = randn(124, 3, 4);
        GradCheck.check(x -> F.scaledDotProductAttention(x[0], x[1], x[2], additive, true), randn(125, 2, 3, 3), randn(126, 2, 4, 3), randn(127, 2, 4, 2));
        // a mask that needs a gradient takes the composite, and gets its gradient
        GradCheck.check(x -> F.scaledDotProductAttention(x[0], x[1], x[2], x[3], false), randn(128, 2, 3, 2), randn(129, 2, 4, 2), randn(130, 2, 4, 2), randn(131, 3, 4));
    }

    @Test void fusedEqualsComposite() {
        Generator g = new Generator(5);
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32}) {
            for (int[] lsd : new int[][]{{1, 1, 1}, {5, 7, 3}, {7, 5, 8}, {16, 16, 4}}) {
                for (boolean causal : new boolean[]{false, true}) {
                    Tensor q = Tensor.randn(g, new int[]{2, 3, lsd[0], lsd[2]}, t, Device.CPU).requiresGrad(true);
                    Tensor k = Tensor.randn(g, new int[]{2, 3, lsd[1], lsd[2]}, t, Device.CPU).requiresGrad(true);
                    Tensor v = Tensor.randn(g, new int[]{2, 3, lsd[1], 5}, t, Device.CPU).requiresGrad(true);
                    // mostly true, and key 0 always visible (a row that sees nothing is NaN in the composite, 0 in the fused gradient)
                    Tensor mask = Tensor.randn(g, new int[]{3, 1, lsd[1]}, t, Device.CPU).add(Tensor.arange(lsd[1], Device.CPU).eq(0).to(t).mul(10)).gt(-1.0);
                    Tensor w = Tensor.randn(g, new int[]{2, 3, lsd[0], 5}, t, Device.CPU);
                    double tol = t == DType.FLOAT64 ? 1e-12 : 2e-5;
                    String what = t + " L,S,d " + java.util.Arrays.toString(lsd) + (causal ? " causal" : "");
                    Tensor[] fused = run(() -> F.scaledDotProductAttention(q, k, v, mask, causal), w, q, k, v);
                    Tensor[] ref = run(() -> Attention.composite(q, k, v, mask, causal), w, q, k, v);
                    for (int i = 0; i < fused.length; i++) assertClose(ref[i], fused[i], tol, what + " output " + i);
                }
            }
        }
    }

    @Test void rowThatSeesNoKeyIsNaN() {
        Tensor none = Tensor.zeros(1, 2).gt(0.5);
        Tensor y = F.scaledDotProductAttention(Tensor.ones(1, 2, 2), Tensor.ones(1, 2, 2), Tensor.ones(1, 2, 2), none, false);
        for (double v : y.toDoubleArray()) assertTrue(Double.isNaN(v));
    }

    @Test void longContextNeedsNoSquareMatrix() {
        // 4,096 x 4,096 scores in float64 would be 128 MB per head; the fused path holds one row per thread
        Generator g = new Generator(9);
        Tensor q = Tensor.randn(g, new int[]{1, 1, 4096, 8}, DType.FLOAT32, Device.CPU);
        Tensor y = F.scaledDotProductAttention(q, q, q, true);
        assertArrayEquals(new int[]{1, 1, 4096, 8}, y.shape());
        // row 0 sees only key 0: its output is v[0]
        assertArrayEquals(java.util.Arrays.copyOf(q.toFloatArray(), 8), java.util.Arrays.copyOf(y.toFloatArray(), 8), 1e-6f);
    }

    @Test void badInputsAreNamed() {
        Tensor q = Tensor.zeros(2, 3, 4), k = Tensor.zeros(2, 5, 4), v = Tensor.zeros(2, 5, 4);
        var e = assertThrows(IllegalArgumentException.class, () -> F.scaledDotProductAttention(q, k, v, Tensor.zeros(4, 5).gt(0), false));
        assertTrue(e.getMessage().contains("mask of shape [4, 5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> F.scaledDotProductAttention(q, k, Tensor.zeros(2, 4, 4), false));
        assertTrue(e.getMessage().contains("sequence length"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> F.scaledDotProductAttention(q, k, v, Tensor.zeros(3, 5).to(DType.INT64), false));
        assertTrue(e.getMessage().contains("bool"), e.getMessage());
    }

    private static Tensor[] run(java.util.function.Supplier<Tensor> f, Tensor w, Tensor... inputs) {
        for (Tensor x : inputs) x.zeroGrad();
        Tensor y = f.get();
        y.mul(w).sum().backward();
        Tensor[] out = new Tensor[inputs.length + 1];
        out[0] = y.detach();
        for (int i = 0; i < inputs.length; i++) out[i + 1] = inputs[i].grad().detach().contiguousCopy();
        return out;
    }

    private static void assertClose(Tensor ref, Tensor got, double tol, String what) {
        assertArrayEquals(ref.shape(), got.shape(), what + ": shape");
        double[] r = ref.toDoubleArray(), g = got.toDoubleArray();
        for (int i = 0; i < r.length; i++) assertEquals(r[i], g[i], tol * Math.max(1, Math.abs(r[i])), what + " [" + i + "]");
    }
}
