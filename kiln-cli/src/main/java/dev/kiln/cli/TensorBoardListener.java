package dev.kiln.cli;

import dev.kiln.tensorboard.SummaryWriter;
import dev.kiln.train.EpochStats;
import dev.kiln.train.TrainListener;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code kiln train --tensorboard DIR}: forwards everything to the progress listener and writes TensorBoard scalars
 * beside it: the step loss when the trainer reads it back (x: samples seen), and per epoch the training loss, the
 * validation/test loss and accuracy and the throughput (x: epoch). Flushed after each epoch, so TensorBoard shows a
 * running job.
 */
final class TensorBoardListener implements TrainListener, AutoCloseable {
    private final TrainListener inner;
    private final SummaryWriter writer;
    private long samplesBefore; // samples of the epochs already ended, so the step curve's x keeps growing

    TensorBoardListener(TrainListener inner, Path dir) {
        this.inner = inner;
        this.writer = new SummaryWriter(dir);
    }

    @Override public void epochStarted(String label, int batches) { inner.epochStarted(label, batches); }

    @Override public void stepEnded(int step, int batches, double loss, long samples, double seconds) {
        inner.stepEnded(step, batches, loss, samples, seconds);
        if (Double.isFinite(loss)) writer.addScalar("train/step_loss", loss, samplesBefore + samples);
        if (step == batches) samplesBefore += samples;
    }

    @Override public void epochTrainingEnded() { inner.epochTrainingEnded(); }

    @Override public void epochEnded(EpochStats s, List<EpochStats> history, Path outDir) {
        inner.epochEnded(s, history, outDir);
        writer.addScalar("train/loss", s.trainLoss(), s.epoch());
        writer.addScalar("eval/loss", s.testLoss(), s.epoch());
        writer.addScalar("eval/accuracy", s.testAccuracy(), s.epoch());
        writer.addScalar("train/samples_per_s", s.trainSamplesPerSecond(), s.epoch());
        writer.flush();
    }

    /** Step losses are written only when the trainer reads them back, which it does for a listener that asks. */
    @Override public boolean wantsLoss() { return true; }

    @Override public void close() { writer.close(); }
}
