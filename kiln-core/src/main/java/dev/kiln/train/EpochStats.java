package dev.kiln.train;

/** One epoch's figures: mean training loss, test loss and accuracy, training throughput and wall time. */
public record EpochStats(int epoch, double trainLoss, double testLoss, double testAccuracy, double trainSamplesPerSecond, double trainSeconds) {
    public static final String CSV_HEADER = "epoch,train_loss,test_loss,test_acc,train_samples_per_s,train_seconds";

    public String csv() {
        return String.format(java.util.Locale.ROOT, "%d,%.6f,%.6f,%.6f,%.1f,%.3f", epoch, trainLoss, testLoss, testAccuracy, trainSamplesPerSecond, trainSeconds);
    }
}
