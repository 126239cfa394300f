package dev.kiln.ops;

import dev.kiln.GradCheck;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;

/** softmax and log_softmax: gradients against float64 finite differences. */
class SoftmaxGradTest {
    @Test void softmaxAndLogSoftmax() {
        for (int dim : new int[]{0, 1, -1}) {
            GradCheck.check(x -> F.softmax(x[0], dim), randn(51, 3, 4));
            GradCheck.check(x -> F.logSoftmax(x[0], dim), randn(52, 3, 4));
        }
        GradCheck.check(x -> F.softmax(x[0].t(), 1), randn(53, 4, 3));
        GradCheck.check(x -> F.logSoftmax(x[0], 1), randn(54, 2, 3, 2));
    }
}
