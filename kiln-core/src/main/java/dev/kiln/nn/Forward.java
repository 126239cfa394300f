package dev.kiln.nn;

import dev.kiln.Tensor;

/**
 * A computation on one tensor: implemented by every built-in single-input layer, and by a user's
 * {@code class Net extends Layer implements Forward}. {@link Sequential}, {@link Checkpoint} and the training
 * loop ({@code dev.kiln.train.Trainer}) take layers that implement it ({@code <M extends Layer & Forward>}).
 * A layer whose forward pass takes several inputs (a mask, a state) does not implement it and declares its own
 * {@code forward(Tensor x, Tensor mask)}.
 */
@FunctionalInterface
public interface Forward {
    /** The layer's output for {@code input}. */
    Tensor forward(Tensor input);
}
