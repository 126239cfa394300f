package dev.kiln.cpu;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.BatchNormParams;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Test;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The float32 vector kernels give one input one result however far the JIT has compiled them: the first call (often
 * interpreted) and a call after thousands of warm-up runs (C2) agree to the bit. The Vector API's reduceLanes(ADD) and
 * lanewise EXP do not promise that (their order or implementation changes between tiers), so the kernels avoid them;
 * a model trained twice in one process then trains the same.
 */
class JitTierDeterminismTest {
    private static void sameAfterWarmUp(String what, Supplier<double[]> f, Runnable warmUp) {
        double[] first = f.get();
        for (int i = 0; i < 3000; i++) warmUp.run();
        assertArrayEquals(first, f.get(), 0.0, what);
    }

    @Test void batchNormGeluAndAttention() {
        Generator gen = new Generator(4);
        Tensor x = Tensor.randn(gen, 4, 8, 9, 9), g = Tensor.randn(gen, 4, 8, 9, 9), w = Tensor.randn(gen, 8), b = Tensor.randn(gen, 8);
        Tensor small = Tensor.randn(gen, 2, 8, 6, 6), smallG = Tensor.randn(gen, 2, 8, 6, 6);
        BatchNormParams p = new BatchNormParams(true, 0.1, 1e-5, true);
        sameAfterWarmUp("batch norm", () -> {
            Tensor[] y = NormalizationCpu.batchNorm(x, w, b, null, null, null, null, p);
            Tensor dw = Tensor.zeros(8), db = Tensor.zeros(8);
            Tensor[] d = NormalizationCpu.batchNormBackward(g, y[0], x, w, y[1], y[2], p, false, true, dw, db);
            return concat(y[0], y[1], y[2], d[0], dw, db);
        }, () -> {
            Tensor[] y = NormalizationCpu.batchNorm(small, w, b, null, null, null, null, p);
            NormalizationCpu.batchNormBackward(smallG, y[0], small, w, y[1], y[2], p, false, true, Tensor.zeros(8), Tensor.zeros(8));
        });
        Tensor v = Tensor.randn(gen, 1000).mul(4), gv = Tensor.randn(gen, 1000), sv = Tensor.randn(gen, 64);
        sameAfterWarmUp("gelu", () -> concat(ElementwiseCpu.unary(UnaryOp.GELU, v), ElementwiseCpu.binary(BinaryOp.GELU_BACKWARD, gv, v)),
                () -> {
                    ElementwiseCpu.unary(UnaryOp.GELU, sv);
                    ElementwiseCpu.binary(BinaryOp.GELU_BACKWARD, sv, sv);
                });
        sameAfterWarmUp("sigmoid, tanh, silu, gelu tanh", () -> concat(ElementwiseCpu.unary(UnaryOp.SIGMOID, v), ElementwiseCpu.unary(UnaryOp.TANH, v),
                ElementwiseCpu.unary(UnaryOp.TANH, v.mul(0.01)), ElementwiseCpu.unary(UnaryOp.SILU, v), ElementwiseCpu.unary(UnaryOp.GELU_TANH, v)), () -> {
                    ElementwiseCpu.unary(UnaryOp.SIGMOID, sv);
                    ElementwiseCpu.unary(UnaryOp.TANH, sv);
                    ElementwiseCpu.unary(UnaryOp.SILU, sv);
                    ElementwiseCpu.unary(UnaryOp.GELU_TANH, sv);
                });
        Tensor q = Tensor.randn(gen, 1, 2, 16, 8), k = Tensor.randn(gen, 1, 2, 16, 8), vv = Tensor.randn(gen, 1, 2, 16, 8), ga = Tensor.randn(gen, 1, 2, 16, 8);
        sameAfterWarmUp("attention", () -> {
            Tensor[] o = AttentionCpu.attention(q, k, vv, null, true, 0.35);
            Tensor[] d = AttentionCpu.attentionBackward(ga, q, k, vv, o[0], o[1], null, true, 0.35);
            return concat(o[0], o[1], d[0], d[1], d[2]);
        }, () -> AttentionCpu.attention(q, k, vv, null, false, 0.35));
    }

    private static double[] concat(Tensor... ts) {
        int n = 0;
        for (Tensor t : ts) n += (int) t.numel();
        double[] out = new double[n];
        int at = 0;
        for (Tensor t : ts) {
            double[] a = t.toDoubleArray();
            System.arraycopy(a, 0, out, at, a.length);
            at += a.length;
        }
        return out;
    }
}
