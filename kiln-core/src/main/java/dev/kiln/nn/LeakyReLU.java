package dev.kiln.nn;

import dev.kiln.Tensor;

/** {@code F.leakyRelu} as a layer; negative slope 0.01 by default, as PyTorch's. */
public final class LeakyReLU extends Activation {
    private final double negativeSlope;

    public LeakyReLU() { this(0.01); }

    public LeakyReLU(double negativeSlope) { this.negativeSlope = negativeSlope; }

    @Override public Tensor forward(Tensor x) { return F.leakyRelu(x, negativeSlope); }

    public double negativeSlope() { return negativeSlope; }

    @Override protected String extraRepr() { return "negative_slope=" + negativeSlope; }
}
