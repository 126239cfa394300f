package dev.kiln.train;

import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.amp.GradScaler;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.GradMode;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Loss;
import dev.kiln.optim.Optimizer;
import dev.kiln.profile.Profiler;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;

/**
 * The training loop: per batch zeroGrad, forward, loss, backward, step. The forward pass and the loss run in the
 * run's {@link Precision} (under autocast for bf16 and fp16; fp16 scales the loss through a {@link GradScaler},
 * which skips the steps whose gradients overflowed). The loss is summed on the device and read
 * back only every {@code LOSS_READ_EVERY} steps for the {@link TrainListener} and once at the end of the epoch, so the
 * loop does not wait for the device on every step.
 */
public final class Trainer implements AutoCloseable {
    private static final int LOSS_READ_EVERY = 20;

    private final Layer model;
    private final Forward forward; // the model, as a one-input computation
    private final Loss loss;
    private final Optimizer optimizer;
    private final TrainListener listener;
    private final Precision precision;
    private final GradScaler scaler; // null unless the precision scales the loss
    private int skippedSteps;
    private Path profileFile;         // where to write the trace of the profiled steps, or null
    private int profileFrom, profileTo; // the steps [from, to) of the first epoch that are profiled
    private boolean cudaGraphs;
    private GraphedStep graphed;      // made at the first batch when cudaGraphs is on; kept across epochs

    /** A float32 trainer that reports to {@code listener} ({@link TrainListener#NONE} or null for nothing). */
    public <M extends Layer & Forward> Trainer(M model, Loss loss, Optimizer optimizer, TrainListener listener) {
        this(model, loss, optimizer, listener, Precision.FP32);
    }

    /**
     * A trainer whose forward pass runs in the given precision. TF32 is a device setting
     * ({@link dev.kiln.cuda.Cuda#setAllowTf32(dev.kiln.Device, boolean)}) that the caller makes; here it trains as FP32.
     */
    public <M extends Layer & Forward> Trainer(M model, Loss loss, Optimizer optimizer, TrainListener listener, Precision precision) {
        this.model = model;
        this.forward = model;
        this.loss = loss;
        this.optimizer = optimizer;
        this.listener = listener == null ? TrainListener.NONE : listener;
        this.precision = precision;
        this.scaler = precision.scalesLoss() ? new GradScaler() : null;
    }

    /**
     * Profiles steps [from, to) of the next epoch (past the first steps, whose kernel compilation and allocator
     * warm-up are not the steady state) and writes the Chrome trace to {@code file} and the summary table beside it
     * ({@code .txt}). A shorter epoch profiles what it has from {@code from} on, or nothing.
     */
    public void profileSteps(Path file, int from, int to) {
        this.profileFile = file;
        this.profileFrom = from;
        this.profileTo = to;
    }

    /**
     * Runs full batches as one replayed CUDA graph per step ({@link GraphedStep}: the first batches eagerly as warm-up,
     * then one capture); a batch of another shape (the last, partial one) runs eagerly. Needs a CUDA model and a
     * precision without loss scaling.
     */
    public void useCudaGraphs(boolean on) {
        if (on && scaler != null) throw new IllegalArgumentException("CUDA graphs cannot run an fp16 step: its loss scaler reads values on the host");
        this.cudaGraphs = on;
    }

    /** The graphed step, once the first batch made it (null without CUDA graphs). */
    public GraphedStep graphedStep() { return graphed; }

    /** Closes the captured graph, if any, giving its memory back. */
    @Override public void close() {
        if (graphed != null) graphed.close();
        graphed = null;
    }

    /** The loss scaler of an fp16 run, or null. */
    public GradScaler scaler() { return scaler; }

    /** How many steps the loss scaler skipped because a gradient overflowed (0 unless fp16). */
    public int skippedSteps() { return skippedSteps; }

    /** The training half of an epoch: returns {mean loss, samples, seconds}. */
    public TrainResult trainEpoch(DataLoader loader, String label) {
        model.train();
        int batches = loader.batchCount();
        listener.epochStarted(label, batches);
        {
            long start = System.nanoTime();
            Tensor lossSum = null;
            int samples = 0, step = 0;
            Iterator<Batch> batchesLeft = loader.iterator();
            Profiler prof = null;
            while (batchesLeft.hasNext()) {
              if (profileFile != null && step == profileFrom) prof = Profiler.start();
              // one scope per step: the batch, activations and temporaries go back to the pool when it ends
              try (MemoryScope ignoredStep = MemoryScope.open()) {
                Batch b = batchesLeft.next();
                Tensor l;
                if (cudaGraphs) {
                    if (graphed == null) {
                        graphed = new GraphedStep((Layer & Forward) model, loss, optimizer, b.inputs().shape(), b.inputs().dtype(), b.targets().shape(),
                                b.targets().dtype(), b.inputs().device(), precision, GraphedStep.DEFAULT_WARMUP);
                    }
                    l = graphed.step(b.inputs(), b.targets());
                } else {
                    optimizer.zeroGrad();
                    try (Autocast ac = precision.autocast()) {
                        l = loss.forward(forward.forward(b.inputs()), b.targets());
                    }
                    backwardAndStep(l);
                }
                try (GradMode ignored = GradMode.disabled()) {
                    Tensor weighted = l.detach().mul(b.size()); // batches may differ in size: weight by it
                    Tensor previous = lossSum;
                    lossSum = (previous == null ? weighted : previous.add(weighted)).keep();
                    if (previous != null) previous.close();
                }
                samples += b.size();
                step++;
                if (prof != null && (step == profileTo || !batchesLeft.hasNext())) {
                    writeProfile(prof);
                    prof = null;
                }
                double shownLoss = listener.wantsLoss() && (step % LOSS_READ_EVERY == 1 || step == batches) ? l.item() : Double.NaN;
                listener.stepEnded(step, batches, shownLoss, samples, (System.nanoTime() - start) / 1e9);
              }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            listener.epochTrainingEnded();
            return new TrainResult(lossSum == null ? Double.NaN : lossSum.item() / samples, samples, seconds);
        }
    }

    private void writeProfile(Profiler prof) {
        prof.close();
        try {
            prof.writeChromeTrace(profileFile);
            String name = profileFile.getFileName().toString();
            Path table = profileFile.resolveSibling((name.endsWith(".json") ? name.substring(0, name.length() - 5) : name) + ".txt");
            Files.writeString(table, prof.summary());
        } catch (IOException e) {
            throw new UncheckedIOException("writing the profile " + profileFile, e);
        }
        profileFile = null; // once
    }

    private void backwardAndStep(Tensor l) {
        if (scaler == null) {
            l.backward();
            optimizer.step();
            return;
        }
        scaler.scale(l).backward();
        if (!scaler.step(optimizer)) skippedSteps++;
        scaler.update();
    }

    /** One epoch's training pass: the mean loss over its samples, how many samples, and the wall time. */
    public record TrainResult(double meanLoss, int samples, double seconds) {
        public double samplesPerSecond() { return samples / seconds; }
    }
}
