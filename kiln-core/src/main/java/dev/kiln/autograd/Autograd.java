package dev.kiln.autograd;

import dev.kiln.MemoryScope;
import dev.kiln.Storage;
import dev.kiln.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Records ops into the graph and runs reverse-mode differentiation over it. Backward is iterative (an explicit
 * stack, so a graph thousands of ops deep cannot overflow the Java stack) and calls ops, so it runs on the
 * device where the tensors live. Contract: leaves accumulate ({@code grad += g}); intermediate gradients are
 * assigned once all their consumers have contributed, and released once their node has run (nothing outside the
 * engine holds them, so backward's peak memory is the forward's activations plus the gradients still pending).
 * Inside a {@link MemoryScope} (a training step), each node's backward runs in a scope of its own, so the
 * temporaries it makes go back to the pool when it returns rather than at the step's end.
 */
public final class Autograd {
    private Autograd() {}

    /** The op whose backward the calling thread is running (null: none). */
    private static final ThreadLocal<String> RUNNING = new ThreadLocal<>();

    /** The op whose backward the calling thread is running, or null: the profiler names memory by it. */
    public static String runningBackward() { return RUNNING.get(); }

    /**
     * The running node's inputs and, per input, the gradient buffer its backward may write into (or null) and the
     * gradient already pending for it that its backward may add in (or null; {@code taken} records that it did).
     */
    private record Granted(Tensor[] inputs, Tensor[] buffers, Tensor[] pending, boolean[] writable, boolean[] taken) {}

    private static final ThreadLocal<Granted> GRANTED = new ThreadLocal<>();

    /**
     * Inside a node's backward: where the gradient for {@code input} may be written, or null (the backward then makes a
     * tensor of its own). Not null only for a leaf with a gradient buffer ({@link Tensor#setGradBuffer}), no gradient
     * yet, no gradient hooks and this node as its only consumer in the graph: nothing else then adds to that gradient,
     * so an op whose backward writes it there (a linear layer's weight-gradient product) spares the copy. The
     * backward returns the buffer itself as the input's gradient.
     */
    public static Tensor gradientDestination(Tensor input) {
        Granted g = GRANTED.get();
        if (g == null || g.buffers() == null) return null;
        for (int k = 0; k < g.inputs().length; k++) if (g.inputs()[k] == input) return g.buffers()[k];
        return null;
    }

    /**
     * Inside a node's backward: the gradient other consumers of {@code input} have already given it (same shape and
     * dtype as the input), or null. A backward that takes it must return, for that input, its own gradient plus this
     * one: it adds it in the pass that writes its result (layer norm's input gradient adds the residual stream's),
     * and the engine's separate add pass goes. The taken tensor must not be written.
     */
    public static Tensor takePendingGradient(Tensor input) {
        Granted g = GRANTED.get();
        if (g == null || g.pending() == null) return null;
        for (int k = 0; k < g.inputs().length; k++) {
            if (g.inputs()[k] == input && g.pending()[k] != null && !g.taken()[k]) {
                g.taken()[k] = true;
                return g.pending()[k];
            }
        }
        return null;
    }

    /**
     * As {@link #takePendingGradient}, but only a pending gradient whose memory nothing else can see (no other pending
     * gradient, the node's own incoming gradient, the caller's root gradient or what a gradient hook saw or returned
     * shares it), which the backward may
     * then write: it adds its own gradient into it in place (a convolution's input gradient, by cuDNN's output
     * scaling) and returns it. Null when there is none or it is shared.
     */
    public static Tensor takeWritablePendingGradient(Tensor input) {
        Granted g = GRANTED.get();
        if (g == null || g.pending() == null) return null;
        for (int k = 0; k < g.inputs().length; k++) {
            if (g.inputs()[k] == input && g.pending()[k] != null && g.writable()[k] && !g.taken()[k]) {
                g.taken()[k] = true;
                return g.pending()[k];
            }
        }
        return null;
    }

    /** Whether {@link #record} would attach a backward to an op of these inputs (grad mode on, one of them requiring a gradient). */
    public static boolean records(Tensor... inputs) {
        if (!GradMode.isEnabled()) return false;
        for (Tensor t : inputs) if (t != null && t.requiresGrad()) return true;
        return false;
    }

