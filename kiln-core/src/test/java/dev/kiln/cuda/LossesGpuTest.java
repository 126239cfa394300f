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
 * losses.cu's softmax cross-entropy forward and backward against the CPU at float32 1e-5 / float64 1e-12 (relative),
 * every reduction, with label smoothing and ignored rows; a bad target reported at the next wait. Skips without a GPU.
 */
class LossesGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        GpuTests.requireGpu(LossesGpuTest.class);
    }

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

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void l1SmoothL1AndHuberMatchCpu(DType dt) {
        Tensor x = Tensor.randn(new Generator(7), new int[]{64, 33}, DType.FLOAT64, Device.CPU).mul(2).to(dt);
        Tensor y = Tensor.randn(new Generator(8), new int[]{64, 33}, DType.FLOAT64, Device.CPU).to(dt);
        for (Reduction r : Reduction.values()) {
            for (int kind = 0; kind < 3; kind++) {
                String what = dt + " " + r + " " + new String[]{"l1", "smooth l1", "huber"}[kind];
                Tensor xc = x.detach().requiresGrad(true), xg = x.to(GPU).detach().requiresGrad(true);
                int k = kind;
                java.util.function.BiFunction<Tensor, Tensor, Tensor> loss = (a, b) -> switch (k) {
                    case 0 -> F.l1Loss(a, b, r);
                    case 1 -> F.smoothL1Loss(a, b, r, 0.5);
                    default -> F.huberLoss(a, b, r, 1.5);
                };
                Tensor lc = loss.apply(xc, y), lg = loss.apply(xg, y.to(GPU));
                GpuBackendComparison.close(lc, lg, tol(dt), what + " forward");
                (r == Reduction.NONE ? lc.sum() : lc).backward();
                (r == Reduction.NONE ? lg.sum() : lg).backward();
                GpuBackendComparison.close(xc.grad(), xg.grad(), tol(dt), what + " backward");
            }
        }
    }

    @Test void crossEntropyBadTargetIsReportedAtTheNextWait() {
        Tensor x = Tensor.zeros(new int[]{2, 3}, DType.FLOAT32, GPU);
        var e = assertThrows(IndexOutOfBoundsException.class, () -> F.crossEntropy(x, Tensor.of(new long[]{0, 3}, 2).to(GPU)).item());
        assertTrue(e.getMessage().contains("cross_entropy"), e.getMessage());
    }

    static double tol(DType t) { return t == DType.FLOAT64 ? 1e-12 : 1e-5; }
}
