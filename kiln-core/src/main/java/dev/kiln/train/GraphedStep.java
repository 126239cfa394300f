package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.amp.GradScaler;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.GradMode;
import dev.kiln.cuda.CudaAllocator;
import dev.kiln.cuda.CudaDevice;
import dev.kiln.cuda.CudaGraph;
import dev.kiln.dist.DataParallel;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Loss;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.ParamGroup;

import java.util.Arrays;
import java.util.List;

/**
 * A whole training step (zeroGrad, forward, loss, backward, optimizer step) captured once as a {@link CudaGraph}
 * and replayed: one launch per step instead of a hundred, which is most of a small model's step time.
 * <pre>{@code
 * try (GraphedStep step = new GraphedStep(model, new CrossEntropyLoss(), opt, new int[]{128, 784}, DType.FLOAT32,
 *                                         new int[]{128}, DType.INT64, Device.cuda(0))) {
 *     for (Batch b : loader) {
 *         try (var scope = MemoryScope.open()) {
 *             Tensor loss = step.step(b.inputs(), b.targets()); // read it only when needed: item() waits
 *         }
 *     }
 * }
 * }</pre>
 * The first {@link #warmupSteps} calls run eagerly on the real batches (they compile kernels, create the
 * optimizer's state, choose cuDNN algorithms and fill the caching allocator with the step's sizes, none of which
 * may happen inside a capture); the next call captures the step into static input, target and loss tensors and
 * every call after that copies its batch into the static inputs (outside the graph) and replays. A batch of
 * another shape (a last, partial batch) runs eagerly, and the graph's step counter is advanced to match.
 *
 * <p>The fused optimizers' learning rates are read live at each replay (a scheduler changes them freely); baked into
 * the graph: the rates of optimizer steps composed of tensor ops (a changed rate is noticed and the step captured
 * again), the model's structure and train/eval mode. An fp16 step's loss scaling is decided on the device
 * ({@link GradScaler#stepCapturable}), so an overflowing replay skips its update and backs the scale off by itself. Not
 * capturable: anything that reads values on the host inside the step (gradient clipping by a norm read back, or
 * {@link GradScaler#step}'s verdict): the capture fails with a clear error.
 */
public final class GraphedStep implements AutoCloseable {
    public static final int DEFAULT_WARMUP = 3;
    private static final System.Logger LOG = dev.kiln.Logging.logger(GraphedStep.class);

    private final Body body;
    private final Optimizer optimizer;
    private final GradScaler scaler; // null unless the step scales its loss
    private Device device;
    private final int warmupSteps;
    private Tensor staticInput, staticTarget; // made at the first step by of(...)
    private Tensor staticLoss;
    private DataParallel dataParallel;
    private CudaGraph graph;
    private double[] lastLrs; // the rates at the capture or at the last change the graph read live
    private long calls, captures;
    private boolean closed;

    /** A float32 step on {@code device}, for batches of these shapes and dtypes. */
    public <M extends Layer & Forward> GraphedStep(M model, Loss loss, Optimizer optimizer, int[] inputShape, DType inputType, int[] targetShape,
                                                  DType targetType, Device device) {
        this(model, loss, optimizer, inputShape, inputType, targetShape, targetType, device, Precision.FP32, DEFAULT_WARMUP);
    }

    /** A step whose forward pass and loss run in {@code precision}; an fp16 step scales its loss with a new {@link GradScaler}. */
    public <M extends Layer & Forward> GraphedStep(M model, Loss loss, Optimizer optimizer, int[] inputShape, DType inputType, int[] targetShape,
                                                  DType targetType, Device device, Precision precision, int warmupSteps) {
        this(model, loss, optimizer, inputShape, inputType, targetShape, targetType, device, precision,
                precision.scalesLoss() ? new GradScaler() : null, warmupSteps);
    }

