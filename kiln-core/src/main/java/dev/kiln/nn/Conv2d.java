package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.ops.Convolution;

/** 2-D convolution: x (N, C, H, W), weight (O, C/groups, k, k), bias (O). */
public final class Conv2d extends Layer implements Forward {
    private final int in, out, kernel;
    private final Conv2dParams geometry;
    private final Tensor weight;
    private Tensor bias; // null without one; a folded batch norm gives it one (BatchNorm.foldInto)

    public Conv2d(int in, int out, int kernel, Generator g) { this(in, out, kernel, 1, 0, 1, 1, true, g); }

    public Conv2d(int in, int out, int kernel, int stride, int padding, Generator g) {
        this(in, out, kernel, stride, padding, 1, 1, true, g);
    }

    public Conv2d(int in, int out, int kernel, int stride, int padding, int dilation, int groups, boolean bias, Generator g) {
        if (in < 1 || out < 1 || kernel < 1) throw new IllegalArgumentException("Conv2d: channels and kernel must be >= 1");
        if (in % groups != 0 || out % groups != 0) {
            throw new IllegalArgumentException("Conv2d: channels " + in + " -> " + out + " are not divisible by groups " + groups);
        }
        this.in = in;
        this.out = out;
        this.kernel = kernel;
        this.geometry = Conv2dParams.of(stride, padding, dilation, groups);
        int[] shape = weightShape();
        this.weight = registerParameter("weight", Init.kaimingUniformA5(g, shape));
        this.bias = bias ? registerParameter("bias", Init.uniform(g, 1 / Math.sqrt(Init.fanIn(shape)), out)) : null;
    }

    private int[] weightShape() { return new int[]{out, in / geometry.groups(), kernel, kernel}; }

    /** Draws the parameters again, in place: PyTorch's default, weight kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
    public void resetParameters(Generator g) {
        int[] shape = weightShape();
        Init.assign(weight, Init.kaimingUniformA5(g, shape));
        if (bias != null) Init.assign(bias, Init.uniform(g, 1 / Math.sqrt(Init.fanIn(shape)), out));
    }

    /** The weight, (out, in / groups, kernel, kernel). */
    public Tensor weight() { return weight; }

    /** The bias, (out), or null. */
    public Tensor bias() { return bias; }

    /** Stride, padding, dilation and groups. */
    public Conv2dParams geometry() { return geometry; }

    /** Output channels. */
    public int outChannels() { return out; }

    /**
     * weight[o] *= scale[o] and bias = bias * scale + shift (bias 0 when there was none): an affine transform of
     * the output channels moved into the convolution. Parameters change in place; a bias is registered if missing.
     */
    void scaleAndShiftOutputs(Tensor scale, Tensor shift) {
        Tensor.noGrad(() -> {
            weight.copyFrom(weight.mul(scale.reshape(out, 1, 1, 1)));
            if (bias == null) bias = registerParameter("bias", shift.contiguousCopy().detach());
            else bias.copyFrom(bias.mul(scale).add(shift));
            return null;
        });
    }

    @Override public Tensor forward(Tensor x) { return forward(x, false); }

    /** forward, then ReLU when {@code relu}, as one op (the bias add and the ReLU fused: see Sequential). */
    Tensor forward(Tensor x, boolean relu) { return forward(x, null, relu); }

    /** {@code relu?(forward(x) + residual)} as one op (BatchNorm.forwardAfter, once folded into this layer). */
    Tensor forward(Tensor x, Tensor residual, boolean relu) {
        return Convolution.conv2d(x, weight, bias, residual, geometry, relu);
    }

    @Override protected String extraRepr() {
        return in + ", " + out + ", kernel_size=(" + kernel + ", " + kernel + "), stride=(" + geometry.strideH() + ", " + geometry.strideW() + ")"
                + (geometry.padH() > 0 ? ", padding=(" + geometry.padH() + ", " + geometry.padW() + ")" : "")
                + (geometry.groups() > 1 ? ", groups=" + geometry.groups() : "") + (bias != null ? "" : ", bias=False");
    }
}
