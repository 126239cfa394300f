package dev.kiln.optim;

/** lr = base · gamma^floor(t / stepSize). */
public final class StepLR extends LRScheduler {
    private final int stepSize;
    private final double gamma;

    public StepLR(Optimizer optimizer, int stepSize, double gamma) {
        super(optimizer);
        if (stepSize < 1) throw new IllegalArgumentException("StepLR: stepSize must be >= 1, got " + stepSize);
        this.stepSize = stepSize;
        this.gamma = gamma;
        start();
    }

    @Override protected double lrAt(int t, double base) { return base * Math.pow(gamma, t / stepSize); }
}