    /**
     * A step whose forward pass and loss run in {@code precision}, its loss scaled by {@code scaler} (needed for fp16, whose
     * scale, overflow check and skipped updates then run inside the graph; null otherwise).
     */
    public <M extends Layer & Forward> GraphedStep(M model, Loss loss, Optimizer optimizer, int[] inputShape, DType inputType, int[] targetShape,
                                                  DType targetType, Device device, Precision precision, GradScaler scaler, int warmupSteps) {
        if (!device.isCuda()) throw new IllegalArgumentException("GraphedStep needs a CUDA device, got " + device);
        if (precision.scalesLoss() && scaler == null) {
            throw new IllegalArgumentException("GraphedStep: precision " + precision.cliName() + " scales the loss: it needs a GradScaler");
        }
        if (warmupSteps < 1) throw new IllegalArgumentException("GraphedStep: at least one eager warm-up step is needed, got " + warmupSteps);
        this.body = (x, y) -> {
            optimizer.zeroGrad();
            Tensor l;
            try (Autocast ac = precision.autocast()) {
                l = loss.forward(model.forward(x), y);
            }
            (scaler == null ? l : scaler.scale(l)).backward();
            if (dataParallel != null) dataParallel.finish();   // every rank sees the same averaged gradients: the same overflow verdict
            if (scaler == null) {
                optimizer.step();
            } else {
                scaler.stepCapturable(optimizer);
                scaler.update();
            }
            return l;
        };
        this.optimizer = optimizer;
        this.scaler = scaler;
        this.device = device;
        this.warmupSteps = warmupSteps;
        // static: the graph reads these addresses on every replay, so they live (kept out of any scope) as long as it
        this.staticInput = Tensor.zeros(inputShape, inputType, device).keep();
        this.staticTarget = Tensor.zeros(targetShape, targetType, device).keep();
    }

    /**
     * A training step written as a function of its batch: zero the gradients, forward, loss, backward, (average the
     * gradients over the ranks,) step the optimizer, return the loss. The one thing a graph asks of it: no reading of
     * values on the host inside (no {@code item()}; read the returned loss outside).
     */
    @FunctionalInterface
    public interface Body {
        Tensor run(Tensor input, Tensor target);
    }

    /**
     * Any training step, graphed in one call (what {@code torch.compile(mode="reduce-overhead")} gives PyTorch users):
     * {@code body} runs eagerly for the first {@link #DEFAULT_WARMUP} batches, is then captured with the batch's
     * shapes, and replayed for every later batch of those shapes (others run eagerly). Whatever the body updates in
     * place, batch norms' running statistics included, is updated by each replay. {@code optimizer} is the one the body
     * steps (its step counts follow the replays).
     * <pre>{@code
     * GraphedStep step = GraphedStep.of(opt, (x, y) -> {
     *     opt.zeroGrad();
     *     Tensor loss = F.crossEntropy(model.forward(x), y);
     *     loss.backward();
     *     opt.step();
     *     return loss;
     * });
     * for (Batch b : loader) losses.add(step.step(b.inputs(), b.targets()).item());
     * }</pre>
     */
    public static GraphedStep of(Optimizer optimizer, Body body) { return new GraphedStep(optimizer, body, DEFAULT_WARMUP); }

    private GraphedStep(Optimizer optimizer, Body body, int warmupSteps) {
        this.body = body;
        this.optimizer = optimizer;
        this.scaler = null;
        this.warmupSteps = warmupSteps;
    }

    /**
     * One training step on this batch; returns its loss (a tensor on the device: for replayed steps the static loss
     * tensor, overwritten by the next step, so read or copy it before that).
     */
    public Tensor step(Tensor input, Tensor target) {
        if (closed) throw new IllegalStateException("GraphedStep used after close()");
        if (staticInput == null) {
            if (!input.device().isCuda()) throw new IllegalArgumentException("GraphedStep needs a CUDA device, got a batch on " + input.device());
            device = input.device();
            staticInput = Tensor.zeros(input.shape(), input.dtype(), device).keep();
            staticTarget = Tensor.zeros(target.shape(), target.dtype(), device).keep();
        }
        calls++;
        if (!Arrays.equals(input.shape(), staticInput.shape()) || !Arrays.equals(target.shape(), staticTarget.shape())
                || input.dtype() != staticInput.dtype() || target.dtype() != staticTarget.dtype()) {
            Tensor l = eager(input, target);
            if (graph != null) graph.advance(); // the graph's Adam step count includes this step
            return l;
        }
        try (GradMode ignored = GradMode.disabled()) {
            staticInput.copyFrom(input);
            staticTarget.copyFrom(target);
        }
        if (calls <= warmupSteps) return eager(staticInput, staticTarget);
        if (graph != null && !Arrays.equals(lastLrs, lrs())) {
            if (lrsLive()) {
                lastLrs = lrs(); // read at each replay: nothing to do, and nothing to check again until the next change
            } else {
                // a changed learning rate the graph baked in (an optimizer step composed of tensor ops): capture again
                graph.close();
                graph = null;
            }
        }
        if (graph == null) capture();
        graph.replay();
        optimizer.countGraphedSteps(1);
        if (dataParallel != null) dataParallel.stepReplayed();
        return staticLoss;
    }

