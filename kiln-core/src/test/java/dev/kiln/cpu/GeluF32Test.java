package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Float32 GELU and its backward on the CPU (vector lanes and the scalar tail, through ElementwiseCpu) against the
 * double-precision reference (ScalarMath's erf) over [-12, 12] every 1/1024, and at +-0, +-inf and NaN: within
 * 4e-6 of the magnitude of what each result is made of.
 */
class GeluF32Test {
    /** got within 4e-6 of scale (the magnitude of what the result is made of), or 1e-9 absolute. */
    private static void check(String what, double x, double want, double got, double scale) {
        if (Double.isNaN(want)) {
            if (!Double.isNaN(got)) fail(what + " at " + x + ": want NaN, got " + got);
            return;
        }
        if (Double.isInfinite(want)) {
            assertEquals(want, got, what + " at " + x);
            return;
        }
        double err = Math.abs(want - got);
        if (!(err <= 4e-6 * scale || err <= 1e-9)) fail(what + " at " + x + ": want " + want + ", got " + got + " (error " + err + ")");
    }

    @Test void matchesTheDoubleReference() {
        int n = 24 * 1024 + 1 + 7;   // not a whole number of vectors: the scalar tail runs too
        float[] xs = new float[n];
        for (int i = 0; i < 24 * 1024 + 1; i++) xs[i] = -12f + i / 1024f;
        float[] extra = {0f, -0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 1e-30f, -1e-30f};
        System.arraycopy(extra, 0, xs, 24 * 1024 + 1, extra.length);
        Tensor x = Tensor.of(xs, n), g = Tensor.full(new int[]{n}, 1.5, DType.FLOAT32, dev.kiln.Device.CPU);
        double[] y = ElementwiseCpu.unary(UnaryOp.GELU, x).toDoubleArray();
        double[] dx = ElementwiseCpu.binary(BinaryOp.GELU_BACKWARD, g, x).toDoubleArray();
        for (int i = 0; i < n; i++) {
            double v = xs[i], cdf = 0.5 * (1 + ScalarMath.erf(v * Math.sqrt(0.5))), density = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
            check("gelu", v, ScalarMath.unary(UnaryOp.GELU, v), y[i], Math.abs(v * cdf));
            // the backward's two terms cancel near x = -0.75: measured against their size
            check("gelu backward", v, ScalarMath.binary(BinaryOp.GELU_BACKWARD, 1.5, v), dx[i], 1.5 * (cdf + Math.abs(v) * density));
        }
        assertTrue(Double.isNaN(y[n - 3]), "gelu(NaN)");
    }

    /** A value gives one result in a vector lane and in the scalar tail: the tail repeats the lanes' operations. */
    @Test void lanesAndTailAgree() {
        int n = 64 * 16 + 5;   // a multiple of every vector length, then five in the tail
        float[] xs = new float[n];
        for (int i = 0; i < n - 5; i++) xs[i] = -9f + i * (18f / (n - 5));
        for (int i = 0; i < 5; i++) xs[n - 5 + i] = xs[i * 97];
        Tensor x = Tensor.of(xs, n), g = Tensor.full(new int[]{n}, 0.75, DType.FLOAT32, dev.kiln.Device.CPU);
        double[] y = ElementwiseCpu.unary(UnaryOp.GELU, x).toDoubleArray(), dx = ElementwiseCpu.binary(BinaryOp.GELU_BACKWARD, g, x).toDoubleArray();
        for (int i = 0; i < 5; i++) {
            assertEquals(y[i * 97], y[n - 5 + i], 0.0, "gelu at " + xs[i * 97]);
            assertEquals(dx[i * 97], dx[n - 5 + i], 0.0, "gelu backward at " + xs[i * 97]);
        }
    }
}
