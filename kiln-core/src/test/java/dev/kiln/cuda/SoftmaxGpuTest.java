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

    // ------------------------------------------------------------------ indexing
}
