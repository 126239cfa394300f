package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * Batch normalisation over the channel dimension (dim 1), as PyTorch's BatchNorm: weight 1, bias 0, running
 * mean 0 and variance 1, momentum 0.1, eps 1e-5; the buffers are named {@code running_mean}, {@code running_var}
 * and {@code num_batches_tracked} so state dicts match PyTorch's.
 */
public sealed abstract class BatchNorm extends Layer permits BatchNorm1d, BatchNorm2d {
    private final int features;
    private final double eps, momentum;
    private final boolean affine;

    BatchNorm(int features, double eps, double momentum, boolean affine) {
        if (features < 1) throw new IllegalArgumentException(getClass().getSimpleName() + ": features must be >= 1");
        this.features = features;
        this.eps = eps;
        this.momentum = momentum;
        this.affine = affine;
        resetParameters();
    }

    public final void resetParameters() {
        if (affine) {
            registerParameter("weight", Init.ones(features));
            registerParameter("bias", Init.zeros(features));
        }
        registerBuffer("running_mean", Init.zeros(features));
        registerBuffer("running_var", Init.ones(features));
        registerBuffer("num_batches_tracked", Tensor.zeros(new int[0], DType.INT64, Device.CPU));
    }

    /** The ranks this layer accepts, for the error message. */
    abstract boolean acceptsRank(int rank);

    abstract String expectedInput();

    @Override public Tensor forward(Tensor x) {
        if (!acceptsRank(x.dim()) || x.size(1) != features) {
            throw new IllegalArgumentException(getClass().getSimpleName() + "(" + features + "): expected " + expectedInput()
                    + " with " + features + " channels, got shape " + Shape.str(x.shape()));
        }
        boolean training = isTraining();
        if (training) {
            Tensor n = buffer("num_batches_tracked");
            Tensor.noGrad(() -> n.copyFrom(n.add(1)));
        }
        return F.batchNorm(x, buffer("running_mean"), buffer("running_var"),
                affine ? parameter("weight") : null, affine ? parameter("bias") : null, training, momentum, eps);
    }

    @Override protected String extraRepr() {
        return features + ", eps=" + eps + ", momentum=" + momentum + ", affine=" + (affine ? "True" : "False");
    }
}
