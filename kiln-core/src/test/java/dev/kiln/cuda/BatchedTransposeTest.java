package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** Which copies the CUDA copy treats as batched transposes, and their (B, P, Q): layouts only, so it runs without a GPU. */
class BatchedTransposeTest {
    private static Tensor zeros(int... shape) { return Tensor.zeros(shape, DType.FLOAT32, Device.CPU); }

    @Test void layoutChangesFoundWithTheirSizes() {
        Tensor x = zeros(8, 3, 5, 7), cl = x.toChannelsLast();
        assertArrayEquals(new long[]{8, 35, 3}, ElementwiseCuda.batchedTranspose(cl, x), "NCHW -> channels-last");
        assertArrayEquals(new long[]{8, 3, 35}, ElementwiseCuda.batchedTranspose(x, cl), "channels-last -> NCHW");
        Tensor w = zeros(64, 32, 3, 3), krsc = zeros(64, 3, 3, 32);
        assertArrayEquals(new long[]{64, 9, 32}, ElementwiseCuda.batchedTranspose(krsc, w.permute(0, 2, 3, 1)), "KCRS -> KRSC");
        Tensor m = zeros(45, 70);
        assertArrayEquals(new long[]{1, 70, 45}, ElementwiseCuda.batchedTranspose(zeros(70, 45), m.t()), "matrix transpose");
        Tensor u = zeros(4, 1, 6, 1, 5);   // size-1 dimensions do not count
        assertArrayEquals(new long[]{1, 5, 24}, ElementwiseCuda.batchedTranspose(zeros(5, 1, 4, 6, 1), u.permute(4, 1, 0, 2, 3)),
                "size-1 dimensions");
    }

    @Test void otherCopiesAreNot() {
        Tensor x = zeros(4, 5, 6);
        assertNull(ElementwiseCuda.batchedTranspose(zeros(5, 4, 6), x.permute(1, 0, 2)), "batch innermost");
        assertNull(ElementwiseCuda.batchedTranspose(zeros(4, 5, 6), x), "the same layout");
        assertNull(ElementwiseCuda.batchedTranspose(zeros(4, 5, 3), x.narrow(2, 0, 3)), "a source with gaps");
        assertNull(ElementwiseCuda.batchedTranspose(zeros(4, 6, 10).narrow(2, 0, 5).permute(0, 2, 1), x), "a destination with gaps");
        assertNull(ElementwiseCuda.batchedTranspose(zeros(6, 5, 4), x.permute(2, 1, 0)), "a full reversal of three");
    }
}
