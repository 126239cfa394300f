package dev.kiln.nn;

import dev.kiln.Tensor;

/** Flattens dimensions start..end (by default all but the batch dimension). */
public final class Flatten extends Layer implements Forward {
    private final int start, end;

    public Flatten() { this(1, -1); }

    public Flatten(int start, int end) {
        this.start = start;
        this.end = end;
    }

    @Override public Tensor forward(Tensor x) { return x.flatten(start, end); }

    @Override protected String extraRepr() { return "start_dim=" + start + ", end_dim=" + end; }
}
