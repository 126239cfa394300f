package dev.kiln.nn;

/** Batch norm over (N, C) or (N, C, L). */
public final class BatchNorm1d extends BatchNorm {
    public BatchNorm1d(int features) { this(features, 1e-5, 0.1, true); }

    public BatchNorm1d(int features, double eps, double momentum, boolean affine) { super(features, eps, momentum, affine); }

    @Override boolean acceptsRank(int rank) { return rank == 2 || rank == 3; }

    @Override String expectedInput() { return "(N, C) or (N, C, L)"; }
}
