package dev.kiln.ops;

import dev.kiln.GradCheck;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;

/** Scaled dot-product attention: gradients against float64 finite differences. */
class AttentionGradTest {
    @Test void attentionGradient() {
        for (boolean causal : new boolean[]{false, true}) {
            GradCheck.check(x -> F.scaledDotProductAttention(x[0], x[1], x[2], causal), randn(111, 2, 3, 4), randn(112, 2, 3, 4), randn(113, 2, 3, 2));
        }
        // multi-head layout: (B, T, H, d) transposed to (B, H, T, d), a non-contiguous view
        GradCheck.check(x -> F.scaledDotProductAttention(x[0].transpose(1, 2), x[1].transpose(1, 2), x[2].transpose(1, 2), true),
                randn(114, 1, 3, 2, 2), randn(115, 1, 3, 2, 2), randn(116, 1, 3, 2, 2));
    }
}
