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
/**
 * What the per-family GPU suites (ElementwiseGpuTest, ReductionsGpuTest, ...) share: cuda:0 against the CPU backend,
 * forward and backward (through the ops layer where the op has one), on fresh random inputs, several shapes,
 * non-contiguous views and broadcasting. Tolerances (relative, per element, against max(|ref|, mean |ref|)):
 * float64 1e-12 (1e-10 where reductions reorder long sums), float32 1e-5, TF32 matmul 1e-3, bfloat16/float16 1e-2.
 */
abstract class GpuBackendComparison {
    static final Device GPU = Device.cuda(0);
    static final Backend CPU_BE = Backends.cpu();
    static Backend gpuBe;
    final Generator gen = new Generator(System.nanoTime());

    /** Each test class's @BeforeAll: skip without a GPU, else take the backend (no conv TF32: float32 tolerance). */
    static void setUpGpu(Class<?> testClass) {
        dev.kiln.cuda.GpuTests.requireGpu(testClass);
        gpuBe = Backends.get(GPU);
        Cuda.setAllowTf32Conv(GPU, false);
    }

    static double tol(DType t) {
        return switch (t) {
            case FLOAT64 -> 1e-12;
            case FLOAT32 -> 1e-5;
            default -> 1e-2;
        };
    }

    // ------------------------------------------------------------------ helpers

    Tensor randn(DType t, int... shape) { return Tensor.randn(gen, shape, DType.FLOAT64, Device.CPU).to(t); }

    Tensor positive(DType t, int... shape) { return Tensor.uniform(gen, shape, 0.2, 2.0, DType.FLOAT64, Device.CPU).to(t); }

    static Tensor gpu(Tensor cpu) { return cpu.to(GPU).detach(); }

    /** A channels-last GPU copy of a 4-D CPU tensor. */
    static Tensor gpuCl(Tensor cpu) { return gpu(cpu).toChannelsLast().detach(); }

    /** A channels-last GPU copy of x (N, C, H, W) starting one element past a 16-byte boundary (the 16-byte kernels' fallbacks). */
    static Tensor misaligned(Tensor x) {
        int[] s = x.shape();
        Tensor nhwc = gpu(x).permute(0, 2, 3, 1).contiguous().flatten();
        Tensor padded = Tensor.cat(java.util.List.of(Tensor.zeros(new int[]{1}, x.dtype(), GPU), nhwc), 0);
        return padded.narrow(0, 1, (int) x.numel()).view(s[0], s[2], s[3], s[1]).permute(0, 3, 1, 2);
    }

    /** Asserts that a result kept the channels-last layout. */
    static void assertChannelsLast(Tensor t, String what) {
        assertTrue(t.prefersChannelsLast(), what + ": expected channels-last strides, got " + java.util.Arrays.toString(t.strides()));
    }

    /** Compares values: |g - c| <= tol * max(|c|, mean |c|), NaN only where the reference is NaN. */
    static void close(Tensor cpuRef, Tensor gpuOut, double tol, String what) {
        assertEquals(GPU, gpuOut.device(), what + ": result not on the GPU");
        assertArrayEquals(cpuRef.shape(), gpuOut.shape(), what + ": shape");
        double[] c = cpuRef.toDoubleArray(), g = gpuOut.toDoubleArray();
        double mean = 0;
        for (double v : c) if (!Double.isNaN(v) && !Double.isInfinite(v)) mean += Math.abs(v);
        mean = c.length == 0 ? 0 : mean / c.length;
        for (int i = 0; i < c.length; i++) {
            if (Double.isNaN(c[i]) || Double.isInfinite(c[i])) {
                if (Double.compare(c[i], g[i]) != 0 && !(Double.isNaN(c[i]) && Double.isNaN(g[i]))) {
                    fail(what + ": element " + i + " cpu " + c[i] + " gpu " + g[i]);
                }
                continue;
            }
            double err = Math.abs(c[i] - g[i]), scale = Math.max(Math.abs(c[i]), Math.max(mean, 1e-30));
            if (!(err <= tol * scale)) fail(what + ": element " + i + " of " + c.length + ": cpu " + c[i] + " gpu " + g[i] + " (rel err " + err / scale + ", tol " + tol + ")");
        }
    }

    /**
     * Compares a 16-bit weighted sum (Σ p·v) element by element with its rounding error bound: |g - c| <= tol * bound,
     * bound being the same sum of the terms' magnitudes (Σ |p·v|), which is what rounding the terms and the result is
     * proportional to. Where the terms cancel, a result far below its terms is held to their size, not its own.
     */
    static void closeToBound(Tensor cpuRef, Tensor gpuOut, Tensor bound, double tol, String what) {
        assertEquals(GPU, gpuOut.device(), what + ": result not on the GPU");
        assertArrayEquals(cpuRef.shape(), gpuOut.shape(), what + ": shape");
        double[] c = cpuRef.toDoubleArray(), g = gpuOut.toDoubleArray(), b = bound.toDoubleArray();
        for (int i = 0; i < c.length; i++) {
            double err = Math.abs(c[i] - g[i]);
            if (!(err <= tol * b[i] + 1e-30)) {
                fail(what + ": element " + i + " of " + c.length + ": cpu " + c[i] + " gpu " + g[i] + " (error " + err / b[i]
                        + " of the terms' magnitude " + b[i] + ", tol " + tol + ")");
            }
        }
    }

    /** Unit roundoff of a 16-bit type: half its spacing at 1 (bfloat16 8 significant bits, float16 11). */
    static double unitRoundoff(DType t) {
        return switch (t) {
            case BFLOAT16 -> 0x1p-8;
            case FLOAT16 -> 0x1p-11;
            default -> throw new IllegalArgumentException("not a 16-bit type: " + t);
        };
    }

    /**
     * Runs f on CPU leaves and on GPU copies of them, with the same random output weights, and compares the
     * outputs and every input's gradient.
     */
    void compareGraph(String what, double tol, Function<Tensor[], Tensor> f, Tensor... cpuInputs) {
        Tensor[] c = new Tensor[cpuInputs.length], g = new Tensor[cpuInputs.length];
        for (int i = 0; i < c.length; i++) {
            boolean grad = cpuInputs[i].dtype().isFloating();
            c[i] = cpuInputs[i].detach().requiresGrad(grad);
            g[i] = gpu(cpuInputs[i]).requiresGrad(grad);
        }
        Tensor yc = f.apply(c), yg = f.apply(g);
        close(yc, yg, tol, what + " forward");
        if (!yc.requiresGrad()) return;
        Tensor w = randn(yc.dtype(), yc.shape());
        yc.mul(w).sum().backward();
        yg.mul(gpu(w)).sum().backward();
        for (int i = 0; i < c.length; i++) {
            if (c[i].grad() == null) continue;
            assertNotNull(g[i].grad(), what + ": GPU input " + i + " got no gradient");
            close(c[i].grad(), g[i].grad(), tol * 10, what + " gradient of input " + i);
        }
    }

    // ------------------------------------------------------------------ transfers, fill, copy, random
}
