package dev.kiln;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * Where a tensor keeps its gradient and gradient hooks: made on first use, so the many intermediate tensors of a
 * step carry one null field instead of five. {@link Tensor} exposes it; the accumulation rule lives here.
 */
final class GradSlot {
    Tensor grad;
    boolean ownsGrad;                 // grad was made by accumulate, so clear may free it
    Tensor buffer;                    // where a backward writes a leaf's gradient when it starts from none, or null
    List<UnaryOperator<Tensor>> hooks;
    List<Consumer<Tensor>> postAccumulateHooks;

    void addHook(UnaryOperator<Tensor> hook) {
        if (hooks == null) hooks = new ArrayList<>();
        hooks.add(hook);
    }

    void addPostAccumulateHook(Consumer<Tensor> hook) {
        if (postAccumulateHooks == null) postAccumulateHooks = new ArrayList<>();
        postAccumulateHooks.add(hook);
    }

    /** {@code grad += g} for {@code leaf}, then the post-accumulate hooks (see {@link Tensor#accumulateGrad}). */
    void accumulate(Tensor leaf, Tensor g, boolean unshared) {
        if (grad == null && buffer != null) {
            // a backward may have written g straight into the buffer already (Autograd.gradientDestination)
            if (g.storage() != buffer.storage() || g.offset() != buffer.offset() || !g.sameDenseLayout(buffer)) buffer.copyFrom(g);
            grad = buffer;
            ownsGrad = false;
        } else {
            if (g.dtype() != leaf.dtype()) g = g.to(leaf.dtype());
            // leaf gradients outlive the step's MemoryScope: the optimizer reads them after backward. The buffer is the
            // leaf's own, in its layout (the fused steps run flat over both): g itself only when the engine says nothing
            // else references its memory and g covers all of it so laid out, else a copy (g may go to several inputs)
            Tensor old = grad;
            boolean takeOver = unshared && g.sameDenseLayout(leaf) && g.offset() == 0 && g.storage().numel() == g.numel() && g.storage() != leaf.storage();
            Tensor sum = old == null ? (takeOver ? g : null) : old.add(g);
            grad = (sum != null && sum.sameDenseLayout(leaf) ? sum : leaf.emptyLike(leaf.dtype()).copyFrom(sum != null ? sum : g)).keep();
            if (old != null && ownsGrad) old.close();
            ownsGrad = true;
        }
        if (postAccumulateHooks != null) for (Consumer<Tensor> h : postAccumulateHooks) h.accept(grad);
    }

    /** Drops the gradient, returning its memory to the pool when it was this slot's own. */
    void clear() {
        if (grad != null && ownsGrad) grad.close();
        grad = null;
    }
}
