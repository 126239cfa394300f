package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.UnaryOp;
import dev.kiln.ops.Attention;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Dropout;
import dev.kiln.ops.Elementwise;
import dev.kiln.ops.Indexing;
import dev.kiln.ops.Matmul;
import dev.kiln.ops.Losses;
import dev.kiln.ops.Normalization;
import dev.kiln.ops.Pooling;
import dev.kiln.ops.Softmax;
import dev.kiln.ops.Views;

/**
 * The functional layer: the maths of every nn module, as PyTorch's {@code torch.nn.functional}. Modules hold
 * parameters and state and call these. Each delegates to its op in {@code dev.kiln.ops}, where the gradient is.
 */
public final class F {
    private F() {}

    /** How a loss reduces over the batch: nn's constant for each {@link Losses.Reduction} (ops may not depend on nn). */
    public enum Reduction {
        MEAN(Losses.Reduction.MEAN), SUM(Losses.Reduction.SUM), NONE(Losses.Reduction.NONE);

        private final Losses.Reduction op;

        Reduction(Losses.Reduction op) { this.op = op; }
    }

    /** GELU's two forms, as PyTorch's {@code approximate} argument ("none" and "tanh"). */
    public enum GeluApproximation {
        /** The exact form, x Φ(x) with the normal CDF through erf: PyTorch's default. */
        NONE,
        /** 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))): GPT-2's "gelu_new" (and "gelu_pytorch_tanh"). */
        TANH;

        /** PyTorch's name: "none" or "tanh". */
        public static GeluApproximation fromPyTorch(String approximate) {
            return switch (approximate) {
                case "none" -> NONE;
                case "tanh" -> TANH;
                default -> throw new IllegalArgumentException("gelu: approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"");
            };
        }

        /** PyTorch's name of this form. */
        public String pyTorchName() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    // ---------------------------------------------------------------- layers

    /** x (..., in) times w (out, in) transposed, plus b (out) when not null. */
    public static Tensor linear(Tensor x, Tensor w, Tensor b) { return Matmul.linear(x, w, b); }

    /**
     * {@code residual + linear(x, w, b)} as one op, for a residual stream: the sum is the only new tensor (a separate add
     * would keep the product's output alive until the step ends as well) and CUDA adds the residual in the product's
     * epilogue. Under autocast the product runs in 16 bits and the sum stays in the residual's dtype.
     */
    public static Tensor linear(Tensor x, Tensor w, Tensor b, Tensor residual) { return Matmul.linear(x, w, b, residual); }

    /** x (N, C, H, W), w (O, C/groups, kH, kW), b (O) or null. */
    public static Tensor conv2d(Tensor x, Tensor w, Tensor b, Conv2dParams p) { return Convolution.conv2d(x, w, b, p); }

    public static Tensor conv2d(Tensor x, Tensor w, Tensor b, int stride, int padding) {
        return conv2d(x, w, b, Conv2dParams.of(stride, padding, 1, 1));
    }

    /** Constant padding, PyTorch's: (before, after) pairs from the last dimension backwards (negative: crop), filled with value. */
    public static Tensor pad(Tensor x, int[] pad, double value) { return Views.pad(x, pad, value); }

    /** Nearest-neighbour upsampling of (N, C, H, W) by a whole factor (PyTorch's interpolate, mode "nearest"). */
    public static Tensor upsampleNearest(Tensor x, int scale) { return Views.upsampleNearest(x, scale, scale); }

    /**
     * Transposed convolution: x (N, C, H, W), weight (C, O/groups, kH, kW), bias (O) or null; the output grows by the
     * stride, outputPadding (below the stride) settling which of the sizes that give x back under conv2d it has.
     */
    public static Tensor convTranspose2d(Tensor x, Tensor w, Tensor b, Conv2dParams p, int outputPadding) {
        return Convolution.convTranspose2d(x, w, b, p, outputPadding, outputPadding);
    }

    public static Tensor maxPool2d(Tensor x, int kernel, int stride, int padding) { return Pooling.maxPool2d(x, Pool2dParams.of(kernel, stride, padding)); }

    public static Tensor avgPool2d(Tensor x, int kernel, int stride, int padding) { return Pooling.avgPool2d(x, Pool2dParams.of(kernel, stride, padding)); }

    public static Tensor adaptiveAvgPool2d(Tensor x, int outH, int outW) { return Pooling.adaptiveAvgPool2d(x, outH, outW); }

    public static Tensor embedding(Tensor ids, Tensor weight) { return Indexing.embedding(ids, weight); }

    public static Tensor oneHot(Tensor ids, int classes) { return Indexing.oneHot(ids, classes); }

    /** Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p) while training. */
    public static Tensor dropout(Tensor x, double p, boolean training, Generator g) { return Dropout.dropout(x, p, training, g); }

    /** Normalises over the trailing normalizedShape dimensions; weight and bias of that shape, or null. */
    public static Tensor layerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps) { return Normalization.layerNorm(x, normalizedShape, weight, bias, eps); }

    /**
     * RMS norm over the trailing normalizedShape dimensions (LLaMA's): x / sqrt(mean(x^2) + eps) times weight (that
     * shape, or null); eps NaN: the machine epsilon of x's dtype, as PyTorch's default.
     */
    public static Tensor rmsNorm(Tensor x, int[] normalizedShape, Tensor weight, double eps) { return Normalization.rmsNorm(x, normalizedShape, weight, eps); }

    /** Group norm of (N, C, *): statistics per sample over each of numGroups groups of channels; weight and bias (C) or null. */
    public static Tensor groupNorm(Tensor x, int numGroups, Tensor weight, Tensor bias, double eps) { return Normalization.groupNorm(x, numGroups, weight, bias, eps); }

