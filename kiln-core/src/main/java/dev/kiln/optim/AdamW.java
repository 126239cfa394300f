package dev.kiln.optim;

import dev.kiln.Tensor;

import java.util.List;

/** Adam with decoupled weight decay (Loshchilov and Hutter): p *= 1 - lr·wd before the Adam step; wd 0.01 by default as in PyTorch. */
public final class AdamW extends Adam {
    public AdamW(List<Tensor> params, double lr) { this(params, lr, 0.01); }

    public AdamW(List<Tensor> params, double lr, double weightDecay) {
        this(List.of(new ParamGroup(params, lr, weightDecay)), 0.9, 0.999, 1e-8);
    }

    public AdamW(List<ParamGroup> groups, double beta1, double beta2, double eps) { super(groups, beta1, beta2, eps, true); }
}
