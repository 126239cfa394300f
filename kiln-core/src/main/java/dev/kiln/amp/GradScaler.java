package dev.kiln.amp;

import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.ParamGroup;

/**
 * Dynamic loss scaling for float16 training, as PyTorch's {@code torch.amp.GradScaler}. float16 gradients
 * underflow below 6e-8, so the loss is multiplied by a large scale before backward and the gradients divided by it
 * before the step. When the scale is too large some gradient overflows to inf or NaN: that step is skipped and the
 * scale backs off; after {@code growthInterval} clean steps in a row it grows again.
 * <pre>{@code
 * scaler.scale(loss).backward();
 * scaler.step(optimizer);   // unscales, checks, steps unless a gradient is not finite
 * scaler.update();
 * }</pre>
 * The check runs on the device: every gradient is unscaled in place and contributes {@code sum(g * 0)} (0 when all
 * its elements are finite, NaN otherwise) to one scalar, so the only host read per step is that scalar, in
 * {@link #step}, as PyTorch's {@code found_inf.item()}.
 */
public final class GradScaler {
    private final double growthFactor, backoffFactor;
    private final int growthInterval;
    private double scale;
    private int cleanSteps;

    /** Per step: the scalar of the non-finite check after {@link #unscale}, and whether the step was skipped. */
    private Tensor nonFinite;
    private boolean unscaled;
    private Boolean foundInf;

    /** PyTorch's defaults: scale 65536, growth 2, backoff 0.5, growth interval 2000. */
    public GradScaler() { this(65536.0, 2.0, 0.5, 2000); }

    public GradScaler(double initScale, double growthFactor, double backoffFactor, int growthInterval) {
        if (!(initScale > 0) || Double.isInfinite(initScale)) throw new IllegalArgumentException("GradScaler: initial scale must be positive, got " + initScale);
        if (!(growthFactor > 1)) throw new IllegalArgumentException("GradScaler: growth factor must be > 1, got " + growthFactor);
        if (!(backoffFactor > 0 && backoffFactor < 1)) throw new IllegalArgumentException("GradScaler: backoff factor must be in (0, 1), got " + backoffFactor);
        if (growthInterval < 1) throw new IllegalArgumentException("GradScaler: growth interval must be >= 1, got " + growthInterval);
        this.scale = initScale;
        this.growthFactor = growthFactor;
        this.backoffFactor = backoffFactor;
        this.growthInterval = growthInterval;
    }

    /** The current scale. */
    public double scale() { return scale; }

    /** Clean steps since the scale last changed: with {@link #scale()}, the state a checkpoint saves. */
    public int cleanSteps() { return cleanSteps; }

    /** Puts the scaler back to a saved {@link #scale()} and {@link #cleanSteps()} (resuming a run), between steps. */
    public void restore(double scale, int cleanSteps) {
        if (!(scale > 0) || Double.isInfinite(scale)) throw new IllegalArgumentException("GradScaler.restore: scale must be positive, got " + scale);
        if (cleanSteps < 0 || cleanSteps >= growthInterval) {
            throw new IllegalArgumentException("GradScaler.restore: clean steps must be in [0, " + growthInterval + "), got " + cleanSteps);
        }
        if (foundInf != null || unscaled) throw new IllegalStateException("GradScaler.restore: a step is in progress");
        this.scale = scale;
        this.cleanSteps = cleanSteps;
    }

    /** loss times the scale (differentiable: backward then yields scaled gradients). */
    public Tensor scale(Tensor loss) { return loss.mul(scale); }

    /**
     * Divides every gradient of the optimizer's parameters by the scale, in place, and queues the non-finite check.
     * Call it before clipping gradients; {@link #step} calls it when it has not been called this step.
     */
    public void unscale(Optimizer optimizer) {
        if (unscaled) throw new IllegalStateException("GradScaler.unscale: already called since the last update()");
        double inv = 1.0 / scale;
        try (GradMode ignored = GradMode.disabled()) {
            Tensor acc = null;
            for (ParamGroup group : optimizer.groups()) {
                for (Tensor p : group.params()) {
                    Tensor g = p.grad();
                    if (g == null) continue;
                    g.copyFrom(g.mul(inv));
                    // finite * 0 = 0, inf * 0 = NaN, NaN * 0 = NaN: the sum is 0 exactly when every element is finite
                    Tensor bad = g.mul(0.0).sum();
                    acc = acc == null ? bad : acc.add(bad.to(acc.dtype()));
                }
            }
            nonFinite = acc;
        }
        unscaled = true;
    }

    /**
     * Unscales (unless done), then runs {@code optimizer.step()} when every gradient is finite. Returns whether it
     * stepped. Reads one scalar from the device.
     */
    public boolean step(Optimizer optimizer) {
        if (foundInf != null) throw new IllegalStateException("GradScaler.step: already called since the last update()");
        if (!unscaled) unscale(optimizer);
        foundInf = nonFinite != null && Double.isNaN(nonFinite.item());
        if (!foundInf) optimizer.step();
        return !foundInf;
    }

    /** Adjusts the scale after a step: back off after an overflow, grow after growthInterval clean steps. */
    public void update() {
        if (foundInf == null) throw new IllegalStateException("GradScaler.update: call step(optimizer) first");
        if (foundInf) {
            scale *= backoffFactor;
            cleanSteps = 0;
        } else if (++cleanSteps == growthInterval) {
            scale *= growthFactor;
            cleanSteps = 0;
        }
        nonFinite = null;
        unscaled = false;
        foundInf = null;
    }
}
