package dev.kiln.optim;

import dev.kiln.Tensor;

import java.util.List;

/**
 * Parameters that share a learning rate and weight decay (e.g. no decay for biases and norms). The learning rate
 * is mutable because schedulers set it between steps.
 */
public final class ParamGroup {
    private final List<Tensor> params;
    private double lr;
    private final double weightDecay;

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
}
