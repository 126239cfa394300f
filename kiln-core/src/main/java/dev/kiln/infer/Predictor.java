package dev.kiln.infer;

import dev.kiln.Device;
import dev.kiln.MemoryScope;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.cuda.CudaAllocator;
import dev.kiln.cuda.CudaDevice;
import dev.kiln.cuda.CudaGraph;
import dev.kiln.nn.Model;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A model made ready to answer requests: evaluation mode, no autograd, batch norms folded into the convolutions before
 * them ({@link ConvBatchNormFolding}, checked on the example input against the unfolded outputs), and safe to call from
 * many threads.
 * <pre>{@code
 * try (Predictor p = new Predictor(model, Tensor.zeros(1, 1, 28, 28))) {
 *     Tensor logits = p.predict(images);   // (N, classes), on the CPU
 * }
 * }</pre>
 * Calls are serialised by a lock: each device runs one stream of work (the CPU backend already spreads one op over its
 * cores, and Kiln's CUDA backend has one compute stream per device, so a second worker would only queue behind the
 * first); concurrent requests gain by being batched together ({@link Batcher}). On CUDA each batch size is padded to a
 * power of two and, after two eager runs, captured once as a {@link CudaGraph} into input and output tensors
 * allocated once; later batches of that size are copied in and replayed (one launch). Padding rows is safe because an
 * evaluation-mode model treats each row alone. The predictor takes the model over: folding changes it in place.
 */
public final class Predictor implements AutoCloseable {
    /** Eager runs of a batch size before its graph is captured: they compile kernels, choose cuDNN plans and fill the pool. */
    static final int WARMUP = 2;
    /** Most graphs kept (one per padded batch size: 1, 2, 4, ... 128 fit). */
    private static final int MAX_GRAPHS = 8;
    /** Most blocks a capture may add to the allocator's pool before giving up (as GraphedStep). */
    private static final int MAX_POOL_TOP_UPS = 256;

    /** What to do beside evaluation mode and no autograd: fold batch norms, and replay CUDA graphs (ignored on the CPU). */
    public record Options(boolean foldBatchNorm, boolean cudaGraphs) {
        /** Fold, and use CUDA graphs on a GPU. */
        public static final Options DEFAULT = new Options(true, true);
    }

    private final Model model;
    private final Device device;
    private final int[] exampleShape;   // one example's shape, without the batch dimension
    private final int folded;
    private final boolean graphs;
    private final ReentrantLock lock = new ReentrantLock();
    private final Map<Integer, Graphed> graphed = new HashMap<>();   // by padded batch size
    private boolean closed;

    /** A batch size's static input and output and, once captured, its graph. */
    private static final class Graphed {
        Tensor input, output;
        CudaGraph graph;
        int eagerRuns;
    }

    /** A predictor with {@link Options#DEFAULT}; {@code example} is a batch (N, ...) of the inputs it will take. */
    public Predictor(Model model, Tensor example) { this(model, example, Options.DEFAULT); }

    public Predictor(Model model, Tensor example, Options options) {
        if (example.dim() < 2) throw new IllegalArgumentException("Predictor: the example must be a batch (N, ...), got shape " + Shape.str(example.shape()));
        this.model = model.eval();
        this.device = model.parameters().isEmpty() ? Device.CPU : model.parameters().getFirst().device();
        this.exampleShape = Arrays.copyOfRange(example.shape(), 1, example.dim());
        this.graphs = options.cudaGraphs() && device.isCuda();
        int n = 0;
        if (options.foldBatchNorm()) {
            float[] before = eager(example);
            n = ConvBatchNormFolding.fold(model);
            if (n > 0) requireSame(before, eager(example));
        }
        this.folded = n;
    }

    /**
     * The folded model must give the unfolded one's outputs up to float rounding (a folded convolution sums the same
     * products in another order); more means a batch norm was paired with a convolution whose output it does not take.
     */
    private static void requireSame(float[] before, float[] after) {
        double scale = 1, diff = 0;
        for (int i = 0; i < before.length; i++) {
            scale = Math.max(scale, Math.abs(before[i]));
            diff = Math.max(diff, Math.abs(before[i] - after[i]));
        }
        if (!(diff <= 1e-3 * scale)) {
            throw new IllegalStateException(String.format(Locale.ROOT, "Predictor: folding the batch norms changed the model's outputs (by up to %.3g):"
                    + " a batch norm named or placed after a convolution does not take its output; build it with foldBatchNorm off", diff));
        }
    }

