package dev.kiln.backend;

/** Geometry of a 2-D pooling window (input N,C,H,W). Padding counts as -inf for max, excluded for average when countIncludePad is false. */
public record Pool2dParams(int kernelH, int kernelW, int strideH, int strideW, int padH, int padW, boolean countIncludePad) {
    public Pool2dParams {
        if (kernelH < 1 || kernelW < 1) throw new IllegalArgumentException("pool2d: kernel size must be >= 1");
        if (strideH < 1 || strideW < 1) throw new IllegalArgumentException("pool2d: stride must be >= 1");
        if (padH < 0 || padW < 0 || padH * 2 > kernelH || padW * 2 > kernelW) {
            throw new IllegalArgumentException("pool2d: padding must be >= 0 and at most half the kernel size");
        }
    }

    public static Pool2dParams of(int kernel, int stride, int padding) {
        return new Pool2dParams(kernel, kernel, stride, stride, padding, padding, true);
    }

    public int outH(int h) { return (h + 2 * padH - kernelH) / strideH + 1; }

    public int outW(int w) { return (w + 2 * padW - kernelW) / strideW + 1; }
}
