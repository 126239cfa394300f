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
/** Softmax and log-softmax on cuda:0 against the CPU. Skips without a GPU. */
class SoftmaxGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(SoftmaxGpuTest.class); }

    @Test void softmaxForwardAndBackward() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (int[] shape : new int[][]{{5, 10}, {3, 4, 2000}, {64, 3}}) {
                for (int dim = 0; dim < shape.length; dim++) {
                    for (boolean log : new boolean[]{false, true}) {
                        Tensor x = randn(t, shape).mul(3);
                        String what = (log ? "log_softmax " : "softmax ") + java.util.Arrays.toString(shape) + " dim " + dim + " " + t;
                        Tensor yc = CPU_BE.softmax(x, dim, log), yg = gpuBe.softmax(gpu(x), dim, log);
                        close(yc, yg, tol(t) * 10, what);
                        Tensor gy = randn(t, shape);
                        close(CPU_BE.softmaxBackward(gy, yc, dim, log), gpuBe.softmaxBackward(gpu(gy), yg, dim, log), tol(t) * 100, what + " backward");
                    }
                }
            }
        }
    }

    @Test void everyRowLengthAndDtype() {
        // the warp-per-row kernels (E = 1 to 32 elements a lane: rows of 1 to 1,024), the held block kernel (to 8,192)
        // and the two-pass block kernel past it (8,193, 20,000), element by element and in 16-byte vectors (lengths a
        // multiple of 8); a block's last warps idle (37 rows); a NaN row and an all -inf row give NaN rows as on the CPU
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.FLOAT16}) {
            for (int n : new int[]{1, 31, 33, 64, 100, 256, 1000, 1024, 1025, 3000, 8192, 8193, 20000}) {
                for (boolean log : new boolean[]{false, true}) {
                    double[] v = randn(DType.FLOAT64, 37, n).mul(3).toDoubleArray();
                    v[3 * n + n / 2] = Double.NaN;
                    for (int j = 0; j < n; j++) v[5 * n + j] = Double.NEGATIVE_INFINITY;
                    Tensor x = Tensor.of(v, 37, n).to(t);
                    String what = (log ? "log_softmax " : "softmax ") + "37 x " + n + " " + t;
                    double tolerance = t == DType.FLOAT64 ? 1e-11 : t == DType.FLOAT32 ? 1e-4 : 2e-2;
                    Tensor yc = CPU_BE.softmax(x, 1, log), yg = gpuBe.softmax(gpu(x), 1, log);
                    close(yc, yg, tolerance, what);
                    Tensor gy = randn(t, 37, n);
                    Tensor ycFinite = CPU_BE.softmax(randn(t, 37, n), 1, log);
                    close(CPU_BE.softmaxBackward(gy, ycFinite, 1, log), gpuBe.softmaxBackward(gpu(gy), gpu(ycFinite), 1, log),
                            tolerance * 10, what + " backward");
                }
            }
        }
    }

    @Test void manyLongRows() {
        // many rows past 8,192: a block a row, two passes (one of the rows -inf but for one element)
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
            for (int n : new int[]{9000, 9001}) {
                for (boolean log : new boolean[]{false, true}) {
                    double[] v = randn(DType.FLOAT64, 300, n).toDoubleArray();
                    for (int j = 1; j < n; j++) v[7 * n + j] = Double.NEGATIVE_INFINITY;
                    Tensor x = Tensor.of(v, 300, n).to(t), gy = randn(t, 300, n);
                    String what = (log ? "log_softmax " : "softmax ") + "300 x " + n + " " + t;
                    double tolerance = t == DType.FLOAT32 ? 1e-4 : 2e-2;
                    Tensor yc = CPU_BE.softmax(x, 1, log), yg = gpuBe.softmax(gpu(x), 1, log);
                    close(yc, yg, tolerance, what);
                    Tensor ycFinite = CPU_BE.softmax(randn(t, 300, n), 1, log);
                    close(CPU_BE.softmaxBackward(gy, ycFinite, 1, log), gpuBe.softmaxBackward(gpu(gy), gpu(ycFinite), 1, log),
                            tolerance * 10, what + " backward");
                }
            }
        }
    }
}
