package dev.kiln.optim;

import dev.kiln.Tensor;

import java.util.List;

/**
 * Adam with PyTorch's formulas and bias correction: m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²;
 * p -= lr/(1-b1^t) · m / (sqrt(v)/sqrt(1-b2^t) + eps). Weight decay here is L2 (added to g);
 * {@link AdamW} decouples it.
 */
public sealed class Adam extends Optimizer permits AdamW {
    private final double beta1, beta2, eps;
    private final boolean decoupled;

    public Adam(List<Tensor> params, double lr) { this(List.of(new ParamGroup(params, lr, 0)), 0.9, 0.999, 1e-8); }

    public Adam(List<ParamGroup> groups, double beta1, double beta2, double eps) { this(groups, beta1, beta2, eps, false); }

    Adam(List<ParamGroup> groups, double beta1, double beta2, double eps, boolean decoupled) {
        super(groups);
        if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("Adam: betas must be in [0, 1), got (" + beta1 + ", " + beta2 + ")");
        }
        if (!(eps >= 0)) throw new IllegalArgumentException("Adam: eps must be >= 0, got " + eps);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.decoupled = decoupled;
    }

    private static final class State {
        Tensor m, v;
        long step;
    }

    @Override protected final void update(Tensor p, Tensor grad, ParamGroup group) {
        State s = state(p, State::new);
        if (s.m == null) {
            s.m = zerosLike(p);
            s.v = zerosLike(p);
        }
        long t = ++s.step;
        double lr = group.lr(), wd = group.weightDecay();
        double bc1 = 1 - Math.pow(beta1, t), bc2 = 1 - Math.pow(beta2, t);
        double stepSize = lr / bc1, sqrtBc2 = Math.sqrt(bc2);
        float[] pw = cpuFloats(p), gw = cpuFloats(grad), mw = cpuFloats(s.m), vw = cpuFloats(s.v);
        if (pw != null && gw != null && mw != null && vw != null) {
            fused(pw, gw, mw, vw, lr, wd, stepSize, sqrtBc2);
            return;
        }
        Tensor g = grad;
        if (wd != 0 && decoupled) p.copyFrom(p.mul(1 - lr * wd));
        if (wd != 0 && !decoupled) g = g.add(p.mul(wd));
        s.m.copyFrom(s.m.mul(beta1).add(g.mul(1 - beta1)));
        s.v.copyFrom(s.v.mul(beta2).add(g.mul(g).mul(1 - beta2)));
        Tensor denom = s.v.sqrt().div(sqrtBc2).add(eps);
        p.copyFrom(p.sub(s.m.div(denom).mul(stepSize)));
    }

    private void fused(float[] p, float[] grad, float[] m, float[] v, double lr, double wd, double stepSize, double sqrtBc2) {
        float b1 = (float) beta1, b2 = (float) beta2, a1 = (float) (1 - beta1), a2 = (float) (1 - beta2);
        float decay = decoupled ? (float) (1 - lr * wd) : 1f, l2 = decoupled ? 0f : (float) wd;
        float step = (float) stepSize, invBc2 = (float) (1 / sqrtBc2), e = (float) eps;
        for (int i = 0; i < p.length; i++) {
            float x = p[i] * decay;
            float g = grad[i] + l2 * p[i];
            float mi = b1 * m[i] + a1 * g;
            float vi = b2 * v[i] + a2 * g * g;
            m[i] = mi;
            v[i] = vi;
            p[i] = x - step * mi / ((float) Math.sqrt(vi) * invBc2 + e);
        }
    }
}
