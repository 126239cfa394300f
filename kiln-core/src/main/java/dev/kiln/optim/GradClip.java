package dev.kiln.optim;

import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;

/** Gradient clipping as {@code torch.nn.utils.clip_grad_norm_}. */
public final class GradClip {
    private GradClip() {}

    /**
     * Scales all gradients by min(1, maxNorm / (total + 1e-6)), where total is the L2 norm of all gradients taken
     * together. Returns the total norm before clipping as a scalar tensor; it is computed on the device and nothing
     * waits for it unless the caller reads it. Null when no parameter has a gradient.
     */
    public static Tensor clipGradNorm(Iterable<Tensor> params, double maxNorm) {
        if (!(maxNorm > 0)) throw new IllegalArgumentException("clipGradNorm: maxNorm must be > 0, got " + maxNorm);
        try (GradMode ignored = GradMode.disabled()) {
            Tensor sumSq = null;
            for (Tensor p : params) {
                Tensor g = p.grad();
                if (g == null) continue;
                Tensor s = g.mul(g).sum();
                sumSq = sumSq == null ? s : sumSq.add(s.to(sumSq.dtype()));
            }
            if (sumSq == null) return null;
            Tensor total = sumSq.sqrt();
            Tensor coef = total.add(1e-6).rdiv(maxNorm).clamp(Double.NEGATIVE_INFINITY, 1);
            for (Tensor p : params) {
                Tensor g = p.grad();
                if (g != null) g.copyFrom(g.mul(coef.to(g.dtype())));
            }
            return total;
        }
    }
}
