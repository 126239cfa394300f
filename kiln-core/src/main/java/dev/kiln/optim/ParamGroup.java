package dev.kiln.optim;

import dev.kiln.Tensor;

import java.util.List;
import java.util.function.DoubleSupplier;

/**
 * Parameters that share a learning rate and weight decay (e.g. no decay for biases and norms). The learning rate
 * is mutable because schedulers set it between steps.
 */
public final class ParamGroup {
    private final List<Tensor> params;
    private double lr;
    private final double weightDecay;
    private final DoubleSupplier liveLr = () -> this.lr;

    public ParamGroup(List<Tensor> params, double lr, double weightDecay) {
        if (params.isEmpty()) throw new IllegalArgumentException("a parameter group needs at least one parameter");
        for (Tensor p : params) {
            if (!p.requiresGrad() || !p.isLeaf()) throw new IllegalArgumentException("optimizers take leaf tensors with requiresGrad, got " + p);
        }
        if (!(lr >= 0)) throw new IllegalArgumentException("learning rate must be >= 0, got " + lr);
        if (!(weightDecay >= 0)) throw new IllegalArgumentException("weight decay must be >= 0, got " + weightDecay);
        this.params = List.copyOf(params);
        this.lr = lr;
        this.weightDecay = weightDecay;
    }

    public List<Tensor> params() { return params; }

    public double lr() { return lr; }

    public void setLr(double lr) {
        if (!(lr >= 0)) throw new IllegalArgumentException("learning rate must be >= 0, got " + lr);
        this.lr = lr;
    }

    public double weightDecay() { return weightDecay; }

    /**
     * The learning rate as read at each run of the step: the fused optimizer kernels take it this way, so that a step
     * captured as a CUDA graph reads the rate of the moment at every replay (one object per group, for the graph to
     * recognise).
     */
    public DoubleSupplier liveLr() { return liveLr; }
}
