package dev.kiln.nn;

import dev.kiln.Tensor;

/** PyTorch's HuberLoss: half the squared error below delta (1 by default), linear above; mean over all elements by default. */
public record HuberLoss(F.Reduction reduction, double delta) implements Loss {
    public HuberLoss() { this(F.Reduction.MEAN, 1.0); }

    @Override public Tensor forward(Tensor input, Tensor target) { return F.huberLoss(input, target, reduction, delta); }
}
