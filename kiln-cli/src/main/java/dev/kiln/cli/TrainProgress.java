package dev.kiln.cli;

import dev.kiln.cuda.GpuMonitor;
import dev.kiln.cuda.GpuSample;
import dev.kiln.train.EpochStats;
import dev.kiln.train.TrainListener;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code kiln train}'s view of a run: a progress bar per epoch where a person watches (a terminal on stderr), and
 * {@code chart.png} rewritten after every epoch (with the within-epoch curve of the step loss and throughput). A language model's run counts tokens (each sample, a chunk, holds
 * {@code context} of them) and is evaluated on its validation text.
 */
final class TrainProgress implements TrainListener {
    private final PrintStream barOut;   // null: no bar
    private final PrintWriter log;
    private final String title;
    private final int tokensPerSample; // 0: count samples (images)
    private ProgressBar bar;
    private double shownLoss = Double.NaN;
    private boolean chartWritten, chartFailed;
    private GpuMonitor gpu; // null: no GPU to show
    private final StepCurve steps;

    TrainProgress(PrintStream barOut, PrintWriter log, String title) { this(barOut, log, title, 0); }

    /** A language model's run: chunks of {@code tokensPerSample} tokens, scored on validation text. */
    TrainProgress(PrintStream barOut, PrintWriter log, String title, int tokensPerSample) {
        this.barOut = barOut;
        this.log = log;
        this.title = title;
        this.tokensPerSample = tokensPerSample;
        this.steps = new StepCurve(tokensPerSample > 0 ? tokensPerSample : 1);
    }

    /** Shows the GPU's latest reading in the progress line. */
    TrainProgress showing(GpuMonitor monitor) {
        this.gpu = monitor;
        return this;
    }

    /** The chart's step curve needs the loss now and then (every 20 steps: cheap), with or without a bar. */
    @Override public boolean wantsLoss() { return true; }

    @Override public void epochStarted(String label, int batches) {
        if (barOut == null) return;
        shownLoss = Double.NaN;
        bar = new ProgressBarBuilder().setTaskName(label).setInitialMax(batches).setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(250).setConsumer(new ConsoleProgressBarConsumer(barOut, 140))
                .clearDisplayOnFinish().build();
    }

    @Override public void stepEnded(int step, int batches, double loss, long samples, double seconds) {
        steps.step(step, batches, loss, samples, seconds);
        if (bar == null) return;
        if (!Double.isNaN(loss)) shownLoss = loss;
        bar.step();
        String rate = tokensPerSample > 0
                ? String.format(Locale.ROOT, " loss %.4f, %,.0f tokens/s", shownLoss, samples * (double) tokensPerSample / seconds)
                : String.format(Locale.ROOT, " loss %.4f, %,.0f samples/s", shownLoss, samples / seconds);
        GpuSample g = gpu == null ? null : gpu.latest();
        bar.setExtraMessage(g == null ? rate : rate + ", " + g.brief());
    }

    @Override public void epochTrainingEnded() {
        if (bar != null) bar.close();
        bar = null;
    }

    /**
     * The chart is a convenience: a machine without fonts or a runtime without java.desktop (the GPU bundle) cannot
     * draw one, and that must not cost the run its checkpoint and metrics. Says once why it was skipped.
     */
    @Override public void epochEnded(EpochStats stats, List<EpochStats> history, Path outDir) {
        if (chartFailed) return;
        Path chart = outDir.resolve("chart.png");
        try {
            Chart.write(chart, title, history, tokensPerSample > 0 ? "validation" : "test", steps.points(), tokensPerSample > 0 ? "tokens/s" : "samples/s");
            if (!chartWritten) log.println("kiln: chart " + chart);
            chartWritten = true;
        } catch (IOException | RuntimeException | LinkageError e) {
            log.println("kiln: no chart written (" + (e instanceof LinkageError ? "this Java runtime cannot draw: " : "") + e.getMessage() + ")");
            chartFailed = true;
        }
    }
}
