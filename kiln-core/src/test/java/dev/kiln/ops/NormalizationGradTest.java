package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Layer norm and batch norm: gradients against float64 finite differences. */
class NormalizationGradTest {
    @Test void layerNormGradient() {
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{4}, x[1], x[2], 1e-5), randn(81, 3, 4), randn(82, 4), randn(83, 4));
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{2, 3}, null, null, 1e-5), randn(84, 2, 2, 3));
        GradCheck.check(x -> F.layerNorm(x[0].transpose(0, 1), new int[]{3}, x[1], null, 1e-5), randn(85, 3, 2), randn(86, 3));
    }

    @Test void batchNormTrainingGradient() {
        GradCheck.check(x -> F.batchNorm(x[0], null, null, x[1], x[2], true, 0.1, 1e-5), randn(91, 4, 3), randn(92, 3), randn(93, 3));
        Tensor rm = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU), rv = Tensor.ones(new int[]{2}, DType.FLOAT64, Device.CPU);
        GradCheck.check(x -> F.batchNorm(x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5), randn(94, 2, 2, 3, 2), randn(95, 2), randn(96, 2));
        assertFalse(rm.requiresGrad() || rv.requiresGrad(), "running statistics must stay outside the graph");
    }

    @Test void batchNormEvalGradient() {
        Tensor rm = randn(97, 3), rv = randn(98, 3).abs().add(0.5);
        GradCheck.check(x -> F.batchNorm(x[0], rm, rv, x[1], x[2], false, 0.1, 1e-5), randn(99, 2, 3, 2, 2), randn(100, 3), randn(101, 3));
    }
}
