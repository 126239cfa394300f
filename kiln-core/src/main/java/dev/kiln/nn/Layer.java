package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A layer or a model: parameters, buffers and submodules registered by name, as PyTorch's {@code nn.Module}.
 * Names nest with dots ({@code features.3.bias}), so a state dict reads like PyTorch's. Subclasses look their
 * tensors up by name in {@link #forward} rather than keeping them in fields, because {@link #to(Device)} and
 * {@link #to(DType)} replace the tensors.
 */
public abstract class Layer {
    private final Map<String, Tensor> parameters = new LinkedHashMap<>();
    private final Map<String, Tensor> buffers = new LinkedHashMap<>();
    private final Map<String, Layer> children = new LinkedHashMap<>();
    private boolean training = true;

    /** The layer's computation on one input. */
    public abstract Tensor forward(Tensor x);

    // ---------------------------------------------------------------- registration

    /** Registers (or replaces) a trainable tensor; it gets requiresGrad. Returns it. */
    protected final Tensor registerParameter(String name, Tensor value) {
        checkName(name);
        if (!value.isLeaf()) throw new IllegalArgumentException("parameter '" + name + "' must be a leaf tensor (detach it first)");
        parameters.put(name, value.requiresGrad(true));
        return value;
    }

    /** Registers (or replaces) state that is saved but not trained, such as batch norm's running statistics. */
    protected final Tensor registerBuffer(String name, Tensor value) {
        checkName(name);
        buffers.put(name, value);
        return value;
    }

    protected final <M extends Layer> M registerLayer(String name, M module) {
        checkName(name);
        children.put(name, module);
        return module;
    }

    private static void checkName(String name) {
        if (name.isEmpty() || name.contains(".")) throw new IllegalArgumentException("bad module member name '" + name + "'");
    }

    /** This module's own parameter (not a submodule's). */
    public final Tensor parameter(String name) {
        Tensor t = parameters.get(name);
        if (t == null && !parameters.containsKey(name)) throw new IllegalArgumentException(getClass().getSimpleName() + " has no parameter '" + name + "'");
        return t;
    }

    public final Tensor buffer(String name) {
        Tensor t = buffers.get(name);
        if (t == null) throw new IllegalArgumentException(getClass().getSimpleName() + " has no buffer '" + name + "'");
        return t;
    }

    public final Layer child(String name) {
        Layer m = children.get(name);
        if (m == null) throw new IllegalArgumentException(getClass().getSimpleName() + " has no submodule '" + name + "'");
        return m;
    }

    public final Map<String, Layer> children() { return Collections.unmodifiableMap(children); }

    // ---------------------------------------------------------------- traversal

    /** Every parameter of this module and its submodules, once each, in registration order. */
    public final List<Tensor> parameters() { return new ArrayList<>(namedParameters().values()); }

    /** Dotted name to parameter, depth first in registration order; a tensor shared by two modules appears once. */
    public final Map<String, Tensor> namedParameters() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<Tensor> seen = Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        collect("", out, seen, true, false);
        return out;
    }

    public final Map<String, Tensor> namedBuffers() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect("", out, Collections.newSetFromMap(new java.util.IdentityHashMap<>()), false, true);
        return out;
    }

    private void collect(String prefix, Map<String, Tensor> out, Set<Tensor> seen, boolean params, boolean bufs) {
        if (params) for (var e : parameters.entrySet()) if (e.getValue() != null && seen.add(e.getValue())) out.put(prefix + e.getKey(), e.getValue());
        if (bufs) for (var e : buffers.entrySet()) if (seen.add(e.getValue())) out.put(prefix + e.getKey(), e.getValue());
        for (var e : children.entrySet()) e.getValue().collect(prefix + e.getKey() + ".", out, seen, params, bufs);
    }

    /** This module and all below it, depth first. */
    public final List<Layer> layers() {
        List<Layer> out = new ArrayList<>();
        out.add(this);
        for (Layer c : children.values()) out.addAll(c.layers());
        return out;
    }

    public final long parameterCount() {
        long n = 0;
        for (Tensor t : parameters()) n += t.numel();
        return n;
    }

    // ---------------------------------------------------------------- modes

    public final boolean isTraining() { return training; }

    /** Training mode: dropout drops, batch norm uses and updates batch statistics. Returns this. */
    public final Layer train() { return train(true); }

    public final Layer train(boolean on) {
        for (Layer m : layers()) m.training = on;
        return this;
    }

    /** Evaluation mode (dropout off, batch norm on running statistics). Returns this. */
    public final Layer eval() { return train(false); }

    // ---------------------------------------------------------------- state dict

    /** Parameters then buffers of each module, depth first, with PyTorch's dotted names. Values are the live tensors. */
    public final Map<String, Tensor> stateDict() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        stateInto("", out);
        return out;
    }

    private void stateInto(String prefix, Map<String, Tensor> out) {
        for (var e : parameters.entrySet()) if (e.getValue() != null) out.put(prefix + e.getKey(), e.getValue());
        for (var e : buffers.entrySet()) out.put(prefix + e.getKey(), e.getValue());
        for (var e : children.entrySet()) e.getValue().stateInto(prefix + e.getKey() + ".", out);
    }

    /**
     * Copies values into this module's tensors in place (so an optimizer built on them keeps working), converting
     * dtype and device. Strict: every name must match both ways and every shape must agree.
     */
    public final void loadStateDict(Map<String, Tensor> state) {
        Map<String, Tensor> mine = stateDict();
        Set<String> missing = new LinkedHashSet<>(mine.keySet());
        missing.removeAll(state.keySet());
        Set<String> unexpected = new LinkedHashSet<>(state.keySet());
        unexpected.removeAll(mine.keySet());
        if (!missing.isEmpty() || !unexpected.isEmpty()) {
            throw new IllegalArgumentException("loadStateDict: " + (missing.isEmpty() ? "" : "missing " + missing + (unexpected.isEmpty() ? "" : "; "))
                    + (unexpected.isEmpty() ? "" : "unexpected " + unexpected));
        }
        for (var e : mine.entrySet()) {
            Tensor src = state.get(e.getKey());
            if (!Arrays.equals(src.shape(), e.getValue().shape())) {
                throw new IllegalArgumentException("loadStateDict: '" + e.getKey() + "' has shape " + Shape.str(src.shape())
                        + " in the state dict but " + Shape.str(e.getValue().shape()) + " in the model");
            }
        }
        Tensor.noGrad(() -> {
            for (var e : mine.entrySet()) e.getValue().copyFrom(state.get(e.getKey()).to(e.getValue().dtype()));
            return null;
        });
    }

    // ---------------------------------------------------------------- device and dtype

    /** Moves every parameter and buffer to the device. Build optimizers after this: parameters become new tensors. */
    public Layer to(Device device) {
        for (Layer m : layers()) {
            m.parameters.replaceAll((k, t) -> t == null || t.device().equals(device) ? t : t.detach().to(device).requiresGrad(true));
            m.buffers.replaceAll((k, t) -> t.to(device));
        }
        return this;
    }

    /** Converts floating parameters and buffers to the dtype (integer buffers such as counters stay as they are). */
    public Layer to(DType dtype) {
        for (Layer m : layers()) {
            m.parameters.replaceAll((k, t) -> t == null || t.dtype() == dtype ? t : Tensor.noGrad(() -> t.detach().to(dtype)).requiresGrad(true));
            m.buffers.replaceAll((k, t) -> t.dtype().isFloating() ? t.to(dtype) : t);
        }
        return this;
    }

    /** Sets every parameter's gradient to null. */
    public final void zeroGrad() { for (Tensor p : parameters()) p.zeroGrad(); }

    /** PyTorch's short module description, e.g. {@code Linear(in_features=784, out_features=512, bias=True)}. */
    protected String extraRepr() { return ""; }

    @Override public String toString() {
        if (children.isEmpty()) return getClass().getSimpleName() + "(" + extraRepr() + ")";
        StringBuilder sb = new StringBuilder(getClass().getSimpleName()).append("(");
        if (!extraRepr().isEmpty()) sb.append(extraRepr());
        sb.append('\n');
        for (var e : children.entrySet()) {
            sb.append("  (").append(e.getKey()).append("): ").append(e.getValue().toString().replace("\n", "\n  ")).append('\n');
        }
        return sb.append(')').toString();
    }
}
