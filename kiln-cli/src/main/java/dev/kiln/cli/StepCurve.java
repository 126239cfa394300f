package dev.kiln.cli;

import java.util.ArrayList;
import java.util.List;

/**
 * The within-epoch curve of a run, so that even one epoch draws a line: at each step whose loss the trainer read back,
 * the position in epochs (epoch 1's step 10 of 100 is 0.1), the loss smoothed by an exponential moving average
 * (debiased, as TensorBoard smooths) and the throughput since the previous point.
 */
final class StepCurve {
    /** The weight of the past in the moving average: TensorBoard's smoothing slider, for a point every ~20 steps. */
    static final double SMOOTHING = 0.7;

    /** One point: x in epochs, the raw and smoothed loss, samples (or tokens) per second since the last point. */
    record Point(double epochs, double loss, double smoothedLoss, double perSecond) {}

    private final List<Point> points = new ArrayList<>();
    private final double unitsPerSample; // 1 for images, the context for a language model's chunks
    private int epochsDone;
    private double ema, weight;             // the moving average and its total weight, for the debiasing
    private long lastSamples;
    private double lastSeconds;

    StepCurve(double unitsPerSample) { this.unitsPerSample = unitsPerSample; }

    /** A step ended (the listener's arguments); steps without a loss only advance the clock. */
    void step(int step, int batches, double loss, long samples, double seconds) {
        if (step == 1) { // a new epoch's clock and sample count start at zero
            lastSamples = 0;
            lastSeconds = 0;
        }
        if (Double.isFinite(loss)) {
            ema = SMOOTHING * ema + (1 - SMOOTHING) * loss;
            weight = SMOOTHING * weight + (1 - SMOOTHING);
            double dt = seconds - lastSeconds;
            double rate = dt > 0 ? (samples - lastSamples) * unitsPerSample / dt : Double.NaN;
            points.add(new Point(epochsDone + step / (double) batches, loss, ema / weight, rate));
            lastSamples = samples;
            lastSeconds = seconds;
        }
        if (step == batches) epochsDone++;
    }

    List<Point> points() { return List.copyOf(points); }
}
