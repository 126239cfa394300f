package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused dropout and softmax cross-entropy against the composites they replace, on the CPU. Dropout must be
 * bit-identical (same key, same uniforms, same products); cross-entropy agrees to float64 1e-12 and float32 1e-5
 * (the fused CPU kernel sums in double), and its float64 gradient passes gradcheck.
 */
class FusedOpsTest {
    private final Generator gen = new Generator(2024);

    private Tensor randn(DType t, int... shape) { return Tensor.randn(gen, shape, DType.FLOAT64, Device.CPU).to(t); }

    private static double tol(DType t) { return t == DType.FLOAT64 ? 1e-12 : 1e-5; }

    private static void close(Tensor expected, Tensor actual, double tol, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        for (int i = 0; i < e.length; i++) {
            if (Double.isNaN(e[i])) {
                assertTrue(Double.isNaN(a[i]), what + ": element " + i + " should be NaN, got " + a[i]);
                continue;
            }
            assertEquals(e[i], a[i], tol * Math.max(1, Math.abs(e[i])), what + ": element " + i);
        }
    }

    // ---------------------------------------------------------------- dropout

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void dropoutIsBitIdenticalToTheComposite(DType dt) {
        Tensor x = randn(dt, 33, 65).requiresGrad(true), w = randn(dt, 33, 65);
        Tensor fused = Dropout.dropout(x, 0.37, true, new Generator(11));
        fused.mul(w).sum().backward();
        Tensor fusedGrad = x.grad().contiguousCopy();   // zeroGrad releases the gradient's memory
        x.zeroGrad();
        Tensor composite = Dropout.composite(x, 0.37, new Generator(11));
        composite.mul(w).sum().backward();
        assertArrayEquals(composite.toDoubleArray(), fused.toDoubleArray(), 0.0, "forward");
        assertArrayEquals(x.grad().toDoubleArray(), fusedGrad.toDoubleArray(), 0.0, "backward: the same mask, recomputed from the key");
    }

    @Test void dropoutOfAViewUsesLogicalElementOrder() {
        Tensor x = randn(DType.FLOAT32, 20, 30).t();
        assertArrayEquals(Dropout.composite(x, 0.5, new Generator(3)).toFloatArray(),
                Dropout.dropout(x, 0.5, true, new Generator(3)).toFloatArray(), 0f);
    }

    @Test void dropoutKeepsNaNLikeTheComposite() {
        Tensor x = Tensor.full(new int[]{64}, Double.NaN, DType.FLOAT32, Device.CPU);
        for (float v : Dropout.dropout(x, 0.5, true, new Generator(1)).toFloatArray()) assertTrue(Float.isNaN(v), "NaN * 0 is NaN");
    }

    // ---------------------------------------------------------------- softmax cross-entropy

    /** Targets with an ignored row (-100) among valid classes. */
    private static Tensor targets(int n, int classes, long seed) {
        long[] t = new long[n];
        Generator g = new Generator(seed);
        for (int i = 0; i < n; i++) t[i] = (long) (Generator.uniformAt(g.nextSeed(), 0) * classes);
        t[n / 2] = -100;
        return Tensor.of(t, n);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void crossEntropyMatchesTheComposite(DType dt) {
        Tensor target = targets(37, 11, 5);
        for (double smoothing : new double[]{0, 0.1}) {
            for (Reduction r : Reduction.values()) {
                String what = dt + " smoothing " + smoothing + " " + r;
                Tensor x = randn(dt, 37, 11).mul(3).detach().requiresGrad(true);
                Tensor w = r == Reduction.NONE ? randn(dt, 37) : Tensor.scalar(1.7, dt, Device.CPU);
                Tensor fused = F.crossEntropy(x, target, smoothing, -100, r);
                fused.mul(w).sum().backward();
                Tensor fusedGrad = x.grad().contiguousCopy();
                x.zeroGrad();
                Tensor composite = Losses.crossEntropyComposite(x, target, smoothing, -100, Losses.Reduction.valueOf(r.name()));
                composite.mul(w).sum().backward();
                close(composite, fused, tol(dt), what + " forward");
                close(x.grad(), fusedGrad, tol(dt), what + " backward");
            }
        }
    }

    @Test void crossEntropyGradcheckFloat64() {
        Tensor target = targets(6, 5, 9);
        for (Reduction r : Reduction.values()) {
            GradCheck.check(x -> F.crossEntropy(x[0], target, 0.15, -100, r), randn(DType.FLOAT64, 6, 5));
            GradCheck.check(x -> F.crossEntropy(x[0], target.narrow(0, 0, 3), 0, 2, r), randn(DType.FLOAT64, 3, 5));
        }
    }

    @Test void crossEntropyOfNonContiguousLogits() {
        Tensor x = randn(DType.FLOAT64, 7, 9).t(), target = targets(9, 7, 3);
        close(Losses.crossEntropyComposite(x, target, 0, -100, Losses.Reduction.NONE), F.crossEntropy(x, target, 0, -100, Reduction.NONE),
                1e-12, "transposed logits");
    }

    @Test void crossEntropyAllIgnoredMeanIsNaNAsPyTorch() {
        Tensor x = randn(DType.FLOAT32, 2, 3);
        assertTrue(Double.isNaN(F.crossEntropy(x, Tensor.of(new long[]{-100, -100}, 2)).item()));
    }

    @Test void crossEntropyTargetOutOfRangeFails() {
        Tensor x = randn(DType.FLOAT32, 2, 3);
        var e = assertThrows(IndexOutOfBoundsException.class, () -> F.crossEntropy(x, Tensor.of(new long[]{0, 3}, 2)).item());
        assertTrue(e.getMessage().contains("out of range"), e.getMessage());
    }

    @Test void crossEntropyLargeLogitsStayFinite() {
        Tensor x = Tensor.of(new float[]{1000, 0, -1000, 500}, 2, 2);
        double[] rows = F.crossEntropy(x, Tensor.of(new long[]{1, 0}, 2), 0, -100, Reduction.NONE).toDoubleArray();
        assertEquals(1000, rows[0], 1e-3);
        assertEquals(1500, rows[1], 1e-3);
    }
}
