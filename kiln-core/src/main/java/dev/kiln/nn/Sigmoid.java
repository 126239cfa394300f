package dev.kiln.nn;

import dev.kiln.Tensor;

/** {@code F.sigmoid} as a layer. */
public final class Sigmoid extends Activation {
    @Override public Tensor forward(Tensor x) { return F.sigmoid(x); }
}
