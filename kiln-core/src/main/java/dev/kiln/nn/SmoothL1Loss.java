package dev.kiln.nn;

import dev.kiln.Tensor;

/** PyTorch's SmoothL1Loss: quadratic below beta (1 by default), linear above; mean over all elements by default. */
public record SmoothL1Loss(F.Reduction reduction, double beta) implements Loss {
    public SmoothL1Loss() { this(F.Reduction.MEAN, 1.0); }

    @Override public Tensor forward(Tensor input, Tensor target) { return F.smoothL1Loss(input, target, reduction, beta); }
}
