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

/** Cross-entropy, NLL, MSE and BCE-with-logits: gradients against float64 finite differences. */
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

    @Test void bceWithLogitsGradientIsExactAtZero() {
        Tensor x = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU).requiresGrad(true);
        F.binaryCrossEntropyWithLogits(x, Tensor.of(new double[]{0, 1}, 2), Reduction.SUM).backward();
        assertArrayEquals(new double[]{0.5, -0.5}, x.grad().toDoubleArray(), 1e-15);
    }
}
