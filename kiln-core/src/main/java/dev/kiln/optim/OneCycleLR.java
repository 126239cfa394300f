package dev.kiln.optim;

/**
 * The one-cycle policy (PyTorch's OneCycleLR, two phases, cosine annealing): from maxLr/divFactor up to maxLr over
 * the first pctStart of the steps, then down to initial/finalDivFactor. Step it once per batch. PyTorch also
 * cycles momentum; this one leaves momentum alone.
 */
public final class OneCycleLR extends LRScheduler {
    private final double maxLr, initialLr, minLr, pctStart;
    private final int totalSteps;

    public OneCycleLR(Optimizer optimizer, double maxLr, int totalSteps) { this(optimizer, maxLr, totalSteps, 0.3, 25, 1e4); }

    public OneCycleLR(Optimizer optimizer, double maxLr, int totalSteps, double pctStart, double divFactor, double finalDivFactor) {
        super(optimizer);
        if (totalSteps < 2) throw new IllegalArgumentException("OneCycleLR: totalSteps must be >= 2, got " + totalSteps);
        if (!(pctStart > 0 && pctStart < 1)) throw new IllegalArgumentException("OneCycleLR: pctStart must be in (0, 1), got " + pctStart);
        this.maxLr = maxLr;
        this.initialLr = maxLr / divFactor;
        this.minLr = initialLr / finalDivFactor;
        this.totalSteps = totalSteps;
        this.pctStart = pctStart;
        start();
    }

    @Override protected double lrAt(int t, double base) {
        if (t >= totalSteps) {
            throw new IllegalStateException("OneCycleLR: stepped " + t + " times but was built for " + totalSteps + " steps");
        }
        return at(t, totalSteps, pctStart, maxLr, initialLr, minLr);
    }

    /**
     * The rate at step t (0-based) of totalSteps with PyTorch's defaults (warm-up over the first 30% from maxLr/25, then
     * down to maxLr/25/1e4): kiln train's {@code --lr-schedule onecycle}.
     */
    public static double at(double maxLr, long t, long totalSteps) {
        return at(t, totalSteps, 0.3, maxLr, maxLr / 25, maxLr / 25 / 1e4);
    }

    private static double at(long t, long totalSteps, double pctStart, double maxLr, double initialLr, double minLr) {
        double peakStep = pctStart * totalSteps - 1;
        if (t <= peakStep) return peakStep <= 0 ? maxLr : anneal(initialLr, maxLr, t / peakStep);
        return anneal(maxLr, minLr, (t - peakStep) / (totalSteps - 1 - peakStep));
    }

    private static double anneal(double start, double end, double pct) {
        return end + (start - end) / 2 * (Math.cos(Math.PI * pct) + 1);
    }
}
