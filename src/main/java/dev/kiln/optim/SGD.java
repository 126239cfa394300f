package dev.kiln.optim;

import dev.kiln.Tensor;

import java.util.List;

/**
 * Stochastic gradient descent with PyTorch's formulas: g += wd·p; buf = momentum·buf + (1-dampening)·g (buf = g at
 * the first step); g = nesterov ? g + momentum·buf : buf; p -= lr·g.
 */
public final class SGD extends Optimizer {
    private final double momentum, dampening;
    private final boolean nesterov;

    public SGD(List<Tensor> params, double lr) { this(List.of(new ParamGroup(params, lr, 0)), 0, 0, false); }

    public SGD(List<Tensor> params, double lr, double momentum, double weightDecay, boolean nesterov) {
        this(List.of(new ParamGroup(params, lr, weightDecay)), momentum, 0, nesterov);
    }

    public SGD(List<ParamGroup> groups, double momentum, double dampening, boolean nesterov) {
        super(groups);
        if (!(momentum >= 0)) throw new IllegalArgumentException("SGD: momentum must be >= 0, got " + momentum);
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new IllegalArgumentException("SGD: Nesterov needs momentum > 0 and no dampening");
        this.momentum = momentum;
        this.dampening = dampening;
        this.nesterov = nesterov;
    }

    /** The momentum buffer and whether it holds a value yet (PyTorch starts it at the first gradient, not at zero). */
    private static final class State {
        Tensor buf;
    }

    @Override protected void update(Tensor p, Tensor grad, ParamGroup group) {
        State s = state(p, State::new);
        boolean first = s.buf == null;
        if (momentum != 0 && first) s.buf = zerosLike(p);
        float[] pw = cpuFloats(p), gw = cpuFloats(grad), bw = momentum != 0 ? cpuFloats(s.buf) : null;
        if (pw != null && gw != null && (momentum == 0 || bw != null)) {
            fused(pw, gw, bw, first, group.lr(), group.weightDecay());
            return;
        }
        Tensor g = group.weightDecay() != 0 ? grad.add(p.mul(group.weightDecay())) : grad;
        if (momentum != 0) {
            s.buf.copyFrom(first ? g : s.buf.mul(momentum).add(g.mul(1 - dampening)));
            g = nesterov ? g.add(s.buf.mul(momentum)) : s.buf;
        }
        p.copyFrom(p.sub(g.mul(group.lr())));
    }

    private void fused(float[] p, float[] grad, float[] buf, boolean first, double lr, double wd) {
        float m = (float) momentum, damp = (float) (1 - dampening), lrf = (float) lr, wdf = (float) wd;
        for (int i = 0; i < p.length; i++) {
            float g = grad[i] + wdf * p[i];
            if (buf != null) {
                float b = first ? g : m * buf[i] + damp * g;
                buf[i] = b;
                g = nesterov ? g + m * b : b;
            }
            p[i] -= lrf * g;
        }
    }
}
