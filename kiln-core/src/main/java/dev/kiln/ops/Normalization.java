package dev.kiln.ops;

import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.GradMode;

import java.util.Arrays;

/** Layer norm and batch norm, composed from differentiable ops (so their gradients come for free). */
public final class Normalization {
    private Normalization() {}

    /** Normalises over the trailing dimensions given by normalizedShape; weight and bias of that shape, or null. */
    public static Tensor layerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps) {
        int k = normalizedShape.length, r = x.dim();
        if (k == 0 || k > r || !Arrays.equals(Arrays.copyOfRange(x.shape(), r - k, r), normalizedShape)) {
            throw new IllegalArgumentException("layer_norm: normalized shape " + Shape.str(normalizedShape)
                    + " does not match the trailing dimensions of input " + Shape.str(x.shape()));
        }
        Checks.floating("layer_norm", x);
        x = Autocast.cast(AutocastPolicy.LAYER_NORM, x);
        weight = Autocast.cast(AutocastPolicy.LAYER_NORM, weight);
        bias = Autocast.cast(AutocastPolicy.LAYER_NORM, bias);
        affineShape("layer_norm", "weight", weight, normalizedShape);
        affineShape("layer_norm", "bias", bias, normalizedShape);
        int[] dims = new int[k];
        for (int i = 0; i < k; i++) dims[i] = r - k + i;
        Tensor y = normalize(x, x.mean(dims, true), x.var(dims, false, true), eps);
        return affine(y, weight, bias);
    }

    /**
     * Batch norm over (N, C) or (N, C, *) with per-channel statistics. Training normalises by the batch's
     * statistics and moves the running ones towards them in place (momentum as PyTorch: new = (1-m) old + m batch,
     * the running variance unbiased); eval normalises by the running statistics.
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                   boolean training, double momentum, double eps) {
        if (x.dim() < 2) {
            throw new IllegalArgumentException("batch_norm: expected input of rank >= 2 (N, C, *), got shape " + Shape.str(x.shape()));
        }
        Checks.floating("batch_norm", x);
        x = Autocast.cast(AutocastPolicy.BATCH_NORM, x);
        weight = Autocast.cast(AutocastPolicy.BATCH_NORM, weight);
        bias = Autocast.cast(AutocastPolicy.BATCH_NORM, bias);
        int c = x.shape()[1];
        int[] channel = {c};
        affineShape("batch_norm", "weight", weight, channel);
        affineShape("batch_norm", "bias", bias, channel);
        affineShape("batch_norm", "running_mean", runningMean, channel);
        affineShape("batch_norm", "running_var", runningVar, channel);
        int[] dims = new int[x.dim() - 1];
        dims[0] = 0;
        for (int i = 2; i < x.dim(); i++) dims[i - 1] = i;
        int[] bshape = new int[x.dim()];
        Arrays.fill(bshape, 1);
        bshape[1] = c;
        Tensor y;
        if (training) {
            long n = x.numel() / Math.max(c, 1);
            if (n <= 1) {
                throw new IllegalArgumentException("batch_norm: expected more than 1 value per channel when training, got input of shape "
                        + Shape.str(x.shape()));
            }
            Tensor mean = x.mean(dims, true), var = x.var(dims, false, true);
            y = normalize(x, mean, var, eps);
            updateRunning(runningMean, mean, momentum);
            updateRunning(runningVar, Tensor.noGrad(() -> var.mul((double) n / (n - 1))), momentum);
        } else {
            if (runningMean == null || runningVar == null) {
                throw new IllegalArgumentException("batch_norm: eval mode needs running_mean and running_var");
            }
            y = normalize(x, runningMean.reshape(bshape), runningVar.reshape(bshape), eps);
        }
        return affine(y, weight == null ? null : weight.reshape(bshape), bias == null ? null : bias.reshape(bshape));
    }

    /** running = (1 - momentum) running + momentum batch, in place and outside the graph. */
    private static void updateRunning(Tensor running, Tensor batch, double momentum) {
        if (running == null) return;
        try (GradMode g = GradMode.disabled()) {
            Tensor b = batch.detach().reshape(running.shape()).to(running.dtype());
            running.copyFrom(running.mul(1 - momentum).add(b.mul(momentum)));
        }
    }

    private static Tensor normalize(Tensor x, Tensor mean, Tensor var, double eps) {
        return x.sub(mean).div(var.add(eps).sqrt());
    }

    private static Tensor affine(Tensor y, Tensor weight, Tensor bias) {
        if (weight != null) y = y.mul(weight);
        if (bias != null) y = y.add(bias);
        return y;
    }

    private static void affineShape(String op, String what, Tensor t, int[] expected) {
        if (t != null && !Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(op + ": expected " + what + " of shape " + Shape.str(expected) + ", got " + Shape.str(t.shape()));
        }
    }
}
