package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The split reduction (trailing block as rows, then the leading dims) against the plain per-channel sum. */
class ReductionsCpuTest {
    @Test void batchAndSpatialSumMatchesPerChannelLoop() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            Tensor x = Tensor.randn(new Generator(5), new int[]{7, 5, 6, 9}, t, Device.CPU);
            double[] v = x.toDoubleArray();
            double[] expected = new double[5];
            for (int n = 0; n < 7; n++) for (int c = 0; c < 5; c++) for (int i = 0; i < 54; i++) expected[c] += v[(n * 5 + c) * 54 + i];
            double tol = t == DType.FLOAT32 ? 1e-4 : 1e-12;
            assertArrayEquals(expected, x.sum(new int[]{0, 2, 3}, false).toDoubleArray(), tol, t.label());
            assertArrayEquals(new int[]{1, 5, 1, 1}, x.sum(new int[]{0, 2, 3}, true).shape());
            assertArrayEquals(expected, x.sum(new int[]{0, 2, 3}, true).toDoubleArray(), tol, t.label() + " keepdim");
            double[] max = new double[5];
            java.util.Arrays.fill(max, Double.NEGATIVE_INFINITY);
            for (int n = 0; n < 7; n++) for (int c = 0; c < 5; c++) for (int i = 0; i < 54; i++) max[c] = Math.max(max[c], v[(n * 5 + c) * 54 + i]);
            assertArrayEquals(max, x.max(0, false).max(1, false).max(1, false).toDoubleArray(), 0);
            assertArrayEquals(max, dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MAX, x, new int[]{0, 2, 3}, false).toDoubleArray(), 0);
        }
    }
}
