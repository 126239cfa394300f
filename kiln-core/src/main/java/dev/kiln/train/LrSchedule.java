package dev.kiln.train;

import java.util.Locale;

/**
 * How {@code kiln train} moves the learning rate from epoch to epoch: held, or annealed along a half cosine from
 * the given rate towards 0 over the run (set once per epoch, so a CUDA-graphed step re-captures once an epoch).
 */
public enum LrSchedule {
    /** The same rate every epoch. */
    CONSTANT,
    /** {@code lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2} for epoch 1..epochs. */
    COSINE;

    /** The rate of {@code epoch} (1-based) of {@code epochs}. */
    public double lr(double base, int epoch, int epochs) {
        return switch (this) {
            case CONSTANT -> base;
            case COSINE -> base * 0.5 * (1 + Math.cos(Math.PI * (epoch - 1) / epochs));
        };
    }

    public String cliName() { return name().toLowerCase(Locale.ROOT); }

    public static LrSchedule parse(String s) {
        for (LrSchedule l : values()) if (l.cliName().equalsIgnoreCase(s)) return l;
        throw new IllegalArgumentException("unknown learning-rate schedule '" + s + "' (choose constant or cosine)");
    }
}
