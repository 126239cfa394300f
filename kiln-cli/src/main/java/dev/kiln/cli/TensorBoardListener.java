package dev.kiln.cli;

import dev.kiln.cuda.GpuMonitor;
import dev.kiln.cuda.GpuSample;
import dev.kiln.tensorboard.SummaryWriter;
import dev.kiln.train.EpochStats;
import dev.kiln.train.TrainListener;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code kiln train --tensorboard DIR}: forwards everything to the progress listener and writes TensorBoard scalars
 * beside it: the step loss when the trainer reads it back (x: samples seen), and per epoch the training loss, the
 * validation/test loss and accuracy and the throughput (x: epoch). Flushed after each epoch, so TensorBoard shows a
 * running job. With a GPU monitor, its samples go beside the step loss (same x).
 */
final class TensorBoardListener implements TrainListener, AutoCloseable {
    private final TrainListener inner;
    private final SummaryWriter writer;
    private final GpuMonitor gpu; // null: no GPU scalars
    private GpuSample lastGpu;    // the sample written last: each is written once
    private long samplesBefore; // samples of the epochs already ended, so the step curve's x keeps growing

    TensorBoardListener(TrainListener inner, Path dir) { this(inner, dir, null); }

    /** With the GPU monitor's samples as scalars gpu/util, gpu/mem_gib, gpu/power_w, gpu/temp_c, gpu/sm_clock_mhz. */
    TensorBoardListener(TrainListener inner, Path dir, GpuMonitor gpu) {
        this.inner = inner;
        this.writer = new SummaryWriter(dir);
        this.gpu = gpu;
    }

    @Override public void epochStarted(String label, int batches) { inner.epochStarted(label, batches); }

    @Override public void stepEnded(int step, int batches, double loss, long samples, double seconds) {
        inner.stepEnded(step, batches, loss, samples, seconds);
        if (Double.isFinite(loss)) writer.addScalar("train/step_loss", loss, samplesBefore + samples);
        GpuSample g = gpu == null ? null : gpu.latest();
        if (g != null && g != lastGpu) writeGpu(g, samplesBefore + samples);
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

    private void writeGpu(GpuSample g, long x) {
        lastGpu = g;
        if (g.utilizationPercent() >= 0) writer.addScalar("gpu/util", g.utilizationPercent(), x);
        writer.addScalar("gpu/mem_gib", g.usedBytes() / (1024.0 * 1024 * 1024), x);
        if (g.powerWatts() >= 0) writer.addScalar("gpu/power_w", g.powerWatts(), x);
        if (g.temperatureC() >= 0) writer.addScalar("gpu/temp_c", g.temperatureC(), x);
        if (g.smClockMHz() >= 0) writer.addScalar("gpu/sm_clock_mhz", g.smClockMHz(), x);
    }

    /** Step losses are written only when the trainer reads them back, which it does for a listener that asks. */
    @Override public boolean wantsLoss() { return true; }

    @Override public void close() { writer.close(); }
}
