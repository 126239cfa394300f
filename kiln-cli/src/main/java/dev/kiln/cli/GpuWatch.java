package dev.kiln.cli;

import dev.kiln.cuda.GpuMonitor;
import dev.kiln.cuda.GpuSummary;
import dev.kiln.train.EpochStats;
import dev.kiln.train.TrainListener;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The GPU monitor's part of {@code kiln train}: per epoch of training a {@link GpuSummary}, added as columns to
 * metrics.csv (after the run rewrote it, so every epoch) and a warning with a hint when the GPU sat mostly idle. Forwards everything to
 * the listener it wraps.
 */
final class GpuWatch implements TrainListener {
    static final String IDLE_HINT = "input-bound? try --cuda-graphs, a larger --batch-size, or the data resident on the device (--resident auto)";

    private final TrainListener inner;
    private final GpuMonitor monitor;
    private final PrintWriter log;
    private final Map<Integer, GpuSummary> epochs = new TreeMap<>();
    private GpuSummary training; // the epoch's training pass, before evaluation

    GpuWatch(TrainListener inner, GpuMonitor monitor, PrintWriter log) {
        this.inner = inner;
        this.monitor = monitor;
        this.log = log;
    }

    @Override public void trainingStarted(dev.kiln.nn.Layer model, dev.kiln.optim.Optimizer optimizer) { inner.trainingStarted(model, optimizer); }

    @Override public void epochStarted(String label, int batches) {
        monitor.mark(); // what came before (loading, evaluation) is not this epoch's training
        inner.epochStarted(label, batches);
    }

    @Override public void stepEnded(int step, int batches, double loss, long samples, double seconds) {
        inner.stepEnded(step, batches, loss, samples, seconds);
    }

    @Override public void epochTrainingEnded() {
        training = monitor.mark();
        inner.epochTrainingEnded();
    }

    @Override public void epochEnded(EpochStats stats, List<EpochStats> history, Path outDir) {
        inner.epochEnded(stats, history, outDir);
        if (training != null) { // null: an epoch shorter than one sample period
            epochs.put(stats.epoch(), training);
            if (training.mostlyIdle()) {
                log.printf(Locale.ROOT, "kiln: warning: the GPU was busy only %.0f%% of epoch %d: %s%n", training.utilizationPercent(), stats.epoch(), IDLE_HINT);
            }
        }
        training = null;
        if (epochs.isEmpty()) return;
        Path metrics = outDir.resolve("metrics.csv");
        try {
            if (Files.exists(metrics)) rewrite(metrics, withGpuColumns(Files.readAllLines(metrics, StandardCharsets.UTF_8), epochs));
        } catch (IOException e) {
            throw new UncheckedIOException("adding the GPU columns to " + metrics, e);
        }
    }

    @Override public boolean wantsLoss() { return inner.wantsLoss(); }

    /** metrics.csv's lines (header first, the epoch in the first column) with the GPU's columns; blank for epochs not watched. */
    static List<String> withGpuColumns(List<String> lines, Map<Integer, GpuSummary> epochs) {
        List<String> out = new ArrayList<>(lines.size());
        String blank = ",".repeat(GpuSummary.CSV_HEADER.split(",").length - 1);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (i == 0) {
                out.add(line + "," + GpuSummary.CSV_HEADER);
                continue;
            }
            GpuSummary s = epochs.get(Integer.parseInt(line.substring(0, line.indexOf(','))));
            out.add(line + "," + (s == null ? blank : s.csv()));
        }
        return out;
    }

    private static void rewrite(Path file, List<String> lines) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".gpu.tmp");
        Files.write(tmp, lines, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
