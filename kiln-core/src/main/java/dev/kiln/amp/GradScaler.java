package dev.kiln.amp;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.ParamGroup;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
 * The scale, the overflow flag and the counts are float64 scalars on the gradients' device (CPU tensors on the CPU), and
 * the verdict is made there: unscaling sets the flag ({@link dev.kiln.backend.Backend#ampUnscale}), the optimizer's
 * kernels skip the step when it is set ({@link Optimizer#step(Tensor)}) and the scale update runs on the device
 * ({@link dev.kiln.backend.Backend#ampUpdateScale}). So {@link #stepCapturable} and {@link #update} read nothing on the
 * host and a whole fp16 step captures as one CUDA graph; {@link #step} reads the flag to say whether it stepped.
 */
public final class GradScaler {
    private final double growthFactor, backoffFactor;
    private final int growthInterval;
    /** The state's values before it is placed on a device (construction, or restore before the first step). */
    private double hostScale;
    private int hostCleanSteps;
    /** One-element float64 tensors on the gradients' device, made at the first step; null before. */
    private Tensor scale, cleanSteps, skippedSteps, foundInf;
    private boolean unscaled, stepped;

    /** PyTorch's defaults: scale 65536, growth 2, backoff 0.5, growth interval 2000. */
    public GradScaler() { this(65536.0, 2.0, 0.5, 2000); }

    public GradScaler(double initScale, double growthFactor, double backoffFactor, int growthInterval) {
        if (!(initScale > 0) || Double.isInfinite(initScale)) throw new IllegalArgumentException("GradScaler: initial scale must be positive, got " + initScale);
        if (!(growthFactor > 1)) throw new IllegalArgumentException("GradScaler: growth factor must be > 1, got " + growthFactor);
        if (!(backoffFactor > 0 && backoffFactor < 1)) throw new IllegalArgumentException("GradScaler: backoff factor must be in (0, 1), got " + backoffFactor);
        if (growthInterval < 1) throw new IllegalArgumentException("GradScaler: growth interval must be >= 1, got " + growthInterval);
        this.hostScale = initScale;
        this.growthFactor = growthFactor;
        this.backoffFactor = backoffFactor;
        this.growthInterval = growthInterval;
    }

    /** The current scale (read from the device: call it between steps). */
    public double scale() { return scale == null ? hostScale : scale.item(); }

    /** Clean steps since the scale last changed: with {@link #scale()}, the state a checkpoint saves (read from the device). */
    public int cleanSteps() { return cleanSteps == null ? hostCleanSteps : (int) cleanSteps.item(); }

    /** Steps skipped because a gradient was not finite, since this scaler was made (read from the device). */
    public long skippedSteps() { return skippedSteps == null ? 0 : (long) skippedSteps.item(); }

    /** Puts the scaler back to a saved {@link #scale()} and {@link #cleanSteps()} (resuming a run), between steps. */
    public void restore(double scale, int cleanSteps) {
        if (!(scale > 0) || Double.isInfinite(scale)) throw new IllegalArgumentException("GradScaler.restore: scale must be positive, got " + scale);
        if (cleanSteps < 0 || cleanSteps >= growthInterval) {
            throw new IllegalArgumentException("GradScaler.restore: clean steps must be in [0, " + growthInterval + "), got " + cleanSteps);
        }
        if (stepped || unscaled) throw new IllegalStateException("GradScaler.restore: a step is in progress");
        if (this.scale == null) {
            hostScale = scale;
            hostCleanSteps = cleanSteps;
        } else {
            set(this.scale, scale);
            set(this.cleanSteps, cleanSteps);
        }
    }

    /** loss times the scale (differentiable: backward then yields scaled gradients); a 16-bit loss is scaled in float32. */
    public Tensor scale(Tensor loss) {
        placeOn(loss.device());
        return loss.mul(scale.to(loss.dtype().accumulation()));
    }

    /**
     * Divides every gradient of the optimizer's parameters by the scale, in place, and sets the overflow flag on the
     * device when an unscaled element is not finite. Call it before clipping gradients; {@link #step} calls it when it
     * has not been called this step.
     */
    public void unscale(Optimizer optimizer) {
        if (unscaled) throw new IllegalStateException("GradScaler.unscale: already called since the last update()");
        // contiguous float32/float64 gradients go to the backend's multi-tensor kernel, one call per dtype; others compose
        Map<DType, List<Tensor>> fused = new LinkedHashMap<>();
        List<Tensor> composed = new ArrayList<>();
        Device device = null;
        for (ParamGroup group : optimizer.groups()) {
            for (Tensor p : group.params()) {
                Tensor g = p.grad();
                if (g == null) continue;
                if (device == null) device = g.device();
                if (!g.device().equals(device)) throw new IllegalArgumentException("GradScaler: gradients on " + device + " and " + g.device());
                // the fused unscale runs flat over each gradient: contiguous or channels-last (a channels-last filter's)
                boolean fusable = (g.isContiguous() || g.isChannelsLast()) && (g.dtype() == DType.FLOAT32 || g.dtype() == DType.FLOAT64);
                if (fusable) fused.computeIfAbsent(g.dtype(), k -> new ArrayList<>()).add(g);
                else composed.add(g);
            }
        }
        placeOn(device != null ? device : scale != null ? scale.device() : Device.CPU);
        for (List<Tensor> grads : fused.values()) Backends.get(device).ampUnscale(grads, scale, foundInf);
        if (!composed.isEmpty()) {
            try (GradMode ignored = GradMode.disabled()) {
                Tensor inv = scale.rdiv(1.0);
                for (Tensor g : composed) {
                    g.copyFrom(g.mul(inv));   // in float64, rounded once
                    // finite * 0 = 0, inf * 0 = NaN, NaN * 0 = NaN: the sum is NaN exactly when an element is not finite
                    Tensor sum = g.mul(0.0).sum();
                    foundInf.copyFrom(foundInf.maximum(sum.ne(sum).to(DType.FLOAT64)));
                }
            }
        }
        unscaled = true;
    }

    /**
     * Unscales (unless done), then runs the optimizer's step, which the device leaves out when a gradient was not
     * finite. Reads nothing on the host, so it can be part of a step captured as a CUDA graph.
     */
    public void stepCapturable(Optimizer optimizer) {
        if (stepped) throw new IllegalStateException("GradScaler.step: already called since the last update()");
        if (!unscaled) unscale(optimizer);
        optimizer.step(foundInf);
        stepped = true;
    }

    /** {@link #stepCapturable}, then reads the overflow flag: whether the optimizer stepped. */
    public boolean step(Optimizer optimizer) {
        stepCapturable(optimizer);
        return foundInf.item() == 0;
    }

    /** Adjusts the scale after a step, on the device: back off after an overflow, grow after growthInterval clean steps. */
    public void update() {
        if (!stepped) throw new IllegalStateException("GradScaler.update: call step(optimizer) first");
        Backends.get(scale.device()).ampUpdateScale(scale, cleanSteps, skippedSteps, foundInf, growthFactor, backoffFactor, growthInterval);
        unscaled = false;
        stepped = false;
    }

    /** Makes the state on {@code device}, or moves it there (outside a step captured as a graph: this reads values). */
    private void placeOn(Device device) {
        if (scale != null && scale.device().equals(device)) return;
        double s = scale(), c = cleanSteps(), k = skippedSteps();
        for (Tensor t : new Tensor[]{scale, cleanSteps, skippedSteps, foundInf}) if (t != null) t.close();
        scale = scalar(s, device);
        cleanSteps = scalar(c, device);
        skippedSteps = scalar(k, device);
        foundInf = scalar(0, device);
    }

    private static Tensor scalar(double v, Device device) { return Tensor.scalar(v, DType.FLOAT64, device).keep(); }

    private static void set(Tensor t, double v) { t.copyFrom(Tensor.scalar(v, DType.FLOAT64, Device.CPU)); }
}
