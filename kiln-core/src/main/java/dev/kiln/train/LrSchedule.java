package dev.kiln.train;

import dev.kiln.optim.OneCycleLR;
import dev.kiln.optim.Optimizer;

import java.util.Locale;

/**
 * How {@code kiln train} moves the learning rate through a run: held, annealed along a half cosine per epoch, or the
 * one-cycle policy per step. A CUDA-graphed step of kiln train's optimizers (fused kernels) reads the rate at each
 * replay, so a new rate needs no new capture.
 */
public enum LrSchedule {
    /** The same rate every step. */
    CONSTANT,
    /** {@code lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2} for epoch 1..epochs, the same for each step of an epoch. */
    COSINE,
    /**
     * Per step, PyTorch's OneCycleLR with its defaults: up from lr/25 over the first 30% of the run's steps, then down
     * to lr/25/1e4 along a half cosine ({@link OneCycleLR#at}).
     */
    ONECYCLE;

    /** The rate of step {@code step} (0-based) of {@code steps} in epoch {@code epoch} (1-based) of {@code epochs}. */
    public double lr(double base, int epoch, int epochs, int step, int steps) {
        return switch (this) {
            case CONSTANT -> base;
            case COSINE -> base * 0.5 * (1 + Math.cos(Math.PI * (epoch - 1) / epochs));
            case ONECYCLE -> OneCycleLR.at(base, (long) (epoch - 1) * steps + step, (long) epochs * steps);
        };
    }

    /**
     * Sets the rate of the epoch's step {@code from} now and, when the rate moves within an epoch, of each next step
     * after each step (before {@code then}, which may be null).
     */
    Trainer.StepHook apply(Optimizer opt, double base, int epoch, int epochs, int from, int steps, Trainer.StepHook then) {
        opt.setLr(lr(base, epoch, epochs, from, steps));
        if (this != ONECYCLE) return then;
        return (step, lossSum, samples) -> {
            if (step < steps) opt.setLr(lr(base, epoch, epochs, step, steps));
            if (then != null) then.after(step, lossSum, samples);
        };
    }

    public String cliName() { return name().toLowerCase(Locale.ROOT); }

    public static LrSchedule parse(String s) {
        for (LrSchedule l : values()) if (l.cliName().equalsIgnoreCase(s)) return l;
        throw new IllegalArgumentException("unknown learning-rate schedule '" + s + "' (choose constant, cosine or onecycle)");
    }
}
