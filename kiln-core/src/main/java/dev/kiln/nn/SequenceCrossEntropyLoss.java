package dev.kiln.nn;

import dev.kiln.Shape;
import dev.kiln.Tensor;

import java.util.Arrays;

/**
 * Softmax cross-entropy over the last dimension: logits (..., V) against int64 token ids (...), mean over every
 * position, as a language model's next-token loss ({@code F.cross_entropy(logits.view(-1, V), targets.view(-1))}).
 */
public record SequenceCrossEntropyLoss(int ignoreIndex) implements Loss {
    public SequenceCrossEntropyLoss() { this(-100); }

    @Override public Tensor forward(Tensor logits, Tensor target) {
        if (logits.dim() < 2 || !Arrays.equals(Arrays.copyOf(logits.shape(), logits.dim() - 1), target.shape())) {
            throw new IllegalArgumentException("sequence cross-entropy: logits " + Shape.str(logits.shape()) + " need targets of shape "
                    + Shape.str(Arrays.copyOf(logits.shape(), Math.max(0, logits.dim() - 1))) + ", got " + Shape.str(target.shape()));
        }
        int v = logits.size(-1);
        return F.crossEntropy(logits.reshape(-1, v), target.reshape(-1), 0, ignoreIndex, F.Reduction.MEAN);
    }
}
