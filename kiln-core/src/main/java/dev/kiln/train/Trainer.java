package dev.kiln.train;

import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.amp.GradScaler;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.GradMode;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.dist.DataParallel;
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
 * which skips the steps whose gradients overflowed, deciding on the device). The loss is summed on the device and read
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
    private Path profileFile;         // where to write the trace of the profiled steps, or null
    private int profileFrom, profileTo; // the steps [from, to) of the first epoch that are profiled
    private boolean cudaGraphs;
    private GraphedStep graphed;      // made at the first batch when cudaGraphs is on; kept across epochs
    private DataParallel dataParallel; // null: this process trains alone
    private OnNan onNan;              // null: the loss is not checked
    private int nanSkipped;

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
        this.listener.trainingStarted(model, optimizer);
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
     * then one capture); a batch of another shape (the last, partial one) runs eagerly. Needs a CUDA model. An fp16
     * step's loss scaling runs inside the graph (the scaler decides on the device).
     */
    public void useCudaGraphs(boolean on) { this.cudaGraphs = on; }

    /**
     * Checks the loss: a NaN or infinite loss stops training with a {@link NonFiniteLossException} or leaves that step's
     * update out (which reads every step's loss; stopping does so on the CPU only; on a GPU the running sum is checked where it is read anyway). A graphed step has already updated when its loss
     * is read, so with CUDA graphs only {@link OnNan#STOP} is offered. Null: no check (the default).
     */
    public void onNan(OnNan action) {
        if (action == OnNan.SKIP && dataParallel != null) throw new IllegalArgumentException("--on-nan skip cannot be used data-parallel: every rank must take every step");
        if (action == OnNan.SKIP && cudaGraphs) throw new IllegalArgumentException("--on-nan skip cannot be used with CUDA graphs: a graphed step updates before its loss is read");
        this.onNan = action;
    }

    /**
     * Trains as one rank of a data-parallel job: {@code dp} (wrapping this trainer's model) averages the gradients over
     * the ranks between backward and the optimizer, inside the CUDA graph when the step is graphed. Every rank must take
     * every step, so a loss check that skips steps is refused.
     */
    public void dataParallel(DataParallel dp) {
        if (onNan == OnNan.SKIP) throw new IllegalArgumentException("--on-nan skip cannot be used data-parallel: every rank must take every step");
        this.dataParallel = dp;
    }

    /** Steps left out because their loss was not finite ({@link OnNan#SKIP}). */
    public int nanSkipped() { return nanSkipped; }

    /** A step's loss was NaN or infinite and the trainer was told to stop ({@link OnNan#STOP}). */
    public static final class NonFiniteLossException extends ArithmeticException {
        private final int step;

        /** Step {@code step}'s loss (or the running sum up to it) was not finite; the message says which. */
        public NonFiniteLossException(int step, String message) {
            super(message);
            this.step = step;
        }

        /** The step (1-based, within its epoch) whose loss was not finite. */
        public int step() { return step; }
    }

    /** Where a (resumed) epoch starts: batches already trained, and their loss sum (weighted by batch size) and samples. */
    public record Start(int epoch, int step, double lossSum, int samples) {
        /** The first batch of epoch {@code epoch} (0-based). */
        public static Start of(int epoch) { return new Start(epoch, 0, 0, 0); }
    }

    /** Called after each step with the epoch's position and its running loss sum (read from the device only when asked). */
    @FunctionalInterface
    public interface StepHook {
        void after(int step, java.util.function.DoubleSupplier lossSum, int samples) throws IOException;
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

    /**
     * How many steps the loss scaler skipped because a gradient overflowed (0 unless fp16): counted on the device, so no
     * step waits for its verdict, and read here.
     */
    public int skippedSteps() { return scaler == null ? 0 : Math.toIntExact(scaler.skippedSteps()); }

    /** The training half of an epoch: returns {mean loss, samples, seconds}. */
    public TrainResult trainEpoch(DataLoader loader, String label) {
        try {
            return trainEpoch(loader, label, null, null);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // no hook, nothing to write
        }
    }

    /**
     * The training half of an epoch from {@code from} (null: the loader's next epoch, from its first batch), calling
     * {@code hook} (null: none) after every step; the result counts the whole epoch's loss and samples, those before
     * {@code from} included, and the time of this call.
     */
    public TrainResult trainEpoch(DataLoader loader, String label, Start from, StepHook hook) throws IOException {
        model.train();
        int batches = loader.batchCount();
        listener.epochStarted(label, batches);
        {
            long start = System.nanoTime();
            Tensor lossSum = null;
            int samples = from == null ? 0 : from.samples(), step = from == null ? 0 : from.step();
            Iterator<Batch> batchesLeft = from == null ? loader.iterator() : loader.epoch(from.epoch(), from.step());
            double carried = from == null ? 0 : from.lossSum(); // a float32 sum read back: exact, so the resumed sum is the same
            Profiler prof = null;
            while (batchesLeft.hasNext()) {
              if (profileFile != null && step == profileFrom) prof = Profiler.start();
              // one scope per step: the batch, activations and temporaries go back to the pool when it ends
              try (MemoryScope ignoredStep = MemoryScope.open()) {
                Batch b;
                try (var phase = Profiler.phase("data wait")) {
                    b = batchesLeft.next();
                }
                Tensor l;
                boolean taken = true;
                if (cudaGraphs) {
                    if (graphed == null) {
                        graphed = new GraphedStep((Layer & Forward) model, loss, optimizer, b.inputs().shape(), b.inputs().dtype(), b.targets().shape(),
                                b.targets().dtype(), b.inputs().device(), precision, scaler, GraphedStep.DEFAULT_WARMUP);
                        if (dataParallel != null) graphed.dataParallel(dataParallel);
                    }
                    try (var phase = Profiler.phase("graph replay")) { // forward, backward and update in one graph: no split
                        l = graphed.step(b.inputs(), b.targets());
                    }
                    if (checksEveryStep(l)) checkLoss(l, step + 1);
                } else {
                    optimizer.zeroGrad();
                    try (Autocast ac = precision.autocast(); var phase = Profiler.phase("forward")) {
                        l = loss.forward(forward.forward(b.inputs()), b.targets());
                    }
                    taken = !checksEveryStep(l) || checkLoss(l, step + 1);
                    if (taken) backwardAndStep(l);
                }
                if (taken) try (GradMode ignored = GradMode.disabled()) {
                    Tensor weighted = l.detach().mul(b.size()); // batches may differ in size: weight by it
                    Tensor previous = lossSum;
                    lossSum = (previous == null ? (carried != 0 ? weighted.add(carried) : weighted) : previous.add(weighted)).keep();
                    if (previous != null) previous.close();
                }
                if (taken) samples += b.size(); // the examples trained on: a skipped step's are left out of the mean
                step++;
                if (prof != null && (step == profileTo || !batchesLeft.hasNext())) {
                    writeProfile(prof);
                    prof = null;
                }
                double shownLoss = listener.wantsLoss() && (step % LOSS_READ_EVERY == 1 || step == batches) ? l.item() : Double.NaN;
                listener.stepEnded(step, batches, shownLoss, samples, (System.nanoTime() - start) / 1e9);
                if (hook != null) {
                    Tensor sum = lossSum;
                    hook.after(step, () -> sum == null ? carried : sum.item(), samples);
                }
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

    /**
     * Whether this step's loss is read to check it: always to skip, and to stop on the CPU, where reading it costs
     * nothing; on a GPU a stopping run checks the running loss sum where it is read anyway (checkpoints, the epoch's end).
     */
    private boolean checksEveryStep(Tensor l) {
        return onNan == OnNan.SKIP || onNan == OnNan.STOP && !l.device().isCuda();
    }

    /**
     * Whether the loss is finite; if not, skips the step (returns false, {@link OnNan#SKIP}) or throws naming the step
     * and the first parameter whose gradient is not finite ({@link OnNan#STOP}; one backward pass to find it).
     */
    private boolean checkLoss(Tensor l, int step) {
        double v = l.item();
        if (Double.isFinite(v)) return true;
        if (onNan == OnNan.SKIP) {
            nanSkipped++;
            return false;
        }
        String culprit = "";
        if (!cudaGraphs) {
            l.backward();
            try (GradMode ignored = GradMode.disabled()) {
                for (var e : model.namedParameters().entrySet()) {
                    Tensor g = e.getValue().grad();
                    if (g != null && Double.isNaN(g.mul(0.0).sum().item())) {
                        culprit = " (the first parameter with a non-finite gradient: " + e.getKey() + ")";
                        break;
                    }
                }
            }
            optimizer.zeroGrad();
        }
        throw new NonFiniteLossException(step, "the loss is " + v + culprit);
    }

    private void backwardAndStep(Tensor l) {
        try (var phase = Profiler.phase("backward")) {
            (scaler == null ? l : scaler.scale(l)).backward();
            if (dataParallel != null) dataParallel.finish(); // every rank sees the same averaged gradients: the same overflow verdict
        }
        try (var phase = Profiler.phase("optimizer")) {
            if (scaler == null) {
                optimizer.step();
            } else {
                scaler.stepCapturable(optimizer);   // the device skips an overflowing step and counts it: no read here
                scaler.update();
            }
        }
    }

    /** One epoch's training pass: the mean loss over its samples, how many samples, and the wall time. */
    public record TrainResult(double meanLoss, int samples, double seconds) {
        public double samplesPerSecond() { return samples / seconds; }
    }
}
