package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Batch normalisation over the channel dimension (dim 1), as PyTorch's BatchNorm: weight 1, bias 0, running
 * mean 0 and variance 1, momentum 0.1, eps 1e-5; the buffers are named {@code running_mean}, {@code running_var}
 * and {@code num_batches_tracked} so state dicts match PyTorch's.
 */
public sealed abstract class BatchNorm extends Layer implements Forward permits BatchNorm1d, BatchNorm2d {
    private final int features;
    private final double eps, momentum;
    private final boolean affine;
    private final Tensor weight, bias; // null unless affine
    private final Tensor runningMean, runningVar, numBatchesTracked;
    // the convolution before it, which does its transform (foldInto); null: not folded. Weak, so a conv replaced later
    // (quantization puts its own layer in its place) does not stay alive through this layer
    private java.lang.ref.WeakReference<Conv2d> foldedInto;
    private UnaryOperator<Tensor> sumOverReplicas; // synchronised batch norm: sums a tensor over the data-parallel ranks, differentiably

    BatchNorm(int features, double eps, double momentum, boolean affine) {
        if (features < 1) throw new IllegalArgumentException(getClass().getSimpleName() + ": features must be >= 1");
        this.features = features;
        this.eps = eps;
        this.momentum = momentum;
        this.affine = affine;
        this.weight = affine ? registerParameter("weight", Init.ones(features)) : null;
        this.bias = affine ? registerParameter("bias", Init.zeros(features)) : null;
        this.runningMean = registerBuffer("running_mean", Init.zeros(features));
        this.runningVar = registerBuffer("running_var", Init.ones(features));
        this.numBatchesTracked = registerBuffer("num_batches_tracked", Tensor.zeros(new int[0], DType.INT64, Device.CPU));
    }

    /** Back to the initial state, in place: weight 1, bias 0, running mean 0, running variance 1, no batches tracked. */
    public final void resetParameters() {
        Tensor.noGrad(() -> {
            if (affine) {
                weight.copyFrom(Tensor.ones(1));
                bias.copyFrom(Tensor.zeros(1));
            }
            runningMean.copyFrom(Tensor.zeros(1));
            runningVar.copyFrom(Tensor.ones(1));
            numBatchesTracked.copyFrom(Tensor.zeros(new int[0], DType.INT64, Device.CPU));
            return null;
        });
    }

    /** The constant added to the variance. */
    public final double eps() { return eps; }

    /** The scale (features), or null when not affine. */
    public final Tensor weight() { return weight; }

    /** The shift (features), or null when not affine. */
    public final Tensor bias() { return bias; }

    /** The running mean buffer, (features). */
    public final Tensor runningMean() { return runningMean; }

    /** The running variance buffer, (features). */
    public final Tensor runningVar() { return runningVar; }

    /** Whether {@link #foldInto} moved this layer's transform into a convolution, so it passes its input through. */
    public final boolean isFolded() { return foldedInto != null; }

    /**
     * Moves this layer's inference transform, {@code (x - mean) / sqrt(var + eps) * weight + bias} per channel, into
     * {@code conv}, whose output must be this layer's input: conv's weight is scaled and it gets (or adjusts) a bias,
     * and this layer then only adds the residual and applies the ReLU its forward is asked for. For inference only
     * (it cannot be undone and a folded layer refuses training mode); the running statistics stay, unused.
     */
    public final void foldInto(Conv2d conv) {
        if (foldedInto != null) throw new IllegalStateException(getClass().getSimpleName() + " is already folded into a convolution");
        if (conv.outChannels() != features) {
            throw new IllegalArgumentException(getClass().getSimpleName() + "(" + features + ") cannot fold into a convolution of "
                    + conv.outChannels() + " output channels");
        }
        Tensor.noGrad(() -> {
            Tensor scale = runningVar.add(eps).sqrt().rdiv(1);
            if (affine) scale = scale.mul(weight);
            Tensor shift = runningMean.mul(scale).neg();
            if (affine) shift = shift.add(bias);
            conv.scaleAndShiftOutputs(scale, shift);
            return null;
        });
        foldedInto = new java.lang.ref.WeakReference<>(conv);
    }

    /**
     * {@code relu?(this(conv(x)) + residual)}, a residual block's convolution and norm: once this layer is folded into
     * {@code conv}, the convolution adds the residual and applies the ReLU as its epilogue (one pass over its output
     * where the add and the ReLU would take two more).
     */
    public final Tensor forwardAfter(Forward conv, Tensor x, Tensor residual, boolean relu) {
        if (foldedInto != null && conv == foldedInto.get() && !isTraining()) return ((Conv2d) conv).forward(x, residual, relu);
        return forward(conv.forward(x), residual, relu);
    }

    /**
     * Synchronised batch norm (PyTorch's SyncBatchNorm): in training the batch statistics are those of the global
     * batch, every rank's share together, through {@code sumOverReplicas} (a differentiable sum of a tensor over the
     * data-parallel ranks, whose backward sums the gradients the same way; {@code DataParallel.syncBatchNorm} sets it).
     * Null: each rank normalises by its own batch (the default). Evaluation always uses the running statistics.
     */
    public final void synchronize(UnaryOperator<Tensor> sumOverReplicas) { this.sumOverReplicas = sumOverReplicas; }

