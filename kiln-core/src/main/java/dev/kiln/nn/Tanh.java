package dev.kiln.nn;

import dev.kiln.Tensor;

/** {@code F.tanh} as a layer. */
public final class Tanh extends Activation {
    @Override public Tensor forward(Tensor x) { return F.tanh(x); }
}
