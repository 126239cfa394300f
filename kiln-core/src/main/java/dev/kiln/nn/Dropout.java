package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/** Inverted dropout while training (zero with probability p, scale the rest by 1/(1-p)); the identity in eval. */
public final class Dropout extends Layer implements Forward {
    private final double p;
    private final Generator g;

    public Dropout(double p, Generator g) {
        if (!(p >= 0 && p < 1)) throw new IllegalArgumentException("Dropout: p must be in [0, 1), got " + p);
        this.p = p;
        this.g = g;
    }

    @Override public Tensor forward(Tensor x) {
        return active() ? F.dropout(x, p, true, g) : x;
    }

    /** Whether forward changes its input now: training, with p > 0. */
    public boolean active() { return isTraining() && p > 0; }

    @Override protected String extraRepr() { return "p=" + p; }
}
