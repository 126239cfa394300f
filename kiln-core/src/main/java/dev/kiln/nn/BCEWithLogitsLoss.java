package dev.kiln.nn;

import dev.kiln.Tensor;

/** Binary cross-entropy on logits (sigmoid inside, numerically stable), mean by default. */
public record BCEWithLogitsLoss(F.Reduction reduction) implements Loss {
    public BCEWithLogitsLoss() { this(F.Reduction.MEAN); }

    @Override public Tensor forward(Tensor logits, Tensor target) { return F.binaryCrossEntropyWithLogits(logits, target, reduction); }
}
