package dev.kiln.optim;

import dev.kiln.Backends;
import dev.kiln.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Stochastic gradient descent with PyTorch's formulas: g += wd·p; buf = momentum·buf + (1-dampening)·g (buf = g at
 * the first step); g = nesterov ? g + momentum·buf : buf; p -= lr·g. Float32/float64 parameters on one device take
 * the backend's fused multi-tensor step ({@link dev.kiln.backend.Backend#sgdStep}); others the composite in {@link #update}.
 * A first step that a device flag skips still starts the buffer (at zero: the host cannot know it was skipped), so with
 * dampening the next step's buffer is (1-dampening)·g rather than g.
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

    /** One fused backend call for the group when its parameters allow it and all are at their first step or none is. */
    @Override protected void stepGroup(List<Tensor> params, ParamGroup group, Tensor skip) {
        List<Tensor> bufs = momentum != 0 ? new ArrayList<>(params.size()) : null;
        int firsts = 0;
        for (Tensor p : params) {
            State s = state(p, State::new);
            if (s.buf == null) firsts++;
        }
        if ((firsts != 0 && firsts != params.size()) || !fusable(params)) {
            super.stepGroup(params, group, skip);
            return;
        }
        if (bufs != null) {
            for (Tensor p : params) {
                State s = state(p, State::new);
                s.buf = s.buf == null ? zerosLike(p) : laidOutAs(s.buf, p);
                bufs.add(s.buf);
            }
        }
        Backends.get(params.getFirst().device()).sgdStep(params, grads(params), bufs, group.liveLr(), momentum, dampening,
                group.weightDecay(), nesterov, firsts != 0, skip);
    }

    @Override public ParamState exportState(Tensor p) {
        State s = existingState(p);
        return s == null || s.buf == null ? ParamState.EMPTY : new ParamState(Map.of("momentum_buffer", s.buf), Map.of());
    }

    @Override public void importState(Tensor p, ParamState saved) {
        Tensor buf = saved.tensors().get("momentum_buffer");
        if (!saved.isEmpty() && buf == null) throw new IllegalArgumentException("SGD state needs momentum_buffer, got " + saved);
        state(p, State::new).buf = buf == null ? null : restored(p, buf, "momentum_buffer");
    }

    @Override public Map<String, Double> hyperparameters() {
        return Map.of("momentum", momentum, "dampening", dampening, "nesterov", nesterov ? 1.0 : 0.0);
    }

    @Override protected void update(Tensor p, Tensor grad, ParamGroup group, Tensor skip) {
        State s = state(p, State::new);
        boolean first = s.buf == null;
        Tensor g = group.weightDecay() != 0 ? grad.add(p.mul(group.weightDecay())) : grad;
        if (momentum != 0) {
            if (first) s.buf = zerosLike(p);
            assign(s.buf, first ? g : s.buf.mul(momentum).add(g.mul(1 - dampening)), skip);
            g = nesterov ? g.add(s.buf.mul(momentum)) : s.buf;
        }
        assign(p, p.sub(g.mul(group.lr())), skip);
    }
}
