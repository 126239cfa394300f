package dev.kiln.backend;

/** Geometry of a 2-D convolution (input N,C,H,W; weight O,C/groups,kH,kW). */
public record Conv2dParams(int strideH, int strideW, int padH, int padW, int dilationH, int dilationW, int groups) {
    public Conv2dParams {
        if (strideH < 1 || strideW < 1) throw new IllegalArgumentException("conv2d: stride must be >= 1");
        if (padH < 0 || padW < 0) throw new IllegalArgumentException("conv2d: padding must be >= 0");
        if (dilationH < 1 || dilationW < 1) throw new IllegalArgumentException("conv2d: dilation must be >= 1");
        if (groups < 1) throw new IllegalArgumentException("conv2d: groups must be >= 1");
    }

    public static Conv2dParams of(int stride, int padding, int dilation, int groups) {
        return new Conv2dParams(stride, stride, padding, padding, dilation, dilation, groups);
    }

    public int outH(int h, int kh) { return (h + 2 * padH - dilationH * (kh - 1) - 1) / strideH + 1; }

    public int outW(int w, int kw) { return (w + 2 * padW - dilationW * (kw - 1) - 1) / strideW + 1; }

    /** The transposed convolution's output height: the largest input of outH's that gives h back, plus outputPad. */
    public int transposedOutH(int h, int kh, int outputPad) { return (h - 1) * strideH - 2 * padH + dilationH * (kh - 1) + outputPad + 1; }

    public int transposedOutW(int w, int kw, int outputPad) { return (w - 1) * strideW - 2 * padW + dilationW * (kw - 1) + outputPad + 1; }
}
