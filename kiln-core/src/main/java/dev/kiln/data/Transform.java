package dev.kiln.data;

import dev.kiln.Tensor;

import java.util.random.RandomGenerator;

/**
 * A change applied to a batch of inputs (N, C, H, W) in the loader's threads, giving a batch on the same device (crops
 * and flips run there; the others compute on the host). Random transforms draw
 * from the generator they are given, which the loader seeds per batch, so results do not depend on thread timing.
 */
@FunctionalInterface
public interface Transform {
    Tensor apply(Tensor inputs, RandomGenerator rng);

    default Transform andThen(Transform next) { return (x, rng) -> next.apply(apply(x, rng), rng); }
}
