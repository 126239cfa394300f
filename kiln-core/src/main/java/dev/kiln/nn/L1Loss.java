package dev.kiln.nn;

import dev.kiln.Tensor;

/** Absolute error, mean over all elements by default. */
public record L1Loss(F.Reduction reduction) implements Loss {
    public L1Loss() { this(F.Reduction.MEAN); }

    @Override public Tensor forward(Tensor input, Tensor target) { return F.l1Loss(input, target, reduction); }
}
