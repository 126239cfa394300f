package dev.kiln.nn;

/** Batch norm over (N, C, H, W), per channel. */
public final class BatchNorm2d extends BatchNorm {
    public BatchNorm2d(int features) { this(features, 1e-5, 0.1, true); }

    public BatchNorm2d(int features, double eps, double momentum, boolean affine) { super(features, eps, momentum, affine); }

    @Override boolean acceptsRank(int rank) { return rank == 4; }

    @Override String expectedInput() { return "(N, C, H, W)"; }
}
