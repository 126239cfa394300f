package dev.kiln.cuda;

import dev.kiln.MemoryScope;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
/** Gather, scatter-add, index-select, index-add and image windows on cuda:0 against the CPU. Skips without a GPU. */
class IndexingGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(IndexingGpuTest.class); }

    Tensor randomIndex(int bound, int... shape) {
        Tensor u = Tensor.uniform(gen, shape, 0, bound, DType.FLOAT64, Device.CPU);
        return u.to(DType.INT64);
    }

    /** crop_images (augmentation's crops and flips) on random windows, partly outside, mirrored or not: the CPU's pixels exactly. */
    @Test void cropImagesMovesThePixelsTheCpuMoves() {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(System.nanoTime());
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT64}) {
            int n = 6, c = 3, h = 11, w = 13, oh = 9, ow = 10;
            int[] boxes = new int[n * 3];
            for (int i = 0; i < n; i++) {
                boxes[i * 3] = rng.nextInt(-5, 8);
                boxes[i * 3 + 1] = rng.nextInt(-5, 9);
                boxes[i * 3 + 2] = rng.nextInt(2);
            }
            Tensor x = randn(t, n, c, h, w), b = Tensor.fromHost(boxes, DType.INT32, new int[]{n, 3}, Device.CPU);
            Tensor cpu = dev.kiln.ops.Indexing.cropImages(x, b, oh, ow);
            Tensor gpu = dev.kiln.ops.Indexing.cropImages(gpu(x), gpu(b), oh, ow);
            assertArrayEquals(cpu.toDoubleArray(), gpu.toDoubleArray(), 0.0, "crop_images " + t);
            // a channels-last (strided) input gives the same windows
            assertArrayEquals(cpu.toDoubleArray(), dev.kiln.ops.Indexing.cropImages(gpuCl(x), gpu(b), oh, ow).toDoubleArray(), 0.0, "channels-last " + t);
        }
    }

    @Test void gatherScatterIndexSelectIndexAdd() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (int dim = 0; dim < 3; dim++) {
                int[] xs = {5, 6, 7};
                int[] is = {4, 5, 6};
                is[dim] = 9;
                Tensor index = randomIndex(xs[dim], is);
                int d = dim;
                compareGraph("gather dim " + dim + " " + t, tol(t), in -> in[0].gather(d, in[1]), randn(t, xs), index);
                compareGraph("gather transposed dim " + dim + " " + t, tol(t), in -> in[0].permute(2, 1, 0).gather(d, in[1]),
                        randn(t, 7, 6, 5), randomIndex(xs[dim], is));
                Tensor idx1 = randomIndex(xs[dim], 11);
                compareGraph("index_select dim " + dim + " " + t, tol(t), in -> in[0].indexSelect(d, in[1]), randn(t, xs), idx1);
            }
            compareGraph("embedding " + t, tol(t), in -> dev.kiln.ops.Indexing.embedding(in[1], in[0]), randn(t, 10, 4), randomIndex(10, 3, 5));
        }
        // out-of-bounds indices are reported at the next wait
        Tensor x = gpu(randn(DType.FLOAT32, 5, 3));
        Tensor bad = gpu(Tensor.of(new long[]{0, 7}, 2));
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> x.indexSelect(0, bad).toFloatArray());
        assertTrue(e.getMessage().contains("index 7") && e.getMessage().contains("size 5"), e.getMessage());
        x.indexSelect(0, gpu(Tensor.of(new long[]{4, 1}, 2))).toFloatArray();   // and the error was cleared
    }

    // ------------------------------------------------------------------ errors, memory
}
