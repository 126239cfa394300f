package dev.kiln.ops;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/**
 * Inverted dropout: zeroes each element with probability p and scales the survivors by 1/(1-p), so eval needs no
 * rescaling. The mask is a uniform draw on x's device compared with p: counter-based, so it works on any device
 * and never reads values on the host. Its gradient is the same scaled mask (through the multiply).
 */
public final class Dropout {
    private Dropout() {}

    public static Tensor dropout(Tensor x, double p, boolean training, Generator g) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("dropout: probability must be in [0, 1], got " + p);
        if (!training || p == 0) return x;
        Checks.floating("dropout", x);
        if (p == 1) return x.mul(0.0);
        Tensor keep = Tensor.rand(g, x.shape(), x.dtype(), x.device()).ge(p);
        Tensor scale = Elementwise.cast(keep, x.dtype()).mul(1 / (1 - p));
        return x.mul(scale);
    }
}