    /** The device the model runs on (its parameters'). */
    public Device device() { return device; }

    /** One example's shape (the example batch's, without N). */
    public int[] exampleShape() { return exampleShape.clone(); }

    /** How many batch norms were folded into convolutions. */
    public int foldedBatchNorms() { return folded; }

    /** How many CUDA graphs have been captured (one per padded batch size seen enough times; 0 on the CPU). */
    public int capturedGraphs() {
        lock.lock();
        try {
            return (int) graphed.values().stream().filter(g -> g.graph != null).count();
        } finally {
            lock.unlock();
        }
    }

    /** The model's output for a batch {@code x} (N, ...example shape), as a float32 tensor on the CPU. Thread-safe. */
    public Tensor predict(Tensor x) {
        if (x.dim() != exampleShape.length + 1 || !Arrays.equals(Arrays.copyOfRange(x.shape(), 1, x.dim()), exampleShape) || x.size(0) < 1) {
            throw new IllegalArgumentException("Predictor: expected a batch (N, " + Shape.str(exampleShape).replaceAll("[()\\[\\]]", "")
                    + ") as the example, got shape " + Shape.str(x.shape()));
        }
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("Predictor used after close()");
            float[] values;
            int[] shape;
            try (GradMode ignored = GradMode.disabled(); MemoryScope scope = MemoryScope.open()) {
                Tensor out = graphs ? graphed(x) : model.forward(x.to(device));
                shape = out.shape();
                values = out.toFloatArray();
            }
            return Tensor.of(values, shape);   // made outside the scope, so it outlives it
        } finally {
            lock.unlock();
        }
    }

    private float[] eager(Tensor x) {
        try (GradMode ignored = GradMode.disabled(); MemoryScope scope = MemoryScope.open()) {
            return model.forward(x.to(device)).toFloatArray();
        }
    }

    /** x through the graph of its padded batch size (capturing it after the warm-up runs), or eagerly when too many sizes were seen. */
    private Tensor graphed(Tensor x) {
        int n = x.size(0), padded = n == 1 ? 1 : Integer.highestOneBit(n - 1) << 1;   // the next power of two
        Graphed g = graphed.get(padded);
        if (g == null) {
            if (graphed.size() >= MAX_GRAPHS) return model.forward(x.to(device));
            g = new Graphed();
            int[] shape = new int[exampleShape.length + 1];
            shape[0] = padded;
            System.arraycopy(exampleShape, 0, shape, 1, exampleShape.length);
            g.input = Tensor.zeros(shape, x.dtype(), device).keep();   // read by the graph on every replay: outlives all scopes
            graphed.put(padded, g);
        }
        g.input.narrow(0, 0, n).copyFrom(x.to(device));
        if (g.eagerRuns < WARMUP) {
            g.eagerRuns++;
            return model.forward(g.input).narrow(0, 0, n);
        }
        if (g.graph == null) capture(g);
        g.graph.replay();
        return g.output.narrow(0, 0, n);
    }

    private void capture(Graphed g) {
        Tensor input = g.input;
        Tensor[] output = new Tensor[1];
        Runnable body = () -> {
            // the forward's temporaries are freed inside the capture, to the graph's private pool
            try (MemoryScope inner = MemoryScope.open()) {
                output[0] = model.forward(input).detach().keep();
            }
        };
        CudaAllocator alloc = CudaDevice.get(device.index()).allocator();
        for (int attempt = 0; ; attempt++) {
            try {
                g.graph = CudaGraph.capture(device, body);
                g.output = output[0];
                return;
            } catch (CudaAllocator.CaptureNeedsMemory e) {
                if (attempt >= MAX_POOL_TOP_UPS) throw e;
                alloc.reserve(e.bytes());   // nothing of the aborted capture ran: add the missing block and try again
            }
        }
    }

    /** Releases the graphs and their static tensors; later calls fail. */
    @Override public void close() {
        lock.lock();
        try {
            if (closed) return;
            closed = true;
            for (Graphed g : graphed.values()) {
                if (g.graph != null) g.graph.close();
                if (g.output != null) g.output.close();
                g.input.close();
            }
            graphed.clear();
        } finally {
            lock.unlock();
        }
    }
}
