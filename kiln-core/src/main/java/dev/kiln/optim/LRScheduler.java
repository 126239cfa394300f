package dev.kiln.optim;

/**
 * Sets the optimizer's learning rates from a formula of the step count, as PyTorch's schedulers (closed forms).
 * Construction applies step 0; each {@link #step()} advances by one (per epoch or per batch, as the caller decides).
 */
public abstract sealed class LRScheduler permits StepLR, CosineAnnealingLR, LinearWarmup, OneCycleLR {
    private final Optimizer optimizer;
    private final double[] baseLrs;
    private int stepCount;

    protected LRScheduler(Optimizer optimizer) {
        this.optimizer = optimizer;
        this.baseLrs = optimizer.groups().stream().mapToDouble(ParamGroup::lr).toArray();
    }

    /** The learning rate at step t for a group whose initial rate was base. */
    protected abstract double lrAt(int t, double base);

    /** Subclasses call this at the end of their constructor, once their fields are set. */
    protected final void start() { apply(); }

    public final void step() {
        stepCount++;
        apply();
    }

    public final int stepCount() { return stepCount; }

    /** The current learning rate of each group. */
    public final double[] lrs() { return optimizer.groups().stream().mapToDouble(ParamGroup::lr).toArray(); }

    private void apply() {
        for (int i = 0; i < baseLrs.length; i++) optimizer.groups().get(i).setLr(lrAt(stepCount, baseLrs[i]));
    }
}