    /**
     * Attaches {@code backward} to {@code out} when grad mode is on and any input requires a gradient.
     * {@code inputs} are the op's tensor inputs in the order {@code backward} returns their gradients.
     */
    public static Tensor record(String op, Tensor out, Node.Backward backward, Tensor... inputs) {
        if (!GradMode.isEnabled()) return out;
        boolean any = false;
        for (Tensor t : inputs) any |= t != null && t.requiresGrad();
        if (!any) return out;
        Tensor[] needing = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) needing[i] = inputs[i] != null && inputs[i].requiresGrad() ? inputs[i] : null;
        out.attachGradFn(new Node(op, needing, backward));
        return out;
    }

    public static void backward(Tensor root, Tensor rootGrad, boolean retainGraph) {
        if (!root.requiresGrad()) {
            throw new IllegalStateException("backward: the tensor does not require grad and has no grad_fn "
                    + "(was it computed under no-grad, or from tensors without requiresGrad?)");
        }
        List<Tensor> order = topologicalOrder(root);
        Map<Tensor, Tensor> grads = new IdentityHashMap<>();
        grads.put(root, rootGrad);
        // how many pending gradients (and the caller's root gradient) reference each storage: a leaf may keep a
        // gradient's memory as its .grad without a copy only when nothing else can still see that memory
        Map<Storage, Integer> refs = new IdentityHashMap<>();
        refs.put(rootGrad.storage(), 2);
        java.util.Set<Storage> hookSeen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        Map<Tensor, Integer> consumers = null;   // per tensor, how many node inputs it is: counted when a leaf has a gradient buffer
        for (Tensor t : order) {
            if (t.isLeaf() && t.gradBuffer() != null) {
                consumers = consumers(order);
                break;
            }
        }
        // autocast off: each gradient runs in the dtypes its forward op used (the casts' gradients cast back)
        try (GradMode g = GradMode.disabled(); Autocast ac = Autocast.disabled()) {
            for (int i = order.size() - 1; i >= 0; i--) {
                Tensor t = order.get(i);
                Tensor grad = grads.remove(t);
                if (grad == null) continue;
                refs.merge(grad.storage(), -1, Integer::sum);
                Tensor hooked = t.applyGradHooks(grad);
                if (t.hasGradHooks()) {   // what a hook saw or returned may be the caller's: never written or released here
                    hookSeen.add(grad.storage());
                    hookSeen.add(hooked.storage());
                }
                Node fn = t.gradFn();
                if (fn == null) {
                    t.accumulateGrad(hooked, hooked == grad && refs.getOrDefault(grad.storage(), 0) == 0 && !hookSeen.contains(grad.storage()));
                    continue;
                }
                grad = hooked;
                Tensor[] inputs = fn.inputs();
                Tensor[] buffers = null, pending = null;
                boolean[] writable = null;
                for (int k = 0; k < inputs.length; k++) {
                    Tensor in = inputs[k];
                    if (in == null) continue;
                    Tensor prev = grads.get(in);
                    if (prev != null) {
                        if (prev.dtype() == in.dtype() && java.util.Arrays.equals(prev.shape(), in.shape())) {
                            if (pending == null) {
                                pending = new Tensor[inputs.length];
                                writable = new boolean[inputs.length];
                            }
                            pending[k] = prev;
                            writable[k] = refs.getOrDefault(prev.storage(), 0) == 1 && prev.storage() != grad.storage()
                                    && prev.storage() != rootGrad.storage() && !hookSeen.contains(prev.storage());
                        }
                        continue;
                    }
                    if (consumers == null || !in.isLeaf() || in.gradBuffer() == null || in.grad() != null || in.hasGradHooks()
                            || consumers.getOrDefault(in, 0) != 1) continue;
                    if (buffers == null) buffers = new Tensor[inputs.length];
                    buffers[k] = in.gradBuffer();
                }
                Granted granted = buffers == null && pending == null ? null
                        : new Granted(inputs, buffers, pending, writable, pending == null ? null : new boolean[inputs.length]);
                Tensor[] inputGrads = applyScoped(fn, grad, granted);
                List<Storage> spent = new ArrayList<>(); // summed or cast away: released below unless still pending
                for (int k = 0; k < inputs.length; k++) {
                    Tensor in = inputs[k];
                    if (in == null || inputGrads[k] == null) continue;
                    Tensor gk = inputGrads[k];
                    if (!java.util.Arrays.equals(gk.shape(), in.shape())) {
                        throw new IllegalStateException("internal: backward of '" + fn.op() + "' returned a gradient of shape "
                                + dev.kiln.Shape.str(gk.shape()) + " for an input of shape " + dev.kiln.Shape.str(in.shape()));
                    }
                    // a gradient takes its input's dtype, as PyTorch's engine does, so a mixed-precision graph
                    // hands float32 gradients to float32 tensors and 16-bit ones to 16-bit tensors
                    boolean included = granted != null && granted.taken() != null && granted.taken()[k];
                    if (included && gk.dtype() != in.dtype()) {
                        throw new IllegalStateException("internal: backward of '" + fn.op() + "' took the pending gradient and returned " + gk.dtype()
                                + " for a " + in.dtype() + " input");
                    }
                    if (gk.dtype() != in.dtype()) {
                        spent.add(gk.storage());
                        gk = gk.to(in.dtype());
                    }
                    Tensor prev = grads.get(in);
                    Tensor sum = prev == null || included ? gk : prev.add(gk);
                    if (prev != null) {
                        refs.merge(prev.storage(), -1, Integer::sum);
                        spent.add(prev.storage());
                        if (!included) spent.add(gk.storage());
                    }
                    refs.merge(sum.storage(), 1, Integer::sum);
                    grads.put(in, sum);
                }
                if (!retainGraph) fn.release();
                // an intermediate's gradient is spent once its node has run: its memory goes back now, not at the step's
                // end, unless a pending gradient shares it (add passes g through, reshape returns a view) or a hook saw it;
                // so are the addends of a sum and the originals of a cast, which only this loop ever saw
                if (t != root && !t.hasGradHooks() && refs.getOrDefault(grad.storage(), 0) == 0 && !hookSeen.contains(grad.storage())) {
                    grad.storage().release();
                }
                for (Storage s : spent) {
                    if (s != grad.storage() && s != rootGrad.storage() && refs.getOrDefault(s, 0) == 0 && !s.isReleased() && !hookSeen.contains(s)) {
                        s.release();
                    }
                }
            }
        }
    }

    /**
     * One node's backward, in a scope of its own when the caller runs in one: its temporaries are released when it
     * returns, the gradients it returns move to the caller's scope. Outside any scope memory is the collector's.
     */
    private static Tensor[] applyScoped(Node fn, Tensor grad, Granted granted) {
        String outer = RUNNING.get();
        Granted outerGranted = GRANTED.get();
        RUNNING.set(fn.op());
        GRANTED.set(granted);
        try {
            if (!MemoryScope.isOpen()) return fn.apply(grad);
            try (MemoryScope temporaries = MemoryScope.open()) {
                Tensor[] out = fn.apply(grad);
                for (Tensor g : out) if (g != null) MemoryScope.promote(g);
                return out;
            }
        } finally {
            RUNNING.set(outer);
            GRANTED.set(outerGranted);
        }
    }

    /**
     * Where a backward writes the gradient for {@code input}: its {@link #gradientDestination} when granted, else a new
     * tensor of the input's shape, dtype and device.
     */
    public static Tensor gradientOutput(Tensor input) {
        Tensor d = gradientDestination(input);
        return d != null ? d : Tensor.empty(input.shape(), input.dtype(), input.device());
    }

    /** Per tensor of the graph, how many node inputs it is (a tensor an op takes twice counts twice). */
    private static Map<Tensor, Integer> consumers(List<Tensor> order) {
        Map<Tensor, Integer> n = new IdentityHashMap<>();
        for (Tensor t : order) {
            Node fn = t.gradFn();
            if (fn != null) for (Tensor in : fn.inputs()) if (in != null) n.merge(in, 1, Integer::sum);
        }
        return n;
    }

    /** Post-order of the graph below root (inputs before the ops that consume them), without recursion. */
    private static List<Tensor> topologicalOrder(Tensor root) {
        List<Tensor> order = new ArrayList<>();
        Map<Tensor, Boolean> visited = new IdentityHashMap<>();
        ArrayDeque<Object[]> stack = new ArrayDeque<>(); // {tensor, next input index}
        stack.push(new Object[]{root, 0});
        visited.put(root, Boolean.TRUE);
        while (!stack.isEmpty()) {
            Object[] frame = stack.peek();
            Tensor t = (Tensor) frame[0];
            Node fn = t.gradFn();
            int next = (Integer) frame[1];
            Tensor[] inputs = fn == null ? new Tensor[0] : fn.inputs();
            while (next < inputs.length && (inputs[next] == null || visited.containsKey(inputs[next]))) next++;
            if (next < inputs.length) {
                frame[1] = next + 1;
                visited.put(inputs[next], Boolean.TRUE);
                stack.push(new Object[]{inputs[next], 0});
            } else {
                stack.pop();
                order.add(t);
            }
        }
        return order;
    }
}
