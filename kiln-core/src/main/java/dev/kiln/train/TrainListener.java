package dev.kiln.train;

import dev.kiln.nn.Layer;
import dev.kiln.optim.Optimizer;

import java.nio.file.Path;
import java.util.List;

/**
 * What a training run reports as it goes: the command line's progress bar and chart are listeners, and so is
 * anything a library user wants to watch (logging, early stopping, a dashboard). Every method has an empty
 * default; they are called on the training thread, so a slow listener slows training.
 */
public interface TrainListener {
    /** The listener that reports nothing. */
    TrainListener NONE = new TrainListener() {};

    /**
     * The trainer was made for this model and optimizer: a listener that looks inside (weight histograms, the
     * learning rate) keeps them. Called once, before any epoch.
     */
    default void trainingStarted(Layer model, Optimizer optimizer) {}

    /** An epoch's training pass begins: {@code batches} steps, shown as {@code label}. */
    default void epochStarted(String label, int batches) {}

    /**
     * Step {@code step} (1-based) of the epoch ended. {@code loss} is the step's loss when the trainer read it back
     * (every few steps, so the loop does not wait for the device each step), otherwise NaN.
     */
    default void stepEnded(int step, int batches, double loss, long samples, double seconds) {}

    /** The epoch's training pass ended (before evaluation). */
    default void epochTrainingEnded() {}

    /** An epoch was trained, evaluated and checkpointed into {@code outDir}; {@code history} holds every epoch so far. */
    default void epochEnded(EpochStats stats, List<EpochStats> history, Path outDir) {}

    /** Whether {@link #stepEnded} wants the loss read back now and then (a read waits for the device). */
    default boolean wantsLoss() { return false; }
}
