package dev.kiln.backend;

/**
 * How a batch norm runs: on the batch's statistics (training, moving the running ones by {@code momentum}) or on
 * the running ones; {@code eps} added to the variance; {@code relu} applied last (after the residual add, if any).
 */
public record BatchNormParams(boolean training, double momentum, double eps, boolean relu) {
    public BatchNormParams {
        if (!(eps > 0)) throw new IllegalArgumentException("batch_norm: eps must be > 0, got " + eps);
        if (!(momentum >= 0 && momentum <= 1)) throw new IllegalArgumentException("batch_norm: momentum must be in [0, 1], got " + momentum);
    }
}
