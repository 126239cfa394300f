package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Cross-entropy, NLL, MSE, L1, smooth L1, Huber and BCE-with-logits: gradients against float64 finite differences, and values. */
class LossesGradTest {
    @ParameterizedTest @EnumSource(Reduction.class)
    void crossEntropyGradient(Reduction r) {
        Tensor t = Tensor.of(new long[]{2, 0, 1, 3}, 4);
        GradCheck.check(x -> F.crossEntropy(x[0], t, 0, -100, r), randn(61, 4, 4));
        GradCheck.check(x -> F.crossEntropy(x[0], t, 0.2, -100, r), randn(62, 4, 4));
        Tensor ignoring = Tensor.of(new long[]{2, -100, 1, -100}, 4);
        GradCheck.check(x -> F.crossEntropy(x[0], ignoring, 0.1, -100, r), randn(63, 4, 4));
        Tensor spatial = Tensor.of(new long[]{0, 2, 1, 1, 2, 0}, 2, 3);
        GradCheck.check(x -> F.crossEntropy(x[0], spatial, 0.1, 1, r), randn(64, 2, 3, 3));
    }

    @Test void crossEntropyIgnoredRowsGetNoGradient() {
        Tensor x = randn(65, 3, 4).requiresGrad(true);
        F.crossEntropy(x, Tensor.of(new long[]{1, -100, 2}, 3)).backward();
        double[] g = x.grad().toDoubleArray();
        for (int j = 4; j < 8; j++) assertEquals(0.0, g[j]);
        // rows of softmax - onehot sum to zero
        assertEquals(0.0, g[0] + g[1] + g[2] + g[3], 1e-12);
    }

    @ParameterizedTest @EnumSource(Reduction.class)
    void nllMseAndBceGradients(Reduction r) {
        Tensor t = Tensor.of(new long[]{2, 0, -100}, 3);
        GradCheck.check(x -> F.nllLoss(x[0], t, -100, r), randn(66, 3, 3));
        GradCheck.check(x -> F.mseLoss(x[0], x[1], r), randn(67, 3, 2), randn(68, 3, 2));
        GradCheck.check(x -> F.binaryCrossEntropyWithLogits(x[0], x[1].sigmoid(), r), randn(69, 3, 2), randn(70, 3, 2));
    }

    @ParameterizedTest @EnumSource(Reduction.class)
    void l1SmoothL1AndHuberGradients(Reduction r) {
        // differences spread over both sides of beta (no point within finite-difference reach of the kink)
        double[] target = {0.05, -2.2, 0.31, 1.7, -0.44, 3.1}, input = {-0.6, 0.4, 0.9, -1.1, 0.2, 2.35};
        java.util.function.Supplier<Tensor> x0 = () -> Tensor.of(input, 3, 2), t0 = () -> Tensor.of(target, 3, 2);   // fresh leaves a check
        Tensor t = t0.get();
        GradCheck.check(x -> F.l1Loss(x[0], t, r), x0.get());
        GradCheck.check(x -> F.smoothL1Loss(x[0], x[1], r, 1.0), x0.get(), t0.get());
        GradCheck.check(x -> F.smoothL1Loss(x[0], t, r, 0.5), x0.get());
        GradCheck.check(x -> F.huberLoss(x[0], t, r, 0.7), x0.get());
    }

    @Test void l1SmoothL1AndHuberValues() {
        Tensor x = Tensor.of(new double[]{0, 0.5, 3}, 3), t = Tensor.of(new double[]{0, 0, 1}, 3);
        assertArrayEquals(new double[]{0, 0.5, 2}, F.l1Loss(x, t, Reduction.NONE).toDoubleArray(), 1e-15);
        // beta 1: 0.5 d^2 below 1, |d| - 0.5 above
        assertArrayEquals(new double[]{0, 0.125, 1.5}, F.smoothL1Loss(x, t, Reduction.NONE, 1.0).toDoubleArray(), 1e-15);
        // beta 0 is the L1 loss; Huber with delta is delta times smooth L1 with beta = delta
        assertArrayEquals(F.l1Loss(x, t, Reduction.NONE).toDoubleArray(), F.smoothL1Loss(x, t, Reduction.NONE, 0).toDoubleArray(), 0);
        assertArrayEquals(new double[]{0, 0.125, 2 * (2 - 1)}, F.huberLoss(x, t, Reduction.NONE, 2).toDoubleArray(), 1e-15);
        assertEquals(2.5 / 3, F.l1Loss(x, t, Reduction.MEAN).item(), 1e-15);
        assertEquals(1.625, new dev.kiln.nn.SmoothL1Loss(Reduction.SUM, 1.0).forward(x, t).item(), 1e-15);
        assertEquals(1.625, new dev.kiln.nn.HuberLoss().forward(x, t).mul(3).item(), 1e-15);
        assertEquals(2.5, new dev.kiln.nn.L1Loss(Reduction.SUM).forward(x, t).item(), 1e-15);
        // the gradient of |d| at 0 is 0, as PyTorch's
        Tensor z = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU).requiresGrad(true);
        F.l1Loss(z, Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU), Reduction.SUM).backward();
        assertArrayEquals(new double[]{0, 0}, z.grad().toDoubleArray());
        assertThrows(IllegalArgumentException.class, () -> F.smoothL1Loss(x, t, Reduction.MEAN, -1));
        assertThrows(IllegalArgumentException.class, () -> F.huberLoss(x, t, Reduction.MEAN, 0));
        assertThrows(IllegalArgumentException.class, () -> F.l1Loss(x, Tensor.zeros(4), Reduction.MEAN));
    }

    @Test void bceWithLogitsGradientIsExactAtZero() {
        Tensor x = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU).requiresGrad(true);
        F.binaryCrossEntropyWithLogits(x, Tensor.of(new double[]{0, 1}, 2), Reduction.SUM).backward();
        assertArrayEquals(new double[]{0.5, -0.5}, x.grad().toDoubleArray(), 1e-15);
    }
}
