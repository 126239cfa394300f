package dev.kiln.train;

import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.nn.Loss;
import dev.kiln.nn.Module;
import dev.kiln.optim.Optimizer;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.util.Iterator;
import java.util.Locale;

/**
 * The training loop: per batch zeroGrad, forward, loss, backward, step. The loss is summed on the device and read
 * back only every {@code LOSS_READ_EVERY} steps for the progress bar and once at the end of the epoch, so the
 * loop does not wait for the device on every step.
 */
public final class Trainer {
    private static final int LOSS_READ_EVERY = 20;

    private final Module model;
    private final Loss loss;
    private final Optimizer optimizer;
    private final PrintStream progressOut;

    /** progressOut: where the progress bar is drawn, or null for none. */
    public Trainer(Module model, Loss loss, Optimizer optimizer, PrintStream progressOut) {
        this.model = model;
        this.loss = loss;
        this.optimizer = optimizer;
        this.progressOut = progressOut;
    }

    /** The training half of an epoch: returns {mean loss, samples, seconds}. */
    public TrainResult trainEpoch(DataLoader loader, String label) {
        model.train();
        int batches = loader.batchCount();
        try (ProgressBar bar = progressOut == null ? null : bar(label, batches)) {
            long start = System.nanoTime();
            Tensor lossSum = null;
            int samples = 0, step = 0;
            double shownLoss = Double.NaN;
            Iterator<Batch> batchesLeft = loader.iterator();
            while (batchesLeft.hasNext()) {
              // one scope per step: the batch, activations and temporaries go back to the pool when it ends
              try (MemoryScope ignoredStep = MemoryScope.open()) {
                Batch b = batchesLeft.next();
                optimizer.zeroGrad();
                Tensor l = loss.forward(model.forward(b.inputs()), b.targets());
                l.backward();
                optimizer.step();
                try (GradMode ignored = GradMode.disabled()) {
                    Tensor weighted = l.detach().mul(b.size()); // batches may differ in size: weight by it
                    Tensor previous = lossSum;
                    lossSum = (previous == null ? weighted : previous.add(weighted)).keep();
                    if (previous != null) previous.close();
                }
                samples += b.size();
                step++;
                if (bar != null) {
                    if (step % LOSS_READ_EVERY == 1 || step == batches) shownLoss = l.item();
                    double secs = (System.nanoTime() - start) / 1e9;
                    bar.step();
                    bar.setExtraMessage(String.format(Locale.ROOT, " loss %.4f, %,.0f samples/s", shownLoss, samples / secs));
                }
              }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            return new TrainResult(lossSum == null ? Double.NaN : lossSum.item() / samples, samples, seconds);
        }
    }

    public record TrainResult(double meanLoss, int samples, double seconds) {
        public double samplesPerSecond() { return samples / seconds; }
    }

    private ProgressBar bar(String label, int batches) {
        return new ProgressBarBuilder().setTaskName(label).setInitialMax(batches).setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(250).setConsumer(new ConsoleProgressBarConsumer(progressOut, 110))
                .clearDisplayOnFinish().build();
    }
}
