package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** The check the float32 vector kernels' tests share: a float32 result against the double path's, relative to its largest value. */
final class FloatPathAssert {
    private FloatPathAssert() {}

    static void close(Tensor want64, Tensor got32, double tol, String what) {
        assertEquals(DType.FLOAT32, got32.dtype(), what + ": dtype");
        double[] w = want64.toDoubleArray(), g = got32.toDoubleArray();
        double scale = 1e-30;
        for (double v : w) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < w.length; i++) {
            if (!(Math.abs(w[i] - g[i]) <= tol * scale)) fail(what + ": element " + i + " want " + w[i] + " got " + g[i] + " (max |want| " + scale + ")");
        }
    }
}
