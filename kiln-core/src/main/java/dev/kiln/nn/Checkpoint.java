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
 * Gradient checkpointing: trades compute for memory. The forward pass runs the inner module under no-grad, keeping
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
public final class Checkpoint extends Layer {
    private final Layer inner;

    public Checkpoint(Layer inner) {
        this.inner = inner;
        registerLayer("inner", inner);
    }

    @Override public Tensor forward(Tensor x) {
        List<Tensor> params = new ArrayList<>();
        for (Tensor p : inner.parameters()) if (p.requiresGrad()) params.add(p);
        if (!GradMode.isEnabled() || (!x.requiresGrad() && params.isEmpty())) return inner.forward(x);

        List<Long> keys;
        Tensor out;
        try (GradMode ng = GradMode.disabled(); Generator.KeyTape tape = Generator.recordKeys()) {
            out = keepFromNestedScope(() -> inner.forward(x));
            keys = tape.keys();
        }
        Tensor saved = x.detach();
        boolean inputNeedsGrad = x.requiresGrad();
        dev.kiln.DType autocast = Autocast.dtype();
        Tensor[] inputs = new Tensor[1 + params.size()];
        inputs[0] = x;
        for (int i = 0; i < params.size(); i++) inputs[1 + i] = params.get(i);
        // the parameters are inputs so the node is recorded even when x needs no gradient; their gradients
        // reach them by the inner backward, so this node returns null for them
        return Autograd.record("checkpoint", out, g -> {
            Tensor[] grads = new Tensor[inputs.length];
            grads[0] = keepFromNestedScope(() -> recompute(saved, inputNeedsGrad, keys, autocast, g));
            return grads;
        }, inputs);
    }

    /** Re-runs the inner forward with grad on and backpropagates {@code gradOut}; returns the input's gradient. */
    private Tensor recompute(Tensor saved, boolean inputNeedsGrad, List<Long> keys, dev.kiln.DType autocast, Tensor gradOut) {
        Tensor x = saved.detach().requiresGrad(inputNeedsGrad);
        Tensor y;
        try (GradMode on = GradMode.enabled(); Generator.KeyTape tape = Generator.replayKeys(keys);
             Autocast ac = autocast == null ? Autocast.disabled() : Autocast.enable(autocast)) {
            y = inner.forward(x);
        }
        y.backward(gradOut.to(y.dtype()), false);
        return inputNeedsGrad ? x.grad() : null;
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
