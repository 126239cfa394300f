package dev.kiln.nn;

import dev.kiln.Tensor;

/** {@code F.gelu} as a layer: the exact (erf) form by default, or the tanh form, as PyTorch's {@code nn.GELU(approximate)}. */
public final class GELU extends Activation {
    private final F.GeluApproximation approximate;

    /** The exact form (PyTorch's default, approximate="none"). */
    public GELU() { this(F.GeluApproximation.NONE); }

    public GELU(F.GeluApproximation approximate) { this.approximate = java.util.Objects.requireNonNull(approximate, "approximate"); }

    @Override public Tensor forward(Tensor x) { return F.gelu(x, approximate); }

    /** The form: exact or tanh. */
    public F.GeluApproximation approximate() { return approximate; }

    @Override protected String extraRepr() { return "approximate='" + approximate.pyTorchName() + "'"; }
}
