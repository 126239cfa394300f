package dev.kiln.train;

import dev.kiln.Device;

import java.nio.file.Path;

/**
 * Everything one {@code kiln train} run needs. limit and testLimit of 0 mean the whole set. channelsLast: the model's
 * activations channels-last ({@link dev.kiln.nn.Model#channelsLast(boolean)}); a layout, so not kept for a resume.
 * augment: each training batch randomly cropped (padded by an eighth of the side) and mirrored, on the batch's device.
 */
public record TrainConfig(ModelZoo model, int epochs, int batchSize, OptimizerKind optimizer, double lr, long seed,
                          Device device, Path dataDir, Path outDir, int limit, int testLimit, Precision precision,
                          boolean cudaGraphs, LrSchedule schedule, boolean channelsLast, boolean augment) {
    /** A run without augmentation. */
    public TrainConfig(ModelZoo model, int epochs, int batchSize, OptimizerKind optimizer, double lr, long seed,
                       Device device, Path dataDir, Path outDir, int limit, int testLimit, Precision precision,
                       boolean cudaGraphs, LrSchedule schedule, boolean channelsLast) {
        this(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, outDir, limit, testLimit, precision, cudaGraphs, schedule, channelsLast, false);
    }

    /** A run with NCHW activations. */
    public TrainConfig(ModelZoo model, int epochs, int batchSize, OptimizerKind optimizer, double lr, long seed,
                       Device device, Path dataDir, Path outDir, int limit, int testLimit, Precision precision,
                       boolean cudaGraphs, LrSchedule schedule) {
        this(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, outDir, limit, testLimit, precision, cudaGraphs, schedule, false);
    }

    /** A run at a constant learning rate. */
    public TrainConfig(ModelZoo model, int epochs, int batchSize, OptimizerKind optimizer, double lr, long seed,
                       Device device, Path dataDir, Path outDir, int limit, int testLimit, Precision precision, boolean cudaGraphs) {
        this(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, outDir, limit, testLimit, precision, cudaGraphs, LrSchedule.CONSTANT);
    }

    /** A run without CUDA graphs. */
    public TrainConfig(ModelZoo model, int epochs, int batchSize, OptimizerKind optimizer, double lr, long seed,
                       Device device, Path dataDir, Path outDir, int limit, int testLimit, Precision precision) {
        this(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, outDir, limit, testLimit, precision, false);
    }

    /** A float32 run. */
    public TrainConfig(ModelZoo model, int epochs, int batchSize, OptimizerKind optimizer, double lr, long seed,
                       Device device, Path dataDir, Path outDir, int limit, int testLimit) {
        this(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, outDir, limit, testLimit, Precision.FP32);
    }

    /** The same run writing to {@code dir}. */
    public TrainConfig withOutDir(Path dir) {
        return new TrainConfig(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, dir, limit, testLimit, precision, cudaGraphs, schedule,
                channelsLast, augment);
    }

    /** The same run with activations channels-last or not (a layout: a resumed run may change it). */
    public TrainConfig withChannelsLast(boolean on) {
        return new TrainConfig(model, epochs, batchSize, optimizer, lr, seed, device, dataDir, outDir, limit, testLimit, precision, cudaGraphs, schedule,
                on, augment);
    }

    public TrainConfig {
        java.util.Objects.requireNonNull(precision, "precision");
        java.util.Objects.requireNonNull(schedule, "schedule");
        if (epochs < 1) throw new IllegalArgumentException("--epochs must be >= 1, got " + epochs);
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
        if (!(lr > 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("--lr must be a positive number, got " + lr);
        if (limit < 0) throw new IllegalArgumentException("--limit must be >= 0, got " + limit);
        if (testLimit < 0) throw new IllegalArgumentException("--test-limit must be >= 0, got " + testLimit);
        if (cudaGraphs && !device.isCuda()) throw new IllegalArgumentException("--cuda-graphs needs a CUDA device, got " + device);
    }
}
