package dev.kiln.ops;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;

import static dev.kiln.Backends.get;

/**
 * Inverted dropout: zeroes each element with probability p and scales the survivors by 1/(1-p), so eval needs no
 * rescaling. The keep-mask is u >= p for the counter-based uniform u of (key, element index), so it works on any
 * device and never reads values on the host. The backend's fused kernel does it in one pass forward, and the
 * backward recomputes the mask from the same key (no mask tensor is kept). {@link #composite} (uniform draw,
 * compare, scale, multiply) is the reference it matches: the same mask for the same key, the same rounding.
 */
public final class Dropout {
    private Dropout() {}

    public static Tensor dropout(Tensor x, double p, boolean training, Generator g) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("dropout: probability must be in [0, 1], got " + p);
        if (!training || p == 0) return x;
        Checks.floating("dropout", x);
        if (p == 1) return x.mul(0.0);
        long key = g.nextSeed();
        Backend be = get(x.device());
        Tensor y = be.dropout(x, p, key);
        return Autograd.record("dropout", y, gy -> new Tensor[]{be.dropout(gy, p, key)}, x);
    }

    /** The reference the fused kernel must match: the same key's uniforms, compared, scaled and multiplied. */
    static Tensor composite(Tensor x, double p, Generator g) {
        Tensor keep = Tensor.rand(g, x.shape(), x.dtype(), x.device()).ge(p);
        Tensor scale = Elementwise.cast(keep, x.dtype()).mul(1 / (1 - p));
        return x.mul(scale);
    }
}
