package dev.kiln.optim;

import dev.kiln.Backends;
import dev.kiln.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Adam with PyTorch's formulas and bias correction: m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²;
 * p -= lr/(1-b1^t) · m / (sqrt(v)/sqrt(1-b2^t) + eps). Weight decay here is L2 (added to g);
 * {@link AdamW} decouples it. Float32/float64 parameters on one device take the backend's fused multi-tensor step
 * ({@link dev.kiln.backend.Backend#adamStep}); others the composite of tensor ops in {@link #update}.
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

    private State initialised(Tensor p) {
        State s = state(p, State::new);
        if (s.m == null) {
            s.m = zerosLike(p);
            s.v = zerosLike(p);
        }
        return s;
    }

    /** One fused backend call for the whole group when its parameters allow it and share a step count (the usual case). */
    @Override protected final void stepGroup(List<Tensor> params, ParamGroup group) {
        List<Tensor> ms = new ArrayList<>(params.size()), vs = new ArrayList<>(params.size());
        long step = -1;
        boolean sameStep = true;
        for (Tensor p : params) {
            State s = initialised(p);
            sameStep &= step < 0 || s.step == step;
            step = s.step;
            ms.add(s.m);
            vs.add(s.v);
        }
        if (!sameStep || !fusable(params)) {
            super.stepGroup(params, group);
            return;
        }
        for (Tensor p : params) initialised(p).step++;
        Backends.get(params.getFirst().device()).adamStep(params, grads(params), ms, vs, group.liveLr(), beta1, beta2, eps,
                group.weightDecay(), decoupled, step + 1);
    }

    /** The graph's kernel counts its own steps on the device; the host count follows it here. */
    @Override public final void countGraphedSteps(long n) {
        for (ParamGroup g : groups()) {
            for (Tensor p : g.params()) {
                State s = state(p, State::new);
                if (s.m != null) s.step += n;
            }
        }
    }

    @Override public final ParamState exportState(Tensor p) {
        State s = existingState(p);
        if (s == null || s.m == null) return ParamState.EMPTY;
        return new ParamState(Map.of("exp_avg", s.m, "exp_avg_sq", s.v), Map.of("step", s.step));
    }

    @Override public final void importState(Tensor p, ParamState saved) {
        State s = state(p, State::new);
        if (saved.isEmpty()) {
            s.m = s.v = null;
            s.step = 0;
            return;
        }
        Tensor m = saved.tensors().get("exp_avg"), v = saved.tensors().get("exp_avg_sq");
        Long step = saved.counts().get("step");
        if (m == null || v == null || step == null) throw new IllegalArgumentException("Adam state needs exp_avg, exp_avg_sq and step, got " + saved);
        s.m = restored(p, m, "exp_avg");
        s.v = restored(p, v, "exp_avg_sq");
        s.step = step;
    }

    @Override public final Map<String, Double> hyperparameters() { return Map.of("beta1", beta1, "beta2", beta2, "eps", eps); }

    @Override protected final void update(Tensor p, Tensor grad, ParamGroup group) {
        State s = initialised(p);
        long t = ++s.step;
        double lr = group.lr(), wd = group.weightDecay();
        double bc1 = 1 - Math.pow(beta1, t), bc2 = 1 - Math.pow(beta2, t);
        double stepSize = lr / bc1, sqrtBc2 = Math.sqrt(bc2);
        Tensor g = grad;
        if (wd != 0 && decoupled) p.copyFrom(p.mul(1 - lr * wd));
        if (wd != 0 && !decoupled) g = g.add(p.mul(wd));
        s.m.copyFrom(s.m.mul(beta1).add(g.mul(1 - beta1)));
        s.v.copyFrom(s.v.mul(beta2).add(g.mul(g).mul(1 - beta2)));
        Tensor denom = s.v.sqrt().div(sqrtBc2).add(eps);
        p.copyFrom(p.sub(s.m.div(denom).mul(stepSize)));
    }
}
