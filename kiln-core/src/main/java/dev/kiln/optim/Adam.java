package dev.kiln.optim;

import dev.kiln.Backends;
import dev.kiln.DType;
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

    /** Moments and the step count; skipped: the steps a device flag left out, counted on the device (null until a flag). */
    private static final class State {
        Tensor m, v, skipped;
        long step;
    }

    private State initialised(Tensor p) {
        State s = state(p, State::new);
        if (s.m == null) {
            s.m = zerosLike(p);
            s.v = zerosLike(p);
        } else {
            s.m = laidOutAs(s.m, p);
            s.v = laidOutAs(s.v, p);
        }
        return s;
    }

    /** The parameter's skipped-step count, made (zero) on its device at the first step that has a skip flag. */
    private static Tensor skippedCount(State s, Tensor p) {
        if (s.skipped == null) s.skipped = Tensor.zeros(new int[0], DType.FLOAT64, p.device()).keep();
        return s.skipped;
    }

    /**
     * One fused backend call for the whole group when its parameters allow it and share a step count (the usual case).
     * The host counts every step; a step the device skipped is counted there too and subtracted by the kernel.
     */
    @Override protected final void stepGroup(List<Tensor> params, ParamGroup group, Tensor skip) {
        List<Tensor> ms = new ArrayList<>(params.size()), vs = new ArrayList<>(params.size());
        long step = -1;
        boolean sameStep = true, counted = skip != null;
        for (Tensor p : params) {
            State s = initialised(p);
            sameStep &= step < 0 || s.step == step;
            step = s.step;
            counted |= s.skipped != null;
            ms.add(s.m);
            vs.add(s.v);
        }
        if (!sameStep || !fusable(params)) {
            super.stepGroup(params, group, skip);
            return;
        }
        List<Tensor> skipped = null;
        if (counted) {
            skipped = new ArrayList<>(params.size());
            for (Tensor p : params) skipped.add(skippedCount(initialised(p), p));
        }
        for (Tensor p : params) initialised(p).step++;
        Backends.get(params.getFirst().device()).adamStep(params, grads(params), ms, vs, group.liveLr(), beta1, beta2, eps,
                group.weightDecay(), decoupled, step + 1, skip, skipped);
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
        long taken = s.step - (s.skipped == null ? 0 : (long) s.skipped.item());
        return new ParamState(Map.of("exp_avg", s.m, "exp_avg_sq", s.v), Map.of("step", taken));
    }

    @Override public final void importState(Tensor p, ParamState saved) {
        State s = state(p, State::new);
        if (s.skipped != null) s.skipped.copyFrom(Tensor.scalar(0, DType.FLOAT64, p.device()));   // the saved step counts only steps taken
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

    @Override protected final void update(Tensor p, Tensor grad, ParamGroup group, Tensor skip) {
        State s = initialised(p);
        long t = ++s.step;
        double lr = group.lr(), wd = group.weightDecay();
        Tensor g = grad, x = p;
        if (wd != 0 && decoupled) x = p.mul(1 - lr * wd);
        if (wd != 0 && !decoupled) g = g.add(p.mul(wd));
        Tensor m = s.m.mul(beta1).add(g.mul(1 - beta1));
        Tensor v = s.v.mul(beta2).add(g.mul(g).mul(1 - beta2));
        Tensor stepped;
        if (skip == null && s.skipped == null) {
            double stepSize = lr / (1 - Math.pow(beta1, t)), sqrtBc2 = Math.sqrt(1 - Math.pow(beta2, t));
            stepped = x.sub(m.div(v.sqrt().div(sqrtBc2).add(eps)).mul(stepSize));
        } else {
            // the steps taken are known on the device only, so the bias corrections are computed there
            Tensor taken = skippedCount(s, p).neg().add(t);
            Tensor stepSize = power(beta1, taken).rsub(1).rdiv(lr).to(p.dtype()), sqrtBc2 = power(beta2, taken).rsub(1).sqrt().to(p.dtype());
            stepped = x.sub(m.div(v.sqrt().div(sqrtBc2).add(eps)).mul(stepSize));
        }
        assign(s.m, m, skip);
        assign(s.v, v, skip);
        assign(p, stepped, skip);
        if (skip != null) s.skipped.copyFrom(Tensor.where(skip, s.skipped.add(1), s.skipped));
    }

    /** base^exponent for a float64 exponent tensor. */
    private static Tensor power(double base, Tensor exponent) {
        return Tensor.scalar(base, DType.FLOAT64, exponent.device()).pow(exponent);
    }
}
