package dev.kiln.optim;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Updates parameters from their gradients, group by group. {@link #step()} runs without recording the graph and
 * writes into the parameter tensors in place, so models and other references keep seeing the same tensors.
 * Per-parameter state (moments) lives in tensors on the parameter's device.
 */
public abstract class Optimizer {
    private final List<ParamGroup> groups;
    private final Map<Tensor, Object> state = new IdentityHashMap<>();
    /** Tests turn this off to compare the fused step with the composite one. */
    private boolean fusedEnabled = true;

    protected Optimizer(List<ParamGroup> groups) {
        if (groups.isEmpty()) throw new IllegalArgumentException("an optimizer needs at least one parameter group");
        this.groups = List.copyOf(groups);
    }

    public final List<ParamGroup> groups() { return groups; }

    /** Sets every gradient to null (PyTorch's set_to_none), so the next backward assigns rather than adds. */
    public final void zeroGrad() {
        for (ParamGroup g : groups) for (Tensor p : g.params()) p.zeroGrad();
    }

    /** One update of every parameter that has a gradient. */
    public final void step() { step(null); }

    /**
     * One update that the device leaves out when {@code skip} (null, or a one-element float64 tensor on the parameters'
     * device) is not zero as the step runs: no parameter and no state changes, Adam's step count included. A loss
     * scaler's overflow flag is decided on the device ({@link dev.kiln.amp.GradScaler}), so nothing is read on the host
     * and the step captures into a CUDA graph.
     */
    public final void step(Tensor skip) {
        if (skip != null && (skip.dtype() != DType.FLOAT64 || skip.numel() != 1)) {
            throw new IllegalArgumentException("Optimizer.step: the skip flag is a one-element float64 tensor, got " + skip.dtype() + " " + Shape.str(skip.shape()));
        }
        try (GradMode ignored = GradMode.disabled()) {
            for (ParamGroup g : groups) {
                List<Tensor> params = withGrad(g);
                if (!params.isEmpty()) stepGroup(params, g, skip);
            }
        }
    }

    /**
     * Updates these parameters of the group (those with a gradient), in place, unless {@code skip} (null or as for
     * {@link #step(Tensor)}) is set; called with grad mode off. By default one at a time through {@link #update}; Adam
     * and SGD hand them to the backend's fused step in one call where {@link #fusable} allows.
     */
    protected void stepGroup(List<Tensor> params, ParamGroup group, Tensor skip) {
        for (Tensor p : params) update(p, p.grad(), group, skip);
    }

    /**
     * Updates one parameter in place through tensor ops (the composite path), each write masked by {@code skip} when
     * there is one ({@link #assign}). Called with grad mode off.
     */
    protected abstract void update(Tensor param, Tensor grad, ParamGroup group, Tensor skip);

    /** dst = value, or dst left as it is where {@code skip} (null: never) is set on the device: the composite's masked write. */
    static void assign(Tensor dst, Tensor value, Tensor skip) {
        dst.copyFrom(skip == null ? value : Tensor.where(skip, dst, value));
    }

    private static List<Tensor> withGrad(ParamGroup g) {
        List<Tensor> out = new ArrayList<>(g.params().size());
        for (Tensor p : g.params()) if (p.grad() != null) out.add(p);
        return out;
    }

    final void setFused(boolean enabled) { fusedEnabled = enabled; }

    /**
     * Whether the backend's fused step can update these parameters: float32 or float64, one dtype and one device
     * for all, each contiguous or channels-last, and gradients of the same dtype laid out as their parameters (state
     * is, {@link #zerosLike}, {@link #laidOutAs}). Then a step is one pass per tensor on the CPU and one launch per 48
     * tensors on CUDA, instead of about ten elementwise ops per parameter.
     */
    final boolean fusable(List<Tensor> params) {
        if (!fusedEnabled) return false;
        Tensor first = params.getFirst();
        if (first.dtype() != DType.FLOAT32 && first.dtype() != DType.FLOAT64) return false;
        for (Tensor p : params) {
            Tensor g = p.grad();
            if (p.dtype() != first.dtype() || !p.device().equals(first.device())) return false;
            // laid out as p, so p itself is contiguous or channels-last
            if (g.dtype() != p.dtype() || !g.device().equals(p.device()) || !g.sameDenseLayout(p)) return false;
        }
        return true;
    }

    static List<Tensor> grads(List<Tensor> params) {
        List<Tensor> out = new ArrayList<>(params.size());
        for (Tensor p : params) out.add(p.grad());
        return out;
    }

    /** This parameter's state, created on first use. */
    @SuppressWarnings("unchecked")
    protected final <S> S state(Tensor param, Supplier<S> create) {
        return (S) state.computeIfAbsent(param, k -> create.get());
    }

    /**
     * Records that {@code n} steps ran without this object's Java code (replays of a captured CUDA graph), or takes
     * back a step whose code ran but whose work did not ({@code n = -1} after a capture, which records a step and
     * executes nothing), so step-dependent state (Adam's bias-correction count) stays what eager training has.
     * Optimizers whose state does not count steps ignore it.
     */
    public void countGraphedSteps(long n) {}

    // ---------------------------------------------------------------- state for checkpoints

    /**
     * One parameter's optimizer state, by PyTorch's names: tensors (Adam's {@code exp_avg}, {@code exp_avg_sq}; SGD's
     * {@code momentum_buffer}) and counts (Adam's {@code step}). Empty before the parameter's first step.
     */
    public record ParamState(Map<String, Tensor> tensors, Map<String, Long> counts) {
        public static final ParamState EMPTY = new ParamState(Map.of(), Map.of());

        public boolean isEmpty() { return tensors.isEmpty() && counts.isEmpty(); }
    }

    /** The state of {@code param} (the live tensors, not copies), for a checkpoint. */
    public ParamState exportState(Tensor param) { return ParamState.EMPTY; }

    /**
     * Replaces {@code param}'s state by a saved one (copied onto the parameter's device and dtype), so the next step
     * is the one an uninterrupted run would take. An empty state leaves the parameter as before its first step.
     */
    public void importState(Tensor param, ParamState saved) {
        if (!saved.isEmpty()) throw new IllegalArgumentException(getClass().getSimpleName() + " keeps no state, got " + saved.tensors().keySet());
    }

    /** The hyperparameters beyond each group's learning rate and weight decay (Adam's betas and eps, SGD's momentum), for a checkpoint. */
    public Map<String, Double> hyperparameters() { return Map.of(); }

    /** The state already made for this parameter, or null. */
    @SuppressWarnings("unchecked")
    protected final <S> S existingState(Tensor param) { return (S) state.get(param); }

    /** A kept copy of a saved state tensor on param's device and dtype; its shape must be the parameter's. */
    static Tensor restored(Tensor param, Tensor saved, String name) {
        if (!java.util.Arrays.equals(param.shape(), saved.shape())) {
            throw new IllegalArgumentException("optimizer state " + name + " has shape " + java.util.Arrays.toString(saved.shape())
                    + ", its parameter " + java.util.Arrays.toString(param.shape()));
        }
        try (GradMode ignored = GradMode.disabled()) {
            return zerosLike(param).copyFrom(saved.to(param.dtype()));
        }
    }

    /** Sets every learning rate (all groups). */
    public final void setLr(double lr) { for (ParamGroup g : groups) g.setLr(lr); }

    /**
     * A zero tensor like t (same shape, dtype, device and memory format: a channels-last filter's state is
     * channels-last, as its gradient), kept out of the step's MemoryScope: state lives across steps.
     */
    static Tensor zerosLike(Tensor t) {
        Tensor z = Tensor.zeros(t.shape(), t.dtype(), t.device());
        return (t.prefersChannelsLast() ? z.toChannelsLast() : z).keep();
    }

    /** state laid out as its parameter: state itself, or a kept copy when the parameter was re-laid since (setData). */
    static Tensor laidOutAs(Tensor state, Tensor param) {
        if (state.sameDenseLayout(param)) return state;
        try (GradMode ignored = GradMode.disabled()) {
            return param.emptyLike(param.dtype()).copyFrom(state).keep();
        }
    }
}
