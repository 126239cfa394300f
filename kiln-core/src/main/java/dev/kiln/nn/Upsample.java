package dev.kiln.nn;

import dev.kiln.Tensor;

/** PyTorch's {@code nn.Upsample(scale_factor=s, mode="nearest")} for (N, C, H, W) and a whole factor s. */
public final class Upsample extends Layer implements Forward {
    private final int scale;

    public Upsample(int scale) {
        if (scale < 1) throw new IllegalArgumentException("Upsample: scale factor must be >= 1, got " + scale);
        this.scale = scale;
    }

    @Override public Tensor forward(Tensor x) { return F.upsampleNearest(x, scale); }

    public int scale() { return scale; }

    @Override protected String extraRepr() { return "scale_factor=" + scale + ".0, mode='nearest'"; }
}
