package dev.kiln.nn;

import dev.kiln.Tensor;

/** {@code F.silu} as a layer. */
public final class SiLU extends Activation {
    @Override public Tensor forward(Tensor x) { return F.silu(x); }
}
