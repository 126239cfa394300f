package dev.kiln.optim;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.cpu.CpuStorage;

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
    public final void step() {
        try (GradMode ignored = GradMode.disabled()) {
            for (ParamGroup g : groups) {
                for (Tensor p : g.params()) {
                    if (p.grad() != null) update(p, p.grad(), g);
                }
            }
        }
    }

    /** Updates one parameter in place. Called with grad mode off. */
    protected abstract void update(Tensor param, Tensor grad, ParamGroup group);

    /** This parameter's state, created on first use. */
    @SuppressWarnings("unchecked")
    protected final <S> S state(Tensor param, Supplier<S> create) {
        return (S) state.computeIfAbsent(param, k -> create.get());
    }

    /** Sets every learning rate (all groups). */
    public final void setLr(double lr) { for (ParamGroup g : groups) g.setLr(lr); }

    /**
     * The backing array when the tensor is a whole, contiguous float32 CPU tensor: then the fused loops of the
     * optimizers update it directly instead of through a chain of tensor ops (each a pass over memory and a new
     * array). Null otherwise, and the general path runs.
     */
    static float[] cpuFloats(Tensor t) {
        if (!t.device().equals(Device.CPU)) return null;
        if (t.dtype() != DType.FLOAT32 || !t.isContiguous() || t.offset() != 0 || t.storage().numel() != t.numel()) return null;
        return t.storage() instanceof CpuStorage s ? (float[]) s.array() : null;
    }

    /** A zero tensor like t (same shape, dtype and device). */
    /** State that lives across steps: kept out of the step's MemoryScope. */
    static Tensor zerosLike(Tensor t) { return Tensor.zeros(t.shape(), t.dtype(), t.device()).keep(); }
}