    /** The ranks this layer accepts, for the error message. */
    abstract boolean acceptsRank(int rank);

    abstract String expectedInput();

    @Override public Tensor forward(Tensor x) { return forward(x, null, false); }

    /**
     * {@code relu?(this(x) + residual)} (residual null: none) as one op: a residual block's tail, or a batch norm
     * followed by a ReLU (Sequential uses it), without the separate passes over memory the three ops would take.
     */
    public Tensor forward(Tensor x, Tensor residual, boolean relu) {
        checkInput(x);
        boolean training = isTraining();
        if (foldedInto != null) {
            if (training) throw new IllegalStateException(getClass().getSimpleName() + " was folded into a convolution for inference and cannot train");
            Tensor y = residual == null ? x : x.add(residual);
            return relu ? y.relu() : y;
        }
        Tensor counter = batchCounter(x, training);
        if (training && sumOverReplicas != null) return synchronizedForward(x, residual, relu);
        return dev.kiln.ops.Normalization.batchNorm(x, runningMean, runningVar, counter, weight, bias, residual, training, momentum, eps, relu);
    }

    /**
     * {@code pool(relu(this(x)))} as one op (an ImageNet ResNet's stem; Sequential uses it): on CUDA with channels-last
     * activations the normalised ones are never stored.
     */
    Tensor forwardReluMaxPool(Tensor x, MaxPool2d pool) {
        checkInput(x);
        boolean training = isTraining();
        if (foldedInto != null || (training && sumOverReplicas != null)) return pool.forward(forward(x, null, true));
        return dev.kiln.ops.Normalization.batchNormReluMaxPool(x, runningMean, runningVar, batchCounter(x, training), weight, bias, training,
                momentum, eps, pool.params());
    }

    /**
     * The batch counter for the op to increment (on CUDA inside its statistics kernel, not in two launches of its own),
     * or null where the op cannot and this layer has counted the batch itself (in training).
     */
    private Tensor batchCounter(Tensor x, boolean training) {
        boolean opCounts = sumOverReplicas == null && numBatchesTracked.device().equals(x.device());
        if (training && !opCounts) Tensor.noGrad(() -> numBatchesTracked.copyFrom(numBatchesTracked.add(1)));
        return opCounts ? numBatchesTracked : null;
    }

    private void checkInput(Tensor x) {
        if (!acceptsRank(x.dim()) || x.size(1) != features) {
            throw new IllegalArgumentException(getClass().getSimpleName() + "(" + features + "): expected " + expectedInput()
                    + " with " + features + " channels, got shape " + Shape.str(x.shape()));
        }
    }

    /**
     * Training with the global batch's statistics: per channel, this rank's sum, sum of squares and count are summed
     * over the ranks (one collective), then x is normalised by the global mean and (biased) variance. Composed of
     * differentiable ops, so backward sums the statistics' gradients over the ranks too. Statistics in float32 at least.
     */
    private Tensor synchronizedForward(Tensor x, Tensor residual, boolean relu) {
        int[] reduce = new int[x.dim() - 1];
        reduce[0] = 0;
        for (int d = 2; d < x.dim(); d++) reduce[d - 1] = d;
        int[] channelShape = new int[x.dim()];
        java.util.Arrays.fill(channelShape, 1);
        channelShape[1] = features;
        DType statType = x.dtype().accumulation();
        Tensor xs = x.to(statType);
        Tensor count = Tensor.full(new int[]{features}, (double) x.numel() / features, statType, x.device());
        Tensor stats = sumOverReplicas.apply(Tensor.cat(List.of(xs.sum(reduce, false), xs.mul(xs).sum(reduce, false), count), 0));
        Tensor n = stats.narrow(0, 2 * features, features);
        Tensor mean = stats.narrow(0, 0, features).div(n);
        Tensor var = stats.narrow(0, features, features).div(n).sub(mean.mul(mean));
        Tensor.noGrad(() -> {
            Tensor unbiased = var.mul(n).div(n.sub(1));
            runningMean.copyFrom(runningMean.mul(1 - momentum).add(mean.mul(momentum).to(runningMean.dtype())));
            runningVar.copyFrom(runningVar.mul(1 - momentum).add(unbiased.mul(momentum).to(runningVar.dtype())));
            return null;
        });
        Tensor y = xs.sub(mean.reshape(channelShape)).mul(var.add(eps).sqrt().rdiv(1).reshape(channelShape));
        if (affine) y = y.mul(weight.to(statType).reshape(channelShape)).add(bias.to(statType).reshape(channelShape));
        y = y.to(x.dtype());
        if (residual != null) y = y.add(residual);
        return relu ? y.relu() : y;
    }

    @Override protected String extraRepr() {
        return features + ", eps=" + eps + ", momentum=" + momentum + ", affine=" + (affine ? "True" : "False");
    }
}
