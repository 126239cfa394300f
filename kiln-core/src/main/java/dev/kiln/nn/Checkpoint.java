package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.Autograd;
import dev.kiln.autograd.GradMode;

import java.util.ArrayList;
import java.util.List;

/**
 * Gradient checkpointing: trades compute for memory. The forward pass runs the inner layer (or, through
 * {@link #apply}, any function of several tensors) under no-grad, keeping
 * only its input and output, and its intermediates are freed at once (a nested {@link MemoryScope}). Backward runs
 * the inner forward again with grad on, from a detached copy of the input, and backpropagates the output's gradient
 * through it: parameter gradients accumulate as usual, the input's gradient is handed on. Peak activation memory is
 * then the checkpoint boundaries plus one segment's intermediates.
 *
 * <p>Random ops replay identically: the forward pass records the keys its random ops drew (from any
 * {@link Generator}) on a {@link Generator.KeyTape} and the recomputation replays them, so dropout draws the same
 * mask and the generators advance once, as without checkpointing. Autocast is replayed as the forward found it.
 * Modules that update state in forward (batch norm's running statistics) update it twice, as in PyTorch.
 */
public final class Checkpoint extends Layer implements Forward {
    private final Layer inner;
    private final Forward innerForward;

    /** Checkpoints a one-input layer; for a forward pass with several inputs see {@link #apply}. */
    public <M extends Layer & Forward> Checkpoint(M inner) {
        this.inner = registerLayer("inner", inner);
        this.innerForward = inner;
    }

    @Override public Tensor forward(Tensor x) { return apply(inner, in -> innerForward.forward(in[0]), x); }

    /** A computation on several tensors, such as {@code in -> block.forward(in[0], in[1])}. */
    @FunctionalInterface
    public interface Function {
        /** The output for these inputs, in the order given to {@link #apply}. */
        Tensor apply(Tensor... inputs);
    }

    /**
     * Runs {@code fn} on the inputs checkpointed (as PyTorch's {@code torch.utils.checkpoint.checkpoint(fn, *args)}):
     * under no-grad now and again, with grad on, in backward. {@code owner} is the layer whose parameters fn uses
     * (null for none): they get their gradients from the recomputation. Inputs that need no gradient (a mask, ids)
     * are passed as they are.
     * <pre>{@code
     * Tensor y = Checkpoint.apply(block, in -> block.forward(in[0], in[1]), x, mask);
     * }</pre>
     */
    public static Tensor apply(Layer owner, Function fn, Tensor... inputs) {
        List<Tensor> params = new ArrayList<>();
        if (owner != null) for (Tensor p : owner.parameters()) if (p.requiresGrad()) params.add(p);
        boolean anyInputNeedsGrad = false;
        for (Tensor x : inputs) anyInputNeedsGrad |= x.requiresGrad();
        if (!GradMode.isEnabled() || (!anyInputNeedsGrad && params.isEmpty())) return fn.apply(inputs.clone());

        List<Long> keys;
        Tensor out;
        try (GradMode ng = GradMode.disabled(); Generator.KeyTape tape = Generator.recordKeys()) {
            out = keepFromNestedScope(() -> fn.apply(inputs.clone()));
            keys = tape.keys();
        }
        int n = inputs.length;
        Tensor[] saved = new Tensor[n];
        boolean[] needsGrad = new boolean[n];
        for (int i = 0; i < n; i++) {
            saved[i] = inputs[i].detach();
            needsGrad[i] = inputs[i].requiresGrad();
        }
        dev.kiln.DType autocast = Autocast.dtype();
        Tensor[] nodeInputs = new Tensor[n + params.size()];
        System.arraycopy(inputs, 0, nodeInputs, 0, n);
        for (int i = 0; i < params.size(); i++) nodeInputs[n + i] = params.get(i);
        // the parameters are inputs so the node is recorded even when no input needs a gradient; their gradients
        // reach them by the inner backward, so this node returns null for them
        return Autograd.record("checkpoint", out, g -> {
            Tensor[] grads = new Tensor[nodeInputs.length];
            Tensor[] inputGrads = recomputeInNestedScope(fn, saved, needsGrad, keys, autocast, g);
            System.arraycopy(inputGrads, 0, grads, 0, n);
            return grads;
        }, nodeInputs);
    }

    /** {@link #recompute} in a scope of its own: only the input gradients outlive it. */
    private static Tensor[] recomputeInNestedScope(Function fn, Tensor[] saved, boolean[] needsGrad, List<Long> keys,
                                                   dev.kiln.DType autocast, Tensor gradOut) {
        Tensor[] grads;
        try (MemoryScope s = MemoryScope.open()) {
            grads = recompute(fn, saved, needsGrad, keys, autocast, gradOut);
            for (Tensor t : grads) if (t != null) MemoryScope.promote(t);
        }
        return grads;
    }

    /** Re-runs fn with grad on and backpropagates {@code gradOut}; returns the inputs' gradients (null where none). */
    private static Tensor[] recompute(Function fn, Tensor[] saved, boolean[] needsGrad, List<Long> keys, dev.kiln.DType autocast, Tensor gradOut) {
        Tensor[] xs = new Tensor[saved.length];
        for (int i = 0; i < xs.length; i++) xs[i] = needsGrad[i] ? saved[i].detach().requiresGrad(true) : saved[i];
        Tensor y;
        try (GradMode on = GradMode.enabled(); Generator.KeyTape tape = Generator.replayKeys(keys);
             Autocast ac = autocast == null ? Autocast.disabled() : Autocast.enable(autocast)) {
            y = fn.apply(xs.clone());
        }
        y.backward(gradOut.to(y.dtype()), false);
        Tensor[] grads = new Tensor[xs.length];
        for (int i = 0; i < xs.length; i++) if (needsGrad[i]) grads[i] = xs[i].grad();
        return grads;
    }

    /** Runs body in a scope of its own and frees all it made except its result, which joins the enclosing scope. */
    private static Tensor keepFromNestedScope(java.util.function.Supplier<Tensor> body) {
        Tensor result;
        try (MemoryScope s = MemoryScope.open()) {
            result = body.get();
            if (result != null) result.keep();
        }
        if (result != null) MemoryScope.track(result.storage());
        return result;
    }

    @Override protected String extraRepr() { return inner.getClass().getSimpleName(); }
}
