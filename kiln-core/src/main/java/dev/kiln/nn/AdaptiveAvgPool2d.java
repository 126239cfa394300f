package dev.kiln.nn;

import dev.kiln.Tensor;

/** Averages each plane down to outH x outW, whatever the input size (1 x 1 is global average pooling). */
public final class AdaptiveAvgPool2d extends Layer implements Forward {
    private final int outH, outW;

    public AdaptiveAvgPool2d(int size) { this(size, size); }

    public AdaptiveAvgPool2d(int outH, int outW) {
        if (outH < 1 || outW < 1) throw new IllegalArgumentException("AdaptiveAvgPool2d: output size must be >= 1");
        this.outH = outH;
        this.outW = outW;
    }

    /** The output's height. */
    public int outH() { return outH; }

    /** The output's width. */
    public int outW() { return outW; }

    @Override public Tensor forward(Tensor x) { return F.adaptiveAvgPool2d(x, outH, outW); }

    @Override protected String extraRepr() { return "output_size=(" + outH + ", " + outW + ")"; }
}
