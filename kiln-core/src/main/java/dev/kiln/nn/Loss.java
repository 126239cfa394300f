package dev.kiln.nn;

import dev.kiln.Tensor;

/** A loss: a function of a prediction and a target, reduced as its {@link F.Reduction} says. */
@FunctionalInterface
public interface Loss {
    Tensor forward(Tensor input, Tensor target);
}
