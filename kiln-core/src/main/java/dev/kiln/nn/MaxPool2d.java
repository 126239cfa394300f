package dev.kiln.nn;

import dev.kiln.Tensor;
import dev.kiln.backend.Pool2dParams;

/** Max over k x k windows; stride defaults to the kernel size as in PyTorch. */
public final class MaxPool2d extends Layer implements Forward {
    private final int kernel, stride, padding;

    public MaxPool2d(int kernel) { this(kernel, kernel, 0); }

    public MaxPool2d(int kernel, int stride, int padding) {
        if (kernel < 1 || stride < 1 || padding < 0) throw new IllegalArgumentException("MaxPool2d: kernel and stride must be >= 1, padding >= 0");
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
    }

    /** The window's side. */
    public int kernel() { return kernel; }

    public int stride() { return stride; }

    public int padding() { return padding; }

    @Override public Tensor forward(Tensor x) { return F.maxPool2d(x, kernel, stride, padding); }

    Pool2dParams params() { return Pool2dParams.of(kernel, stride, padding); }

    @Override protected String extraRepr() { return "kernel_size=" + kernel + ", stride=" + stride + ", padding=" + padding; }
}
