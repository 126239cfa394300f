package dev.kiln.nn;

import dev.kiln.Tensor;

/** Squared error, mean over all elements by default. */
public record MSELoss(F.Reduction reduction) implements Loss {
    public MSELoss() { this(F.Reduction.MEAN); }

    @Override public Tensor forward(Tensor input, Tensor target) { return F.mseLoss(input, target, reduction); }
}