    /**
     * Layer norm with its output in {@code dtype} (null: as above): float32 input normalised straight into 16 bits, for
     * a layer norm that only feeds products (a pre-norm block under autocast, which would cast the output for them and
     * keep both). The statistics stay float32; gradients flow back in float32.
     */
    public static Tensor layerNorm(Tensor x, int[] normalizedShape, Tensor weight, Tensor bias, double eps, DType dtype) {
        return Normalization.layerNorm(x, normalizedShape, weight, bias, eps, dtype);
    }

    /**
     * Batch norm over (N, C) or (N, C, *): per-channel statistics. In training the batch statistics normalise and
     * update runningMean/runningVar in place (momentum as PyTorch, unbiased running variance); in eval the running
     * statistics normalise. weight and bias (C) may be null.
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                   boolean training, double momentum, double eps) { return Normalization.batchNorm(x, runningMean, runningVar, weight, bias, training, momentum, eps); }

    /** softmax(q k^T / sqrt(d)) v over the last two dims; causal masks the future. */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, boolean causal) { return Attention.scaledDotProductAttention(q, k, v, causal); }

    /** As PyTorch's: mask (or null) broadcasts to (..., L, S), bool (true = may attend) or floating (added to the scores). */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal) { return Attention.scaledDotProductAttention(q, k, v, mask, causal); }

    // ---------------------------------------------------------------- activations

    public static Tensor relu(Tensor x) { return x.relu(); }

    public static Tensor gelu(Tensor x) { return x.gelu(); }

    /**
     * {@code linear(gelu(h, approximate), w, b) + residual} (residual null: none) as one op that keeps h alone for
     * backward, computing gelu(h) again there: a transformer MLP's widest activation is kept once, not twice.
     */
    public static Tensor linearAfterGelu(Tensor h, GeluApproximation approximate, Tensor w, Tensor b, Tensor residual) {
        return Matmul.linearAfter(approximate == GeluApproximation.TANH ? UnaryOp.GELU_TANH : UnaryOp.GELU, h, w, b, residual);
    }

    /** GELU in the given form: {@code gelu(x, TANH)} is PyTorch's {@code gelu(x, approximate="tanh")}. */
    public static Tensor gelu(Tensor x, GeluApproximation approximate) {
        return switch (approximate) {
            case NONE -> x.gelu();
            case TANH -> Elementwise.unary(UnaryOp.GELU_TANH, x);
        };
    }

    public static Tensor silu(Tensor x) { return x.silu(); }

    /** {@code x > 0 ? x : negativeSlope * x}. */
    public static Tensor leakyRelu(Tensor x, double negativeSlope) { return Elementwise.leakyRelu(x, negativeSlope); }

    public static Tensor sigmoid(Tensor x) { return x.sigmoid(); }

    public static Tensor tanh(Tensor x) { return x.tanh(); }

    public static Tensor softmax(Tensor x, int dim) { return Softmax.softmax(x, dim); }

    public static Tensor logSoftmax(Tensor x, int dim) { return Softmax.logSoftmax(x, dim); }

    // ---------------------------------------------------------------- losses

    /** logits (N, C) or (N, C, d...), target int64 class ids (N) or (N, d...). */
    public static Tensor crossEntropy(Tensor logits, Tensor target, double labelSmoothing, int ignoreIndex, Reduction reduction) {
        return Losses.crossEntropy(Autocast.cast(AutocastPolicy.CROSS_ENTROPY, logits), target, labelSmoothing, ignoreIndex, reduction.op);
    }

    public static Tensor crossEntropy(Tensor logits, Tensor target) { return crossEntropy(logits, target, 0, -100, Reduction.MEAN); }

    public static Tensor nllLoss(Tensor logProbs, Tensor target, int ignoreIndex, Reduction reduction) {
        return Losses.nllLoss(Autocast.cast(AutocastPolicy.NLL_LOSS, logProbs), target, ignoreIndex, reduction.op);
    }

    public static Tensor mseLoss(Tensor input, Tensor target, Reduction reduction) {
        return Losses.mseLoss(Autocast.cast(AutocastPolicy.MSE_LOSS, input), Autocast.cast(AutocastPolicy.MSE_LOSS, target), reduction.op);
    }

    /** Absolute error. */
    public static Tensor l1Loss(Tensor input, Tensor target, Reduction reduction) {
        return Losses.l1Loss(Autocast.cast(AutocastPolicy.L1_LOSS, input), Autocast.cast(AutocastPolicy.L1_LOSS, target), reduction.op);
    }

    /** Squared error below beta (halved, over beta), absolute error less beta / 2 above it; beta 0 is the L1 loss. */
    public static Tensor smoothL1Loss(Tensor input, Tensor target, Reduction reduction, double beta) {
        return Losses.smoothL1Loss(Autocast.cast(AutocastPolicy.SMOOTH_L1_LOSS, input), Autocast.cast(AutocastPolicy.SMOOTH_L1_LOSS, target),
                reduction.op, beta);
    }

    /** Huber's loss: half the squared error below delta, delta (|d| - delta / 2) above (delta times the smooth L1 loss at beta = delta). */
    public static Tensor huberLoss(Tensor input, Tensor target, Reduction reduction, double delta) {
        if (!(delta > 0)) throw new IllegalArgumentException("huber_loss: delta must be > 0, got " + delta);
        return smoothL1Loss(input, target, reduction, delta).mul(delta);
    }

    public static Tensor binaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction) {
        return Losses.binaryCrossEntropyWithLogits(Autocast.cast(AutocastPolicy.BCE_WITH_LOGITS, logits),
                Autocast.cast(AutocastPolicy.BCE_WITH_LOGITS, target), reduction.op);
    }
}
