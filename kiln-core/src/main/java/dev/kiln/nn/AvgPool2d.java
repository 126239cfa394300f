package dev.kiln.nn;

import dev.kiln.Tensor;

/** Mean over k x k windows; stride defaults to the kernel size as in PyTorch. */
public final class AvgPool2d extends Layer implements Forward {
    private final int kernel, stride, padding;

    public AvgPool2d(int kernel) { this(kernel, kernel, 0); }

    public AvgPool2d(int kernel, int stride, int padding) {
        if (kernel < 1 || stride < 1 || padding < 0) throw new IllegalArgumentException("AvgPool2d: kernel and stride must be >= 1, padding >= 0");
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
    }

    @Override public Tensor forward(Tensor x) { return F.avgPool2d(x, kernel, stride, padding); }

    @Override protected String extraRepr() { return "kernel_size=" + kernel + ", stride=" + stride + ", padding=" + padding; }
}
