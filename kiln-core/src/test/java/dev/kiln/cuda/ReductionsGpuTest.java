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
/** Reductions on cuda:0 against the CPU. Skips without a GPU. */
class ReductionsGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(ReductionsGpuTest.class); }

    @Test void reductionOverBatchAndSpatialDimsOfNchw() {
        for (boolean keep : new boolean[]{false, true}) {
            compareGraph("sum nchw keep " + keep, 1e-10, in -> in[0].sum(new int[]{0, 2, 3}, keep), randn(DType.FLOAT64, 16, 8, 12, 12));
            Tensor x = randn(DType.FLOAT32, 64, 32, 24, 24);
            close(x.to(DType.FLOAT64).sum(new int[]{0, 2, 3}, keep), gpu(x).sum(new int[]{0, 2, 3}, keep), 1e-6, "float32 nchw");
            compareGraph("max nchw", 1e-10, in -> dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MAX, in[0], new int[]{0, 2, 3}, keep),
                    randn(DType.FLOAT64, 5, 3, 4, 7));
        }
    }

    @Test void reductionsOverAnyDims() {
        int[][] dimsList = {{0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1}, {0, 1, 2}};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (int[] shape : new int[][]{{6, 7, 8}, {300, 2, 150}, {2, 3, 5000}}) {
                for (int[] dims : dimsList) {
                    for (boolean keep : new boolean[]{false, true}) {
                        String w = java.util.Arrays.toString(shape) + " dims " + java.util.Arrays.toString(dims) + " keep " + keep + " " + t;
                        if (t == DType.FLOAT64) {
                            compareGraph("sum " + w, 1e-10, in -> in[0].sum(dims, keep), randn(t, shape));
                            compareGraph("mean " + w, 1e-10, in -> in[0].mean(dims, keep), randn(t, shape));
                        } else {
                            // the CPU sums float32 in float (error ~ n·eps of sum |x|, unbounded relative to a sum that
                            // cancels); the GPU sums in double, so it is checked against float64 sums of the same values
                            Tensor x = randn(t, shape);
                            close(x.to(DType.FLOAT64).sum(dims, keep), gpu(x).sum(dims, keep), 1e-6, "sum " + w);
                            close(x.to(DType.FLOAT64).mean(dims, keep), gpu(x).mean(dims, keep), 1e-6, "mean " + w);
                        }
                        double tl = t == DType.FLOAT64 ? 1e-10 : 1e-5;
                        compareGraph("max " + w, tl, in -> dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MAX, in[0], dims, keep), randn(t, shape));
                        compareGraph("min " + w, tl, in -> dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MIN, in[0], dims, keep), randn(t, shape));
                    }
                }
                for (int d = 0; d < 3; d++) {
                    Tensor x = randn(t, shape);
                    int dd = d;
                    close(x.argmax(d, false), gpu(x).argmax(dd, false), 0, "argmax " + d + " " + t);
                    close(x.argmin(d, true), gpu(x).argmin(dd, true), 0, "argmin " + d + " " + t);
                }
            }
            // a transposed input, var (built from the primitives)
            Tensor x = randn(t, 40, 30);
            close(x.to(DType.FLOAT64).t().sum(1, false), gpu(x).t().sum(1, false), 1e-6, "sum of transposed " + t);
            // the two-pass paths: a few long rows, few columns over many rows
            Tensor longRows = randn(t, 3, 100_000), tall = randn(t, 20_000, 40);
            double tl2 = t == DType.FLOAT64 ? 1e-10 : 1e-6;
            close(longRows.to(DType.FLOAT64).sum(1, false), gpu(longRows).sum(1, false), tl2, "sum of long rows " + t);
            close(longRows.max(), gpu(longRows).max(), 0, "max of all " + t);
            close(tall.to(DType.FLOAT64).sum(0, false), gpu(tall).sum(0, false), tl2, "column sums " + t);
            close(tall.min(0, false), gpu(tall).min(0, false), 0, "column min " + t);
            compareGraph("var " + t, t == DType.FLOAT64 ? 1e-10 : 1e-4, in -> in[0].var(new int[]{1}, true, false), randn(t, 20, 30));
        }
        Tensor b = randn(DType.FLOAT32, 100).gt(0);
        close(b.sum(), gpu(b).sum(), 0, "sum of bool");
    }

    /**
     * Sums, max and min over the rows of (n, cols) arrays whose rows are whole 16-byte vectors (16 bytes a thread, the
     * lanes' sums combined in order): every float type, column counts that fill a tile of 32 vectors, of 16 (384 bf16
     * columns), that leave a tile part empty, and that are not whole vectors (the column-a-thread kernels); a NaN column;
     * a view starting off a 16-byte boundary; the same bits on a second run. Against float64 sums of the same values.
     */
    @Test void columnReductionsSixteenBytesAThread() {
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-6 : 8e-3;   // the sum rounded once to t
            for (int[] s : new int[][]{{16384, 384}, {777, 1152}, {64, 136}, {3, 1536}, {200, 40}, {300, 130}, {5000, 8}}) {
                String w = t + " " + java.util.Arrays.toString(s);
                Tensor x = randn(t, s);
                Tensor sum = gpu(x).sum(0, false);
                close(x.to(DType.FLOAT64).sum(0, false), sum, tl, "column sums " + w);
                assertArrayEquals(sum.toDoubleArray(), gpu(x).sum(0, false).toDoubleArray(), "column sums " + w + ": a second run differs");
                close(x.max(0, false), gpu(x).max(0, false), 0, "column max " + w);
                close(x.min(0, false), gpu(x).min(0, false), 0, "column min " + w);
            }
            Tensor x = randn(t, 257, 136);
            Tensor withNaN = Tensor.cat(java.util.List.of(x.narrow(1, 0, 5), Tensor.full(new int[]{257, 1}, Double.NaN, t, Device.CPU), x.narrow(1, 6, 130)), 1);
            close(withNaN.to(DType.FLOAT64).sum(0, false), gpu(withNaN).sum(0, false), tl, "column sums with a NaN column " + t);
            close(withNaN.max(0, false), gpu(withNaN).max(0, false), 0, "column max with a NaN column " + t);
            // rows 1.. of a (257, 136) array: 16-bit rows start 272 bytes apart (16-byte aligned), float32 rows 544; one
            // element in, neither is
            Tensor flat = gpu(x).flatten(), off = flat.narrow(0, 1, 256 * 136).view(256, 136);
            close(x.flatten().narrow(0, 1, 256 * 136).view(256, 136).to(DType.FLOAT64).sum(0, false), off.sum(0, false), tl, "column sums off a 16-byte boundary " + t);
        }
    }

    @Test void cumsumAlongEachDimAgainstTheCpu() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            // blocks along innermost lines, a thread per other line; long lines in segments (10,000 innermost: 3 of
            // 4,096; 5,000 over 6 lines: segments of 16)
            for (int[] shape : new int[][]{{1000}, {7, 300}, {5, 6, 7}, {3, 70, 2}, {40, 3}, {3, 10_000}, {2, 5000, 3}}) {
                for (int d = 0; d < shape.length; d++) {
                    int dim = d;
                    String w = t + " " + java.util.Arrays.toString(shape) + " dim " + d;
                    compareGraph("cumsum " + w, t == DType.FLOAT64 ? 1e-12 : t == DType.FLOAT32 ? 1e-6 : 1e-2, in -> in[0].cumsum(dim), randn(t, shape));
                }
            }
            compareGraph("cumsum of a transposed view " + t, t == DType.BFLOAT16 ? 1e-2 : 1e-6, in -> in[0].t().cumsum(1), randn(t, 33, 17));
        }
        // int64 exactly (beyond 2^53, where double sums would round), and bool as int64
        long[] v = new long[100];
        java.util.Random rnd = new java.util.Random(gen.nextSeed());
        for (int i = 0; i < v.length; i++) v[i] = (1L << 53) + rnd.nextInt(1000) - 500;
        Tensor big = Tensor.of(v, 4, 25);
        for (int d = 0; d < 2; d++) {
            assertArrayEquals(big.cumsum(d).toLongArray(), gpu(big).cumsum(d).toLongArray(), "int64 cumsum dim " + d);
        }
        Tensor b = randn(DType.FLOAT32, 6, 50).gt(0);
        assertArrayEquals(b.cumsum(1).toLongArray(), gpu(b).cumsum(1).toLongArray(), "bool cumsum");
        assertEquals(DType.INT64, gpu(b).cumsum(1).dtype());
    }
}
