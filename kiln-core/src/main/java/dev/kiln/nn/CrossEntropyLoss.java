package dev.kiln.nn;

import dev.kiln.Tensor;

/** Softmax cross-entropy of logits (N, C) against int64 class ids (N); mean over the batch by default. */
public record CrossEntropyLoss(double labelSmoothing, int ignoreIndex, F.Reduction reduction) implements Loss {
    public CrossEntropyLoss {
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new IllegalArgumentException("CrossEntropyLoss: labelSmoothing must be in [0, 1]");
    }

    public CrossEntropyLoss() { this(0, -100, F.Reduction.MEAN); }

    @Override public Tensor forward(Tensor logits, Tensor target) {
        return F.crossEntropy(logits, target, labelSmoothing, ignoreIndex, reduction);
    }
}
