package dev.kiln.ops;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.autograd.GradMode;

import java.util.Arrays;

/**
 * Layer norm (composed from differentiable ops, so its gradient comes for free) and batch norm (a fused backend op
 * with the residual add and ReLU of a residual block, and the composite it must match).
 */
public final class Normalization {
    private Normalization() {}

    /**
     * Normalises over the trailing dimensions given by normalizedShape; weight and bias of that shape, or null. Float32
     * and float64 (and, on CUDA, 16-bit) inputs run the backend's fused kernel (statistics and affine in one pass, the
     * backward in two); anything else the composite ({@link #compositeLayerNorm}), which the kernels are tested against.
     */
    public static Tensor layerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps) {
        return layerNorm(x, normalizedShape, weight, bias, eps, null);
    }

    /**
     * As {@link #layerNorm(Tensor, int[], Tensor, Tensor, double)}, the output in {@code out} (null: as usual): float32
     * normalised straight into a 16-bit dtype, for a layer norm whose output only feeds 16-bit products (a pre-norm block
     * under autocast), so no float32 output is kept beside the copy the product would cast.
     */
    public static Tensor layerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps, DType out) {
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
        boolean typeOk = x.device().isCuda() ? x.dtype().isFloating() : x.dtype() == DType.FLOAT32 || x.dtype() == DType.FLOAT64;
        DType pt = x.dtype().accumulation();
        boolean paramsOk = true;
        for (Tensor p : new Tensor[]{weight, bias}) {
            if (p != null && (p.dtype() != pt || !p.isContiguous() || !p.device().equals(x.device()))) paramsOk = false;
        }
        DType outType = out == null ? x.dtype() : out;
        boolean narrowing = outType != x.dtype();
        if (narrowing && !(x.dtype() == DType.FLOAT32 && (outType == DType.BFLOAT16 || outType == DType.FLOAT16))) {
            throw new IllegalArgumentException("layer_norm: output in " + outType + " from " + x.dtype() + " input (float32 into 16 bits only)");
        }
        if (typeOk && paramsOk && x.numel() > 0) return fusedLayerNorm(x, normalizedShape, weight, bias, eps, outType);
        Tensor y = compositeLayerNorm(x, k, weight, bias, eps);
        return narrowing ? y.to(outType) : y;
    }

    private static Tensor fusedLayerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps, DType outType) {
        Backend be = Backends.get(x.device());
        int n = (int) Shape.numel(normalizedShape);
        Tensor[] r = be.layerNorm(x, weight == null ? null : weight.reshape(n), bias == null ? null : bias.reshape(n), n, eps, outType);
        Tensor out = r[0], mean = r[1], invstd = r[2], in = x, w = weight;
        // g may be the 16-bit gradient of float32 rows normalised into 16 bits: the backend reads it as it is
        return Autograd.record("layer_norm", out, g -> {
            boolean params = (w != null && w.requiresGrad()) || (bias != null && bias.requiresGrad());
            // the parameter gradients go straight into their gradient buffers where the engine grants them
            Tensor dw = params && w != null ? Autograd.gradientOutput(w) : null;
            Tensor db = !params ? null : bias != null ? Autograd.gradientOutput(bias) : Tensor.empty(normalizedShape, in.dtype().accumulation(), in.device());
            // x's gradient from its other consumers (a pre-norm block's residual stream) is added as dx is written
            Tensor pending = in.requiresGrad() ? Autograd.takePendingGradient(in) : null;
            Tensor dx = be.layerNormBackward(g, in, w == null ? null : w.reshape(n), mean, invstd, n, in.requiresGrad(), pending,
                    dw == null ? null : dw.reshape(n), db == null ? null : db.reshape(n));
            return new Tensor[]{dx, dw, bias == null ? null : db};
        }, x, weight, bias);
    }

    /** The composite of ops the fused layer norm must match (tests compare them): over the last k dims. */
    static Tensor compositeLayerNorm(Tensor x, int k, Tensor weight, Tensor bias, double eps) {
        int r = x.dim();
        int[] dims = new int[k];
        for (int i = 0; i < k; i++) dims[i] = r - k + i;
        Tensor y = normalize(x, x.mean(dims, true), x.var(dims, false, true), eps);
        return affine(y, weight, bias);
    }

    /**
     * RMS norm over the trailing dimensions given by normalizedShape (PyTorch's rms_norm, LLaMA's RMSNorm):
     * x / sqrt(mean(x^2) + eps) times weight (of that shape, or null). eps NaN: the machine epsilon of x's dtype, as
     * PyTorch's eps=None. 16-bit inputs are normalised in float32 and the result cast back. Composed of elementwise ops
     * and a mean, so every backend runs it and its gradient is theirs.
     */
    public static Tensor rmsNorm(Tensor x, int[] normalizedShape, Tensor weight, double eps) {
        int k = normalizedShape.length, r = x.dim();
        if (k == 0 || k > r || !Arrays.equals(Arrays.copyOfRange(x.shape(), r - k, r), normalizedShape)) {
            throw new IllegalArgumentException("rms_norm: normalized shape " + Shape.str(normalizedShape)
                    + " does not match the trailing dimensions of input " + Shape.str(x.shape()));
        }
        Checks.floating("rms_norm", x);
        affineShape("rms_norm", "weight", weight, normalizedShape);
        DType t = x.dtype();
        double e = Double.isNaN(eps) ? machineEpsilon(t) : eps;
        Tensor xf = t == DType.BFLOAT16 || t == DType.FLOAT16 ? x.to(DType.FLOAT32) : x;
        int[] dims = new int[k];
        for (int i = 0; i < k; i++) dims[i] = r - k + i;
        Tensor y = affine(xf.div(xf.mul(xf).mean(dims, true).add(e).sqrt()), weight, null);
        return y.dtype() == t ? y : y.to(t);
    }

    /** The distance from 1 to the next number of the dtype (torch.finfo(dtype).eps). */
    static double machineEpsilon(DType t) {
        return switch (t) {
            case FLOAT64 -> Math.ulp(1.0);
            case BFLOAT16 -> 0x1p-7;
            case FLOAT16 -> 0x1p-10;
            default -> Math.ulp(1.0f);
        };
    }

    /**
     * Group norm of x (N, C, *) (PyTorch's group_norm): the C channels in numGroups groups, each sample's group
     * normalised by its own mean and biased variance, then weight and bias per channel (C, or null). Composite, as
     * {@link #rmsNorm}.
     */
    public static Tensor groupNorm(Tensor x, int numGroups, Tensor weight, Tensor bias, double eps) {
        if (x.dim() < 2) throw new IllegalArgumentException("group_norm: expected input (N, C, *), got " + Shape.str(x.shape()));
        int n = x.size(0), c = x.size(1);
        if (numGroups < 1 || c % numGroups != 0) {
            throw new IllegalArgumentException("group_norm: " + c + " channels do not split into " + numGroups + " groups");
        }
        Checks.floating("group_norm", x);
        affineShape("group_norm", "weight", weight, new int[]{c});
        affineShape("group_norm", "bias", bias, new int[]{c});
        DType t = x.dtype();
        Tensor xf = t == DType.BFLOAT16 || t == DType.FLOAT16 ? x.to(DType.FLOAT32) : x;
        Tensor g = xf.reshape(n, numGroups, -1);
        Tensor y = normalize(g, g.mean(2, true), g.var(new int[]{2}, false, true), eps).reshape(x.shape());
        int[] channel = new int[x.dim()];
        Arrays.fill(channel, 1);
        channel[1] = c;
        y = affine(y, weight == null ? null : weight.reshape(channel), bias == null ? null : bias.reshape(channel));
        return y.dtype() == t ? y : y.to(t);
    }

    /**
     * Batch norm over (N, C) or (N, C, *) with per-channel statistics. Training normalises by the batch's
     * statistics and moves the running ones towards them in place (momentum as PyTorch: new = (1-m) old + m batch,
     * the running variance unbiased); eval normalises by the running statistics.
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                   boolean training, double momentum, double eps) {
        return batchNorm(x, runningMean, runningVar, weight, bias, null, training, momentum, eps, false);
    }

    /**
     * {@code relu?(batchNorm(x) + residual)}: a residual block's tail as one op (residual null: none). Where the
     * backend can (float32/float64 activations with parameters of their dtype; on CUDA also 16-bit activations with
     * float32 parameters, which autocast then leaves 16-bit, as PyTorch's cuDNN batch norm), it is one fused kernel
     * pass forward and two backward; otherwise the composite of ops, which the fused op's tests compare it with.
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias, Tensor residual,
                                   boolean training, double momentum, double eps, boolean relu) {
        return batchNorm(x, runningMean, runningVar, null, weight, bias, residual, training, momentum, eps, relu);
    }

    /**
     * As above, and in training {@code batchesTracked} (an int64 scalar on x's device, or null), the layer's count of
     * batches (PyTorch's num_batches_tracked), incremented by one: on CUDA inside the statistics kernel.
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor batchesTracked, Tensor weight, Tensor bias,
                                   Tensor residual, boolean training, double momentum, double eps, boolean relu) {
        checkBatchNorm(x, runningMean, runningVar, batchesTracked, weight, bias, residual, training);
        if (fused(x, runningMean, runningVar, weight, bias, residual)) {
            return fusedBatchNorm(x, runningMean, runningVar, batchesTracked, weight, bias, residual, new BatchNormParams(training, momentum, eps, relu));
        }
        if (training && batchesTracked != null) Tensor.noGrad(() -> batchesTracked.copyFrom(batchesTracked.add(1)));
        Tensor y = compositeBatchNorm(Autocast.cast(AutocastPolicy.BATCH_NORM, x), runningMean, runningVar,
                Autocast.cast(AutocastPolicy.BATCH_NORM, weight), Autocast.cast(AutocastPolicy.BATCH_NORM, bias), training, momentum, eps);
        if (residual != null) y = y.add(residual.to(y.dtype()));
        return relu ? y.relu() : y;
    }

    /**
     * {@code maxPool2d(relu(batchNorm(x)), pool)}: the stem of an ImageNet ResNet as one op, with batchNorm's
     * arguments (no residual). Where batchNorm runs fused, the backend may fuse the three (CUDA on channels-last x:
     * normalisation, ReLU and pooling in one pass, the normalised activations never stored); elsewhere it is the two ops.
     */
    public static Tensor batchNormReluMaxPool(Tensor x, Tensor runningMean, Tensor runningVar, Tensor batchesTracked, Tensor weight,
                                              Tensor bias, boolean training, double momentum, double eps, Pool2dParams pool) {
        checkBatchNorm(x, runningMean, runningVar, batchesTracked, weight, bias, null, training);
        Pooling.check("max_pool2d", x, pool);
        if (!fused(x, runningMean, runningVar, weight, bias, null)) {
            return Pooling.maxPool2d(batchNorm(x, runningMean, runningVar, batchesTracked, weight, bias, null, training, momentum, eps, true), pool);
        }
        BatchNormParams p = new BatchNormParams(training, momentum, eps, true);
        Backend be = Backends.get(x.device());
        Tensor[] r = be.batchNormReluMaxPool(x, weight, bias, runningMean, runningVar, batchesTracked, p, pool);
        Tensor mean = r[1], invstd = r[2], indices = r[3], y = r[4], in = x, w = weight;
        return Autograd.record("batch_norm_relu_max_pool", r[0], g -> {
            boolean params = w != null && (w.requiresGrad() || bias.requiresGrad());
            return be.batchNormReluMaxPoolBackward(g, indices, y, in, w, bias, mean, invstd, p, pool, in.requiresGrad(),
                    params ? Autograd.gradientOutput(w) : null, params ? Autograd.gradientOutput(bias) : null);
        }, x, weight, bias);
    }

    private static void checkBatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor batchesTracked, Tensor weight, Tensor bias,
                                       Tensor residual, boolean training) {
        if (x.dim() < 2) {
            throw new IllegalArgumentException("batch_norm: expected input of rank >= 2 (N, C, *), got shape " + Shape.str(x.shape()));
        }
        Checks.floating("batch_norm", x);
        int c = x.shape()[1];
        int[] channel = {c};
        affineShape("batch_norm", "weight", weight, channel);
        affineShape("batch_norm", "bias", bias, channel);
        affineShape("batch_norm", "running_mean", runningMean, channel);
        affineShape("batch_norm", "running_var", runningVar, channel);
        if (residual != null && !Arrays.equals(residual.shape(), x.shape())) {
            throw new IllegalArgumentException("batch_norm: residual of shape " + Shape.str(residual.shape()) + " does not match input " + Shape.str(x.shape()));
        }
        long n = x.numel() / Math.max(c, 1);
        if (training && n <= 1) {
            throw new IllegalArgumentException("batch_norm: expected more than 1 value per channel when training, got input of shape "
                    + Shape.str(x.shape()));
        }
        if (!training && (runningMean == null || runningVar == null)) {
            throw new IllegalArgumentException("batch_norm: eval mode needs running_mean and running_var");
        }
        if (batchesTracked != null && (batchesTracked.dtype() != DType.INT64 || batchesTracked.numel() != 1
                || !batchesTracked.device().equals(x.device()))) {
            throw new IllegalArgumentException("batch_norm: num_batches_tracked must be one int64 on " + x.device() + ", got "
                    + batchesTracked.dtype() + " " + Shape.str(batchesTracked.shape()) + " on " + batchesTracked.device());
        }
    }

    private static boolean fused(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias, Tensor residual) {
        DType t = x.dtype(), pt = t.accumulation();
        boolean typeOk = x.device().isCuda() ? t.isFloating() : t == DType.FLOAT32 || t == DType.FLOAT64;
        if (!typeOk || (residual != null && residual.dtype() != t) || (weight == null) != (bias == null)) return false;
        for (Tensor p : new Tensor[]{runningMean, runningVar, weight, bias}) {
            if (p != null && (p.dtype() != pt || !p.isContiguous() || !p.device().equals(x.device()))) return false;
        }
        return true;
    }

    private static Tensor fusedBatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor batchesTracked, Tensor weight, Tensor bias,
                                         Tensor residual, BatchNormParams p) {
        Backend be = Backends.get(x.device());
        Tensor[] r = be.batchNorm(x, weight, bias, runningMean, runningVar, batchesTracked, residual, p);   // a backend records no graph
        Tensor out = r[0], mean = r[1], invstd = r[2];
        Tensor in = x, w = weight, res = residual;
        return Autograd.record(p.relu() ? (residual != null ? "batch_norm_add_relu" : "batch_norm_relu") : "batch_norm", out, g -> {
            boolean params = w != null && (w.requiresGrad() || bias.requiresGrad());
            // the parameter gradients go straight into their gradient buffers where the engine grants them
            Tensor[] gr = be.batchNormBackward(g, p.relu() ? out : null, in, w, bias, mean, invstd, p, res != null, in.requiresGrad(),
                    params ? Autograd.gradientOutput(w) : null, params ? Autograd.gradientOutput(bias) : null);
            return new Tensor[]{gr[0], gr[1], gr[2], gr[3]};
        }, x, weight, bias, residual);
    }

    /** The composite of ops the fused batch norm must match (tests compare them). */
    static Tensor compositeBatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                             boolean training, double momentum, double eps) {
        int c = x.shape()[1];
        int[] dims = new int[x.dim() - 1];
        dims[0] = 0;
        for (int i = 2; i < x.dim(); i++) dims[i - 1] = i;
        int[] bshape = new int[x.dim()];
        Arrays.fill(bshape, 1);
        bshape[1] = c;
        Tensor y;
        if (training) {
            long n = x.numel() / Math.max(c, 1);
            Tensor mean = x.mean(dims, true), var = x.var(dims, false, true);
            y = normalize(x, mean, var, eps);
            updateRunning(runningMean, mean, momentum);
            updateRunning(runningVar, Tensor.noGrad(() -> var.mul((double) n / (n - 1))), momentum);
        } else {
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
