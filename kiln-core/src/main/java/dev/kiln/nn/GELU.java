package dev.kiln.nn;

import dev.kiln.Tensor;

/** {@code F.gelu} as a layer. */
public final class GELU extends Activation {
    @Override public Tensor forward(Tensor x) { return F.gelu(x); }
}
