package dev.kiln.cpu;

import dev.kiln.Tensor;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Float32 ReLU on the CPU gives one answer wherever an element falls, a vector lane or the scalar tail:
 * {@code x > 0 ? x : 0}, so NaN and -0 become 0 (the CUDA kernels' rule); the lanes once used max(x, 0), which keeps NaN.
 */
class ReluF32Test {
    @Test void everyPositionFollowsTheScalarRule() {
        int n = 4 * 16 + 5;   // whole vectors of any width up to 512 bits, then a scalar tail
        float[] xs = new float[n];
        float[] special = {Float.NaN, -0f, 0f, -1.5f, 2.5f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE};
        for (int i = 0; i < n; i++) xs[i] = special[i % special.length];
        double[] y = ElementwiseCpu.unary(UnaryOp.RELU, Tensor.of(xs, n)).toDoubleArray();
        for (int i = 0; i < n; i++) {
            double want = xs[i] > 0 ? xs[i] : 0;
            assertEquals(Double.doubleToLongBits(want), Double.doubleToLongBits(y[i]), "relu(" + xs[i] + ") at " + i + ": got " + y[i]);
        }
    }
}
