package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;
import dev.kiln.backend.Conv2dParams;

import static dev.kiln.Backends.get;

/** 2-D convolution: x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O) or null. */
public final class Convolution {
    private Convolution() {}

    public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p) { return conv2d(x, w, bias, p, false); }

    /** conv2d, then ReLU when {@code relu}, as one op (nn.Sequential uses it for a Conv2d followed by a ReLU). */
    public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p, boolean relu) { return conv2d(x, w, bias, null, p, relu); }

    /**
     * {@code relu?(conv2d(x, w, bias) + residual)} as one op (residual null: none; relu false: none): the bias add, the
     * residual add and the ReLU run as the convolution's epilogue, and the backward takes the ReLU mask and the bias
     * gradient in one pass (the residual's gradient is that masked gradient). A residual block whose batch norm was folded
     * into its convolution ends this way ({@code BatchNorm.forwardAfter}).
     */
    public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu) {
        x = Autocast.cast(AutocastPolicy.CONV2D, x);
        w = filterFor(x, w);
        bias = Autocast.cast(AutocastPolicy.CONV2D, bias);
        check(x, w, bias, residual, p);
        if (residual != null) residual = residual.to(x.dtype());
        Backend be = get(x.device());
        Tensor out = be.conv2d(x, w, bias, residual, p, relu);
        Tensor in = x, weight = w, b = bias, res = residual;
        int[] xShape = x.shape(), wShape = w.shape();
        String name = (relu ? "conv2d_relu" : "conv2d") + (residual != null ? "_residual" : "");
        return Autograd.record(name, out, g -> {
            boolean biasGrad = b != null && b.requiresGrad(), resGrad = res != null && res.requiresGrad();
            if (!in.requiresGrad() && !resGrad && weight.requiresGrad()) { // a first layer: no input gradient, so dz need not exist
                Tensor[] wb = be.conv2dBackwardWeightAndBias(g, out, in, wShape, p, relu, biasGrad);
                return new Tensor[]{null, wb[0], wb[1], null};
            }
            Tensor[] pre = relu || biasGrad ? be.biasReluBackward(g, out, relu, biasGrad) : new Tensor[]{g, null};
            Tensor gz = pre[0];
            // the input's gradient from its other consumers (a residual block's skip path), added in as it is written
            Tensor pending = in.requiresGrad() ? Autograd.takeWritablePendingGradient(in) : null;
            return new Tensor[]{
                    in.requiresGrad() ? be.conv2dBackwardInput(gz, weight, xShape, p, pending) : null,
                    weight.requiresGrad() ? be.conv2dBackwardWeight(gz, in, wShape, p) : null,
                    pre[1],
                    resGrad ? gz : null};
        }, in, weight, b, res);
    }

    /**
     * Transposed convolution (PyTorch's conv_transpose2d): x (N, C, H, W), weight (C, O/groups, kH, kW), bias (O) or
     * null; out (N, O, (H-1)·stride - 2·pad + dilation·(k-1) + outputPadding + 1, likewise W), the adjoint of conv2d
     * with that geometry. Composed of conv2d's three kernels: the forward is conv2d's input gradient, the input's
     * gradient a conv2d of g, the weight's conv2d's weight gradient with x and g in each other's places.
     */
    public static Tensor convTranspose2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p, int outputPadH, int outputPadW) {
        x = Autocast.cast(AutocastPolicy.CONV2D, x);
        w = filterFor(x, w);
        bias = Autocast.cast(AutocastPolicy.CONV2D, bias);
        if (x.dim() != 4 || w.dim() != 4) {
            throw new IllegalArgumentException("conv_transpose2d: expected input (N, C, H, W) and weight (C, O/groups, kH, kW), got "
                    + Shape.str(x.shape()) + " and " + Shape.str(w.shape()));
        }
        if (outputPadH < 0 || outputPadW < 0 || (outputPadH >= p.strideH() && outputPadH >= p.dilationH())
                || (outputPadW >= p.strideW() && outputPadW >= p.dilationW())) {
            throw new IllegalArgumentException("conv_transpose2d: output padding (" + outputPadH + ", " + outputPadW
                    + ") must be smaller than the stride or the dilation");
        }
        int[] xs = x.shape(), ws = w.shape();
        int outH = p.transposedOutH(xs[2], ws[2], outputPadH), outW = p.transposedOutW(xs[3], ws[3], outputPadW);
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException("conv_transpose2d: input " + Shape.str(xs) + " with kernel " + ws[2] + "x" + ws[3] + " and " + p
                    + " gives no output (" + outH + "x" + outW + ")");
        }
        Checks.sameDevice("conv_transpose2d", x, w);
        Checks.floating("conv_transpose2d", x);
        if (x.dtype() != w.dtype()) {
            throw new IllegalArgumentException("conv_transpose2d: input (" + x.dtype() + ") and weight (" + w.dtype() + ") must have one dtype");
        }
        if (xs[1] != ws[0] || ws[0] % p.groups() != 0) {
            throw new IllegalArgumentException("conv_transpose2d: input " + Shape.str(xs) + " has " + xs[1] + " channels; weight "
                    + Shape.str(ws) + " with groups=" + p.groups() + " expects " + ws[0] + ", divisible by the groups");
        }
        int[] outShape = {xs[0], ws[1] * p.groups(), outH, outW};
        if (bias != null && (bias.dim() != 1 || bias.shape()[0] != outShape[1] || bias.dtype() != x.dtype())) {
            throw new IllegalArgumentException("conv_transpose2d: expected bias of shape [" + outShape[1] + "] and dtype " + x.dtype()
                    + ", got " + Shape.str(bias.shape()) + " " + bias.dtype());
        }
        Backend be = get(x.device());
        Tensor out = be.conv2dBackwardInput(x, w, outShape, p), in = x, weight = w;
        Tensor y = Autograd.record("conv_transpose2d", out, g -> new Tensor[]{
                in.requiresGrad() ? be.conv2d(g, weight, null, p, false) : null,
                weight.requiresGrad() ? be.conv2dBackwardWeight(in, g, weight.shape(), p) : null}, in, weight);
        return bias == null ? y : y.add(bias.reshape(1, outShape[1], 1, 1));
    }

    /**
     * The filter as the backend takes it beside x: channels-last activations take it channels-last too (KRSC memory,
     * cuDNN's NHWC filter layout). A filter already so in the wanted dtype (a channels-last model's parameter,
     * Model.channelsLast) is used as it is, its gradient coming out channels-last; any other is made so by the one copy
     * that also does autocast's cast (and whose backward gives the parameter its gradient in its own layout).
     */
    private static Tensor filterFor(Tensor x, Tensor w) {
        DType wt = Autocast.castType(AutocastPolicy.CONV2D, w);
        return !x.prefersChannelsLast() || w.dim() != 4 ? Autocast.cast(AutocastPolicy.CONV2D, w)
                : w.isChannelsLast() && w.dtype() == wt ? w : Views.toChannelsLast(w, wt);
    }

    private static void check(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p) {
        if (x.dim() != 4) {
            throw new IllegalArgumentException("conv2d: expected input of rank 4 (N, C, H, W), got shape " + Shape.str(x.shape()));
        }
        if (w.dim() != 4) {
            throw new IllegalArgumentException("conv2d: expected weight of rank 4 (O, C/groups, kH, kW), got shape " + Shape.str(w.shape()));
        }
        Checks.sameDevice("conv2d", x, w);
        Checks.floating("conv2d", x);
        if (x.dtype() != w.dtype()) {
            throw new IllegalArgumentException("conv2d: input (" + x.dtype() + ") and weight (" + w.dtype() + ") must have one dtype");
        }
        int[] xs = x.shape(), ws = w.shape();
        int g = p.groups();
        if (ws[0] % g != 0) {
            throw new IllegalArgumentException("conv2d: " + ws[0] + " output channels (weight " + Shape.str(ws) + ") are not divisible by groups=" + g);
        }
        if (xs[1] != ws[1] * g) {
            throw new IllegalArgumentException("conv2d: input " + Shape.str(xs) + " has " + xs[1] + " channels but weight "
                    + Shape.str(ws) + " with groups=" + g + " expects " + ws[1] * g);
        }
        if (p.outH(xs[2], ws[2]) < 1 || p.outW(xs[3], ws[3]) < 1) {
            throw new IllegalArgumentException("conv2d: kernel " + ws[2] + "x" + ws[3] + " (dilation " + p.dilationH() + "x" + p.dilationW()
                    + ") is larger than the padded input " + (xs[2] + 2 * p.padH()) + "x" + (xs[3] + 2 * p.padW()) + " (input " + Shape.str(xs) + ")");
        }
        if (bias != null) {
            Checks.sameDevice("conv2d", x, bias);
            if (bias.dim() != 1 || bias.shape()[0] != ws[0]) {
                throw new IllegalArgumentException("conv2d: expected bias of shape [" + ws[0] + "], got " + Shape.str(bias.shape()));
            }
            if (bias.dtype() != x.dtype()) {
                throw new IllegalArgumentException("conv2d: bias (" + bias.dtype() + ") must have the input's dtype " + x.dtype());
            }
        }
        if (residual != null) {
            Checks.sameDevice("conv2d", x, residual);
            int[] out = {xs[0], ws[0], p.outH(xs[2], ws[2]), p.outW(xs[3], ws[3])};
            if (!java.util.Arrays.equals(residual.shape(), out)) {
                throw new IllegalArgumentException("conv2d: residual of shape " + Shape.str(residual.shape()) + " does not match the output " + Shape.str(out));
            }
            Checks.floating("conv2d", residual);
        }
    }
}
