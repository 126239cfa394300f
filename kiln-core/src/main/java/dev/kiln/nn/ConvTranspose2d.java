package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.ops.Convolution;

/**
 * Transposed 2-D convolution (PyTorch's {@code nn.ConvTranspose2d}): x (N, in, H, W) to (N, out, (H-1)·stride -
 * 2·padding + dilation·(kernel-1) + outputPadding + 1, likewise W); weight (in, out / groups, kernel, kernel), bias (out),
 * initialised as PyTorch does. The decoder half of autoencoders and U-Nets, and GAN generators.
 */
public final class ConvTranspose2d extends Layer implements Forward {
    private final int in, out, kernel, outputPadding;
    private final Conv2dParams geometry;
    private final Tensor weight, bias;   // bias null without one

    public ConvTranspose2d(int in, int out, int kernel, int stride, int padding, Generator g) {
        this(in, out, kernel, stride, padding, 0, 1, 1, true, g);
    }

    public ConvTranspose2d(int in, int out, int kernel, int stride, int padding, int outputPadding, int dilation, int groups, boolean bias,
                           Generator g) {
        if (in < 1 || out < 1 || kernel < 1) throw new IllegalArgumentException("ConvTranspose2d: channels and kernel must be >= 1");
        if (in % groups != 0 || out % groups != 0) {
            throw new IllegalArgumentException("ConvTranspose2d: channels " + in + " -> " + out + " are not divisible by groups " + groups);
        }
        this.in = in;
        this.out = out;
        this.kernel = kernel;
        this.outputPadding = outputPadding;
        this.geometry = Conv2dParams.of(stride, padding, dilation, groups);
        int[] shape = {in, out / groups, kernel, kernel};
        this.weight = registerParameter("weight", Init.kaimingUniformA5(g, shape));
        this.bias = bias ? registerParameter("bias", Init.uniform(g, 1 / Math.sqrt(Init.fanIn(shape)), out)) : null;
    }

    @Override public Tensor forward(Tensor x) { return Convolution.convTranspose2d(x, weight, bias, geometry, outputPadding, outputPadding); }

    /** (in, out / groups, kernel, kernel). */
    public Tensor weight() { return weight; }

    /** (out), or null. */
    public Tensor bias() { return bias; }

    /** Stride, padding, dilation and groups, as the conv2d this layer is the adjoint of. */
    public Conv2dParams geometry() { return geometry; }

    public int outputPadding() { return outputPadding; }

    @Override protected String extraRepr() {
        return in + ", " + out + ", kernel_size=(" + kernel + ", " + kernel + "), stride=(" + geometry.strideH() + ", " + geometry.strideW() + ")"
                + (geometry.padH() > 0 ? ", padding=(" + geometry.padH() + ", " + geometry.padW() + ")" : "")
                + (outputPadding > 0 ? ", output_padding=(" + outputPadding + ", " + outputPadding + ")" : "")
                + (geometry.groups() > 1 ? ", groups=" + geometry.groups() : "") + (bias != null ? "" : ", bias=False");
    }
}
