package dev.kiln.ops;

import dev.kiln.GradCheck;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;

/** Max, average and adaptive average pooling: gradients against float64 finite differences. */
class PoolingGradTest {
    @Test void maxPool2dGradient() {
        GradCheck.check(x -> F.maxPool2d(x[0], 2, 2, 0), randn(41, 2, 2, 4, 4));
        GradCheck.check(x -> F.maxPool2d(x[0], 3, 2, 1), randn(42, 1, 2, 5, 5));   // overlapping windows, padding
        GradCheck.check(x -> F.maxPool2d(x[0].transpose(2, 3), 2, 1, 0), randn(43, 1, 1, 3, 4));
    }

    @Test void avgPool2dGradient() {
        GradCheck.check(x -> F.avgPool2d(x[0], 2, 2, 0), randn(44, 2, 2, 4, 4));
        GradCheck.check(x -> F.avgPool2d(x[0], 3, 2, 1), randn(45, 1, 2, 5, 5));
    }

    @Test void adaptiveAvgPool2dGradient() {
        GradCheck.check(x -> F.adaptiveAvgPool2d(x[0], 2, 2), randn(46, 1, 2, 4, 6)); // divisible: average pool
        GradCheck.check(x -> F.adaptiveAvgPool2d(x[0], 3, 2), randn(47, 2, 1, 5, 5)); // overlapping bins
        GradCheck.check(x -> F.adaptiveAvgPool2d(x[0], 1, 1), randn(48, 1, 3, 3, 2)); // global
    }
}
