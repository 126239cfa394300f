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

    /** The first dimension flattened. */
    public int startDim() { return start; }

    /** The last dimension flattened (-1: the last). */
    public int endDim() { return end; }

    @Override public Tensor forward(Tensor x) { return x.flatten(start, end); }

    @Override protected String extraRepr() { return "start_dim=" + start + ", end_dim=" + end; }
}