    /**
     * Averages the gradients over the ranks inside the step, between backward and the optimizer: {@code dp} wraps this
     * step's model. The reductions are captured with the rest (NCCL calls replay from the graph). Set it before the
     * first step. Returns this. A step made by {@link #of} calls {@code dp.finish()} in its body itself; set it here
     * too, so that the replays are counted.
     */
    public GraphedStep dataParallel(DataParallel dp) {
        if (calls > 0) throw new IllegalStateException("GraphedStep.dataParallel: set it before the first step");
        this.dataParallel = dp;
        return this;
    }

    /** The loss scaler of an fp16 step (its scale and skipped steps are read from the device), or null. */
    public GradScaler scaler() { return scaler; }

    /** Whether steps are being replayed from a graph now. */
    public boolean captured() { return graph != null; }

    /** How many times the step was captured (more than once when a baked-in learning rate changed). */
    public long captures() { return captures; }

    /** The graph, once captured (null before). */
    public CudaGraph graph() { return graph; }

    public int warmupSteps() { return warmupSteps; }

    private Tensor eager(Tensor input, Tensor target) { return body.run(input, target); }

    /** Most blocks a capture may add to the pool, one per failed attempt, before giving up. */
    private static final int MAX_POOL_TOP_UPS = 256;

    private void capture() {
        Tensor[] out = new Tensor[1];
        boolean[] stepped = new boolean[1];
        Runnable once = () -> {
            stepped[0] = false;
            // the step's temporaries are freed when this scope closes, inside the capture: to the graph's private pool
            try (MemoryScope inner = MemoryScope.open()) {
                Tensor l = body.run(staticInput, staticTarget);
                stepped[0] = true;
                out[0] = l.detach().keep();
            }
        };
        CudaAllocator alloc = CudaDevice.get(device.index()).allocator();
        long t0 = System.nanoTime();
        int attempt = 0;
        for (; ; attempt++) {
            try {
                graph = CudaGraph.capture(device, once);
                break;
            } catch (CudaAllocator.CaptureNeedsMemory e) {
                // the eager steps left the pool exactly one step's blocks, and something beside the step took one:
                // nothing of the aborted capture ran, so add the missing block (outside the capture) and try again
                if (stepped[0]) optimizer.countGraphedSteps(-1);
                if (attempt >= MAX_POOL_TOP_UPS) throw e;
                alloc.reserve(e.bytes());
            }
        }
        // the captured optimizer step counted a step on the host that has not run; each replay counts its own
        optimizer.countGraphedSteps(-1);
        if (staticLoss != null) staticLoss.close();
        staticLoss = out[0];
        lastLrs = lrs();
        captures++;
        int topUps = attempt;
        LOG.log(System.Logger.Level.DEBUG, () -> String.format(java.util.Locale.ROOT, "captured the training step on %s in %.0f ms (%d pool top-ups)",
                device, (System.nanoTime() - t0) / 1e6, topUps));
    }

    /** Whether the graph reads every group's learning rate live (the fused optimizer kernels do). */
    private boolean lrsLive() {
        for (ParamGroup g : optimizer.groups()) if (!graph.readsLive(g.liveLr())) return false;
        return true;
    }

    private double[] lrs() {
        List<ParamGroup> groups = optimizer.groups();
        double[] out = new double[groups.size()];
        for (int i = 0; i < out.length; i++) out[i] = groups.get(i).lr();
        return out;
    }

    /** Closes the graph (giving its memory back) and the static tensors. */
    @Override public void close() {
        if (closed) return;
        closed = true;
        if (graph != null) graph.close();
        graph = null;
        if (staticInput != null) staticInput.close();
        if (staticTarget != null) staticTarget.close();
        if (staticLoss != null) staticLoss.close();
    }
}
