package dev.kiln.optim;

/**
 * Linear warm-up, PyTorch's LinearLR with end factor 1: lr = base · (startFactor + (1 - startFactor) · min(t, steps) / steps).
 */
public final class LinearWarmup extends LRScheduler {
    private final int steps;
    private final double startFactor;

    public LinearWarmup(Optimizer optimizer, int steps, double startFactor) {
        super(optimizer);
        if (steps < 1) throw new IllegalArgumentException("LinearWarmup: steps must be >= 1, got " + steps);
        if (!(startFactor > 0 && startFactor <= 1)) throw new IllegalArgumentException("LinearWarmup: startFactor must be in (0, 1], got " + startFactor);
        this.steps = steps;
        this.startFactor = startFactor;
        start();
    }

    @Override protected double lrAt(int t, double base) {
        return base * (startFactor + (1 - startFactor) * Math.min(t, steps) / steps);
    }
}
