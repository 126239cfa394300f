package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import dev.kiln.optim.FusedOptimizerTest;
import dev.kiln.optim.FusedOptimizerTest.Kind;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused CUDA kernels (optim.cu, dropout.cu, losses.cu) against the CPU: the multi-tensor optimizer steps against the CPU's
 * composite of tensor ops, dropout masks bit-identical across devices for the same seed, softmax cross-entropy
 * forward and backward at float32 1e-5 / float64 1e-12 (relative, as GpuBackendComparison). Skips without a GPU.
 */
class FusedGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        dev.kiln.cuda.GpuTests.requireGpu(FusedGpuTest.class);
    }

    static double tol(DType t) { return t == DType.FLOAT64 ? 1e-12 : 1e-5; }

    // ------------------------------------------------------------------ optimizer steps

    @ParameterizedTest @EnumSource(Kind.class)
    void fusedStepMatchesCpuCompositeFloat32(Kind kind) {
        FusedOptimizerTest.assertClose(FusedOptimizerTest.steps(kind, Device.CPU, DType.FLOAT32, false),
                FusedOptimizerTest.steps(kind, GPU, DType.FLOAT32, true), 1e-5, kind + " float32");
    }

    @ParameterizedTest @EnumSource(Kind.class)
    void fusedStepMatchesCpuCompositeFloat64(Kind kind) {
        FusedOptimizerTest.assertClose(FusedOptimizerTest.steps(kind, Device.CPU, DType.FLOAT64, false),
                FusedOptimizerTest.steps(kind, GPU, DType.FLOAT64, true), 1e-12, kind + " float64");
    }

    /** 130 parameters: three launches of up to 48, sizes around the 4096-element chunk. */
    @ParameterizedTest @EnumSource(value = Kind.class, names = {"ADAMW", "SGD_NESTEROV"})
    void manyParametersSpanSeveralLaunches(Kind kind) {
        int[][] shapes = new int[130][];
        for (int i = 0; i < shapes.length; i++) shapes[i] = new int[]{1 + (i * 997) % 9000};
        FusedOptimizerTest.assertClose(FusedOptimizerTest.steps(kind, Device.CPU, DType.FLOAT64, true, shapes),
                FusedOptimizerTest.steps(kind, GPU, DType.FLOAT64, true, shapes), 1e-12, kind + " 130 parameters");
    }

    // ------------------------------------------------------------------ dropout

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64", "BFLOAT16", "FLOAT16"})
    void dropoutIsBitIdenticalAcrossDevices(DType dt) {
        Tensor x = Tensor.randn(new Generator(1), new int[]{257, 129}, DType.FLOAT64, Device.CPU).to(dt);
        Tensor w = Tensor.randn(new Generator(2), new int[]{257, 129}, DType.FLOAT64, Device.CPU).to(dt);
        Tensor xc = x.detach().requiresGrad(true), xg = x.to(GPU).detach().requiresGrad(true);
        Tensor yc = F.dropout(xc, 0.3, true, new Generator(77)), yg = F.dropout(xg, 0.3, true, new Generator(77));
        assertArrayEquals(yc.toDoubleArray(), yg.toDoubleArray(), 0.0, "forward");
        yc.mul(w).sum().backward();
        yg.mul(w.to(GPU)).sum().backward();
        assertArrayEquals(xc.grad().toDoubleArray(), xg.grad().toDoubleArray(), 0.0, "backward (mask recomputed on each device)");
    }

    // ------------------------------------------------------------------ softmax cross-entropy

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void crossEntropyMatchesCpu(DType dt) {
        int n = 300, c = 1000;   // c > 1024 threads' worth of work per block is covered by 2100 below
        for (int classes : new int[]{10, c, 2100}) {
            long[] t = new long[n];
            for (int i = 0; i < n; i++) t[i] = (i * 7919L) % classes;
            t[5] = -100;
            Tensor target = Tensor.of(t, n);
            Tensor x = Tensor.randn(new Generator(classes), new int[]{n, classes}, DType.FLOAT64, Device.CPU).mul(4).to(dt);
            for (double smoothing : new double[]{0, 0.1}) {
                for (Reduction r : Reduction.values()) {
                    String what = dt + " C=" + classes + " smoothing " + smoothing + " " + r;
                    Tensor xc = x.detach().requiresGrad(true), xg = x.to(GPU).detach().requiresGrad(true);
                    Tensor lc = F.crossEntropy(xc, target, smoothing, -100, r), lg = F.crossEntropy(xg, target.to(GPU), smoothing, -100, r);
                    GpuBackendComparison.close(lc, lg, tol(dt), what + " forward");
                    (r == Reduction.NONE ? lc.sum() : lc).backward();
                    (r == Reduction.NONE ? lg.sum() : lg).backward();
                    GpuBackendComparison.close(xc.grad(), xg.grad(), tol(dt), what + " backward");
                }
            }
        }
    }

    @Test void crossEntropyBadTargetIsReportedAtTheNextWait() {
        Tensor x = Tensor.zeros(new int[]{2, 3}, DType.FLOAT32, GPU);
        var e = assertThrows(IndexOutOfBoundsException.class, () -> F.crossEntropy(x, Tensor.of(new long[]{0, 3}, 2).to(GPU)).item());
        assertTrue(e.getMessage().contains("cross_entropy"), e.getMessage());
    }
}
