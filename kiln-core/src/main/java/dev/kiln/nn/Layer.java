package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import java.lang.reflect.Field;
import java.lang.reflect.InaccessibleObjectException;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A layer or a model: parameters, buffers and sublayers registered by name, as PyTorch's {@code nn.Module}.
 * Names nest with dots ({@code features.3.bias}), so a state dict reads like PyTorch's.
 * <pre>{@code
 * class Block extends Layer implements Forward {
 *     private final Linear fc;
 *     private final Tensor scale;
 *
 *     Block(int n, Generator g) {
 *         fc = registerLayer("fc", new Linear(n, n, g));
 *         scale = registerParameter("scale", Tensor.ones(n));
 *     }
 *
 *     public Tensor forward(Tensor x) { return fc.forward(x).mul(scale).relu(); }
 * }
 * }</pre>
 * Keep parameters, buffers and sublayers in final fields: {@link #to(Device)} and {@link #to(DType)} move the
 * tensors in place ({@link Tensor#setData}), so the fields, and an optimizer built earlier, stay valid.
 *
 * <p>A layer has no {@code forward} of its own, so a forward pass may take whatever inputs it needs (a mask, a
 * state) as a method of the subclass. The common one-tensor case implements {@link Forward}, as every built-in
 * layer does; {@link Sequential}, {@link Checkpoint} and the training loop take such layers.
 *
 * <p>Every {@link Layer} and every tensor that requires grad held in a (non-static, non-transient) field of a
 * layer, or in an array, collection or map in such a field, must be registered in that layer or below it: the first
 * call of {@link #parameters()}, {@link #namedParameters()}, {@link #stateDict()} or {@code to(...)} checks this
 * and throws an {@link IllegalStateException} naming the field otherwise, since an unregistered sublayer would be
 * silently left out of training, saving and moving. Mark a field {@code transient} to exempt it.
 */
public abstract class Layer {
    private final Map<String, Tensor> parameters = new LinkedHashMap<>();
    private final Map<String, Tensor> buffers = new LinkedHashMap<>();
    private final Map<String, Layer> children = new LinkedHashMap<>();
    private boolean training = true;
    private boolean fieldsChecked; // checkFields passed since the last registration

    // ---------------------------------------------------------------- registration

    /** Registers (or replaces) a trainable leaf tensor; it gets requiresGrad. Returns it, for a final field. */
    protected final Tensor registerParameter(String name, Tensor value) {
        checkName(name);
        if (!value.isLeaf()) throw new IllegalArgumentException("parameter '" + name + "' must be a leaf tensor (detach it first)");
        parameters.put(name, value.requiresGrad(true));
        fieldsChecked = false;
        return value;
    }

    /**
     * Registers (or replaces) state that is saved and moved with the layer but not trained, such as batch norm's
     * running statistics. Returns it, for a final field.
     */
    protected final Tensor registerBuffer(String name, Tensor value) {
        checkName(name);
        if (!value.isLeaf()) throw new IllegalArgumentException("buffer '" + name + "' must be a leaf tensor (detach it first)");
        buffers.put(name, value);
        fieldsChecked = false;
        return value;
    }

    /** Registers (or replaces) a sublayer: its tensors join this layer's under {@code name.}. Returns it, for a final field. */
    protected final <M extends Layer> M registerLayer(String name, M layer) {
        checkName(name);
        if (layer == this) throw new IllegalArgumentException("a layer cannot contain itself ('" + name + "')");
        children.put(name, layer);
        fieldsChecked = false;
        return layer;
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

    /**
     * Puts {@code layer} in the place of the sublayer at {@code path} (dotted, as {@code layer1.0.conv1}): the same name,
     * the same place in the state dict and in forward. For conversions that swap a layer for one of the same role (an
     * observer around a convolution, its int8 version), as PyTorch's {@code set_submodule}. The parent keeps using what it
     * registered: {@link Sequential} does, and a layer that calls the sublayer through a field takes the new one in
     * {@link #replaced}; a parent whose fields would still hold the old layer refuses, and nothing changes.
     */
    public final void replaceLayer(String path, Layer layer) {
        int dot = path.lastIndexOf('.');
        Layer parent = this;
        if (dot >= 0) for (String name : path.substring(0, dot).split("\\.", -1)) parent = parent.child(name);
        parent.replaceChild(path.substring(dot + 1), layer);
    }

    private void replaceChild(String name, Layer layer) {
        Layer old = child(name);
        if (old instanceof Forward && !(layer instanceof Forward)) {
            throw new IllegalArgumentException(className(getClass()) + "." + name + ": a " + className(old.getClass())
                    + " takes one input (Forward); " + className(layer.getClass()) + " does not");
        }
        registerLayer(name, layer);
        replaced(name, layer);
        String field = fieldHolding(old);
        if (field != null) {
            registerLayer(name, old);
            replaced(name, old);
            throw new IllegalArgumentException(className(getClass()) + " calls its sublayer '" + name + "' through field " + field
                    + ", which cannot take a replacement (a layer that allows it updates the field in replaced())");
        }
    }

    /**
     * Called by {@link #replaceLayer} after sublayer {@code name} was registered as {@code layer}: a layer that keeps that
     * sublayer in a (non-final) field, or in a view of its own, points it at {@code layer} here. Nothing by default.
     */
    protected void replaced(String name, Layer layer) { }

    /** The name of the first non-transient field that holds {@code layer} (directly or in an array, collection or map), or null. */
    private String fieldHolding(Layer layer) {
        for (Field f : FIELDS.get(getClass())) {
            try {
                if (holds(f.get(this), layer)) return f.getName();
            } catch (IllegalAccessException e) {
                // unreadable: unchecked, as in checkFields
            }
        }
        return null;
    }

    private static boolean holds(Object value, Layer layer) {
        return switch (value) {
            case null -> false;
            case Layer l -> l == layer;
            case Object[] a -> Arrays.stream(a).anyMatch(o -> holds(o, layer));
            case java.util.Collection<?> c -> c.stream().anyMatch(o -> holds(o, layer));
            case Map<?, ?> m -> m.values().stream().anyMatch(o -> holds(o, layer));
            default -> false;
        };
    }

    // ---------------------------------------------------------------- traversal

    /** Every parameter of this layer and its sublayers, once each, in registration order. */
    public final List<Tensor> parameters() { return new ArrayList<>(namedParameters().values()); }

    /** Dotted name to parameter, depth first in registration order; a tensor shared by two layers appears once. */
    public final Map<String, Tensor> namedParameters() {
        checkTree();
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<Tensor> seen = Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        collect("", out, seen, true, false);
        return out;
    }

    /** Dotted name to buffer, depth first in registration order. */
    public final Map<String, Tensor> namedBuffers() {
        checkTree();
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect("", out, Collections.newSetFromMap(new java.util.IdentityHashMap<>()), false, true);
        return out;
    }

    private void collect(String prefix, Map<String, Tensor> out, Set<Tensor> seen, boolean params, boolean bufs) {
        if (params) for (var e : parameters.entrySet()) if (e.getValue() != null && seen.add(e.getValue())) out.put(prefix + e.getKey(), e.getValue());
        if (bufs) for (var e : buffers.entrySet()) if (seen.add(e.getValue())) out.put(prefix + e.getKey(), e.getValue());
        for (var e : children.entrySet()) e.getValue().collect(prefix + e.getKey() + ".", out, seen, params, bufs);
    }

    /** Dotted path to layer for this layer ("") and every layer below it, depth first in registration order (PyTorch's named_modules). */
    public final Map<String, Layer> namedLayers() {
        Map<String, Layer> out = new LinkedHashMap<>();
        namedLayersInto("", out);
        return out;
    }

    private void namedLayersInto(String path, Map<String, Layer> out) {
        out.put(path, this);
        for (var e : children.entrySet()) e.getValue().namedLayersInto(path.isEmpty() ? e.getKey() : path + "." + e.getKey(), out);
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

    /**
     * Training mode: dropout drops, batch norm uses and updates batch statistics. Returns this, typed as the
     * caller's target (see {@link #to(Device)}).
     */
    public final <L extends Layer> L train() { return train(true); }

    /** Training mode when {@code on}, else evaluation mode, for this layer and all below it. Returns this. */
    public final <L extends Layer> L train(boolean on) {
        for (Layer m : layers()) m.training = on;
        return self();
    }

    /** Evaluation mode (dropout off, batch norm on running statistics). Returns this. */
    public final <L extends Layer> L eval() { return train(false); }

    /**
     * This layer as the type the caller asks for, so {@code Net net = new Net().to(device)} needs no cast. Unchecked:
     * asking for a type this layer is not fails with a ClassCastException at the call site.
     */
    @SuppressWarnings("unchecked")
    private <L extends Layer> L self() { return (L) this; }

    // ---------------------------------------------------------------- state dict

    /** Parameters then buffers of each module, depth first, with PyTorch's dotted names. Values are the live tensors. */
    public final Map<String, Tensor> stateDict() {
        checkTree();
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

    /**
     * Moves every parameter and buffer to the device, in place: each keeps its Tensor object (so final fields and
     * an optimizer built before stay valid; build it before its first step, as its state is made then) and gets
     * new data on the device ({@link Tensor#setData}); parameters keep requiresGrad and lose a stale gradient.
     * Returns this, typed as the caller's target: {@code Net net = new Net().to(Device.cuda(0))} compiles (in a
     * chain or with {@code var}, the type is {@code Layer}).
     */
    public final <L extends Layer> L to(Device device) {
        return moveTensors(t -> t.device().equals(device) ? null : t.to(device));
    }

    /**
     * Converts floating parameters and buffers to the dtype in place, as {@link #to(Device)} (integer buffers such
     * as counters stay as they are). Returns this, typed as the caller's target.
     */
    public final <L extends Layer> L to(DType dtype) {
        if (!dtype.isFloating()) throw new IllegalArgumentException("Layer.to: needs a floating dtype, got " + dtype);
        return moveTensors(t -> t.dtype() == dtype || !t.dtype().isFloating() ? null : t.to(dtype));
    }

    /** Gives each parameter and buffer, once each, the data {@code convert} returns for it (null: leave it). */
    private <L extends Layer> L moveTensors(java.util.function.Function<Tensor, Tensor> convert) {
        checkTree();
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Tensor.noGrad(() -> {
            for (Layer m : layers()) {
                for (Tensor t : m.parameters.values()) if (t != null && seen.add(t)) move(t, convert);
                for (Tensor t : m.buffers.values()) if (seen.add(t)) move(t, convert);
            }
            return null;
        });
        return self();
    }

    /** t takes convert's data for it, in t's memory format (a channels-last filter stays channels-last). */
    private static void move(Tensor t, java.util.function.Function<Tensor, Tensor> convert) {
        Tensor data = convert.apply(t.detach());
        if (data != null && t.prefersChannelsLast() && !data.isChannelsLast()) data = data.toChannelsLast();
        if (data != null) t.setData(data);
    }

    /** Sets every parameter's gradient to null. */
    public final void zeroGrad() { for (Tensor p : parameters()) p.zeroGrad(); }

    // ---------------------------------------------------------------- the registration check

    /** Checks the fields of every layer from here down whose registrations changed since its last check. */
    private void checkTree() {
        for (Layer m : layers()) if (!m.fieldsChecked) m.checkFields();
    }

    /** Every Layer and trainable tensor in this layer's fields must be registered here or below. */
    private void checkFields() {
        Set<Object> registered = null; // made on the first field that needs it
        for (Field f : FIELDS.get(getClass())) {
            Object value;
            try {
                value = f.get(this);
            } catch (IllegalAccessException e) {
                continue;
            }
            if (value == null) continue;
            if (registered == null) registered = registeredBelow();
            checkValue(f, value, registered, "");
        }
        fieldsChecked = true;
    }

    private void checkValue(Field f, Object value, Set<Object> registered, String where) {
        switch (value) {
            case Layer l when l != this && !registered.contains(l) -> throw unregistered(f, where, "a Layer (" + l.getClass().getSimpleName() + ")", "registerLayer");
            case Tensor t when t.requiresGrad() && t.isLeaf() && !registered.contains(t) ->
                    throw unregistered(f, where, "a tensor that requires grad", "registerParameter");
            case Object[] a -> {
                for (int i = 0; i < a.length; i++) if (a[i] != null) checkValue(f, a[i], registered, where + "[" + i + "]");
            }
            case java.util.Collection<?> it -> {
                int i = 0;
                for (Object o : it) {
                    if (o != null) checkValue(f, o, registered, where + "[" + i + "]");
                    i++;
                }
            }
            case Map<?, ?> map -> {
                for (var e : map.entrySet()) if (e.getValue() != null) checkValue(f, e.getValue(), registered, where + "[" + e.getKey() + "]");
            }
            default -> { }
        }
    }

    private IllegalStateException unregistered(Field f, String where, String what, String register) {
        String name = f.getName();
        String call = where.isEmpty() ? register + "(\"" + name + "\", ...) in the constructor"
                : register + "(name, ...) for each element in the constructor";
        return new IllegalStateException(className(getClass()) + "." + name + where + " holds " + what
                + " that is not registered: call " + call + " (or mark the field transient to leave it out)");
    }

    private static String className(Class<?> c) { return c.getSimpleName().isEmpty() ? c.getName() : c.getSimpleName(); }

    /** Identity set of the layers, parameters and buffers from this layer down. */
    private Set<Object> registeredBelow() {
        Set<Object> out = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Layer m : layers()) {
            out.add(m);
            out.addAll(m.buffers.values());
            for (Tensor t : m.parameters.values()) if (t != null) out.add(t);
        }
        return out;
    }

    /** The instance fields a layer class and its superclasses below Layer declare (not transient), made accessible. */
    private static final ClassValue<List<Field>> FIELDS = new ClassValue<>() {
        @Override protected List<Field> computeValue(Class<?> type) {
            List<Field> out = new ArrayList<>();
            for (Class<?> c = type; c != null && c != Layer.class; c = c.getSuperclass()) {
                for (Field f : c.getDeclaredFields()) {
                    int mod = f.getModifiers();
                    if (Modifier.isStatic(mod) || Modifier.isTransient(mod) || f.isSynthetic() || f.getType().isPrimitive()) continue;
                    try {
                        f.setAccessible(true);
                    } catch (InaccessibleObjectException | SecurityException e) {
                        continue; // a module that does not open its package to Kiln: its fields go unchecked
                    }
                    out.add(f);
                }
            }
            return List.copyOf(out);
        }
    };

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
