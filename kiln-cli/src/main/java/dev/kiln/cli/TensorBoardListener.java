package dev.kiln.cli;

import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.cuda.GpuMonitor;
import dev.kiln.cuda.GpuSample;
import dev.kiln.nn.Layer;
import dev.kiln.optim.Optimizer;
import dev.kiln.tensorboard.SummaryWriter;
import dev.kiln.train.EpochStats;
import dev.kiln.train.TrainListener;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code kiln train --tensorboard DIR}: forwards everything to the listener it wraps and writes TensorBoard's files
 * beside it: the run's settings as hyper-parameters (the HPARAMS tab); the step loss when the trainer reads it back
 * (x: samples seen); per epoch the training loss, the validation/test loss and accuracy, the throughput and the
 * learning rate (x: epoch); with {@code --tensorboard-histograms N}, every N epochs a histogram of each parameter's
 * weights and last gradient. Flushed after each epoch, so TensorBoard shows a running job. With a GPU monitor, its
 * samples go beside the step loss (same x).
 */
final class TensorBoardListener implements TrainListener, AutoCloseable {
    private final TrainListener inner;
    private final SummaryWriter writer;
    private final GpuMonitor gpu;       // null: no GPU scalars
    private final int histogramsEvery;  // 0: no histograms
    private Layer model;
    private Optimizer optimizer;
    private GpuSample lastGpu;          // the sample written last: each is written once
    private long samplesBefore; // samples of the epochs already ended, so the step curve's x keeps growing

    TensorBoardListener(TrainListener inner, Path dir) { this(inner, dir, null, 0, null); }

    /**
     * @param gpu             the GPU monitor, or null
     * @param histogramsEvery write weight and gradient histograms every this many epochs (0: never)
     * @param config          the run's settings (a record: its components become the hyper-parameters), or null
     */
    TensorBoardListener(TrainListener inner, Path dir, GpuMonitor gpu, int histogramsEvery, Record config) {
        this.inner = inner;
        this.writer = new SummaryWriter(dir);
        this.gpu = gpu;
        this.histogramsEvery = histogramsEvery;
        if (config != null) writer.addHParams(hparams(config));
    }

    /** A config record's components by name: numbers and booleans as they are, anything else as its string. */
    static Map<String, Object> hparams(Record config) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (var c : config.getClass().getRecordComponents()) {
            try {
                Object v = c.getAccessor().invoke(config);
                out.put(c.getName(), v instanceof Number || v instanceof Boolean ? v : String.valueOf(v));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("reading " + config.getClass().getSimpleName() + "." + c.getName(), e);
            }
        }
        return out;
    }

    @Override public void trainingStarted(Layer model, Optimizer optimizer) {
        this.model = model;
        this.optimizer = optimizer;
        inner.trainingStarted(model, optimizer);
    }

    @Override public void epochStarted(String label, int batches) { inner.epochStarted(label, batches); }

    @Override public void stepEnded(int step, int batches, double loss, long samples, double seconds) {
        inner.stepEnded(step, batches, loss, samples, seconds);
        if (Double.isFinite(loss)) writer.addScalar("train/step_loss", loss, samplesBefore + samples);
        GpuSample g = gpu == null ? null : gpu.latest();
        if (g != null && g != lastGpu) writeGpu(g, samplesBefore + samples);
        if (step == batches) samplesBefore += samples;
    }

    private void writeGpu(GpuSample g, long x) {
        lastGpu = g;
        if (g.utilizationPercent() >= 0) writer.addScalar("gpu/util", g.utilizationPercent(), x);
        writer.addScalar("gpu/mem_gib", g.usedBytes() / (1024.0 * 1024 * 1024), x);
        if (g.powerWatts() >= 0) writer.addScalar("gpu/power_w", g.powerWatts(), x);
        if (g.temperatureC() >= 0) writer.addScalar("gpu/temp_c", g.temperatureC(), x);
        if (g.smClockMHz() >= 0) writer.addScalar("gpu/sm_clock_mhz", g.smClockMHz(), x);
    }

    @Override public void epochTrainingEnded() { inner.epochTrainingEnded(); }

    @Override public void epochEnded(EpochStats s, List<EpochStats> history, Path outDir) {
        inner.epochEnded(s, history, outDir);
        writer.addScalar("train/loss", s.trainLoss(), s.epoch());
        writer.addScalar("eval/loss", s.testLoss(), s.epoch());
        writer.addScalar("eval/accuracy", s.testAccuracy(), s.epoch());
        writer.addScalar("train/samples_per_s", s.trainSamplesPerSecond(), s.epoch());
        if (optimizer != null) writer.addScalar("train/lr", optimizer.groups().getFirst().lr(), s.epoch());
        if (model != null && histogramsEvery > 0 && s.epoch() % histogramsEvery == 0) writeHistograms(s.epoch());
        writer.flush();
    }

    /** weights/NAME and grads/NAME (the epoch's last step's gradient, where it is still held) per parameter. */
    private void writeHistograms(int epoch) {
        try (GradMode ignored = GradMode.disabled(); MemoryScope copies = MemoryScope.open()) { // host copies, freed here
            for (Map.Entry<String, Tensor> p : model.namedParameters().entrySet()) {
                writeHistogram("weights/" + p.getKey(), p.getValue(), epoch);
                Tensor g = p.getValue().grad();
                if (g != null) writeHistogram("grads/" + p.getKey(), g, epoch);
            }
        }
    }

    private void writeHistogram(String tag, Tensor t, int epoch) {
        double[] values = t.detach().toDoubleArray();
        for (double v : values) if (!Double.isFinite(v)) return; // TensorBoard takes finite values only; the loss check speaks for NaNs
        writer.addHistogram(tag, values, epoch);
    }

    /** Step losses are written only when the trainer reads them back, which it does for a listener that asks. */
    @Override public boolean wantsLoss() { return true; }

    @Override public void close() { writer.close(); }
}
