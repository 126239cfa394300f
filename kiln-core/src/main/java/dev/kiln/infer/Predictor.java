package dev.kiln.infer;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.MemoryScope;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.cpu.WeightCache;
import dev.kiln.cuda.CudaAllocator;
import dev.kiln.cuda.CudaDevice;
import dev.kiln.cuda.CudaGraph;
import dev.kiln.cuda.CudaStream;
import dev.kiln.nn.Model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.BlockingDeque;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A model made ready to answer requests: evaluation mode, no autograd, batch norms folded into the convolutions before
 * them ({@link ConvBatchNormFolding}, checked on the example input against the unfolded outputs), and safe to call from
 * many threads.
 * <pre>{@code
 * try (Predictor p = new Predictor(model, Tensor.zeros(1, 1, 28, 28))) {
 *     Tensor logits = p.predict(images);   // (N, classes), on the CPU
 * }
 * }</pre>
 * On CUDA, 4-D (image) inputs run channels-last ({@link Model#channelsLast(boolean)}). On the CPU calls are serialised
 * (the backend already spreads one op over every core), and in float32 the convolutions pack their weights for the CPU
 * kernels at the first call and keep them ({@link WeightCache}: as many floats again as those weights). On CUDA each batch size is
 * padded to a power of two and, after two eager runs, captured as a {@link CudaGraph} into an input and an output
 * allocated once; later batches of that size are copied in, replayed and copied out on a {@link CudaStream} of their
 * own. Concurrent callers each take one of {@link Options#lanes()} lanes, every lane with its own stream and its own
 * graph per batch size, so their replays run side by side instead of queueing on the device's one compute stream;
 * the eager runs and captures (the device's stream) wait for running replays and hold the others back. Padding rows
 * is safe because an evaluation-mode model treats each row alone. The predictor takes the model over: folding changes
 * it in place, and parameters changed after the first call are not seen on the CPU (make a new predictor).
 */
public final class Predictor implements AutoCloseable {
    /** Eager runs of a batch size before its graph is captured: they compile kernels, choose cuDNN plans and fill the pool. */
    static final int WARMUP = 2;
    /** Most graphs a lane keeps (one per padded batch size: 1, 2, 4, ... 128 fit). */
    private static final int MAX_GRAPHS = 8;
    /** Most blocks a capture may add to the allocator's pool before giving up (as GraphedStep). */
    private static final int MAX_POOL_TOP_UPS = 256;
    private static final System.Logger LOG = dev.kiln.Logging.logger(Predictor.class);

    /**
     * What to do beside evaluation mode and no autograd: fold batch norms, replay CUDA graphs (ignored on the CPU), how
     * many callers may replay side by side on a GPU (each lane keeps its own graphs: memory grows with the lanes), and
     * the dtype the model computes in: float32, or bfloat16 / float16, to which the parameters are converted once (after
     * folding, which is done in float32) and each batch on the device, the outputs coming back as float32 (PyTorch's
     * {@code model.half()} for inference; meant for GPUs, where 16-bit products run on tensor cores).
     */
    public record Options(boolean foldBatchNorm, boolean cudaGraphs, int lanes, DType precision) {
        /** Fold, and use CUDA graphs on a GPU with four lanes, in float32. */
        public static final Options DEFAULT = new Options(true, true, 4);

        public Options {
            if (lanes < 1) throw new IllegalArgumentException("Predictor.Options: lanes must be at least 1, got " + lanes);
            if (precision != DType.FLOAT32 && precision != DType.BFLOAT16 && precision != DType.FLOAT16) {
                throw new IllegalArgumentException("Predictor.Options: the precision must be float32, bfloat16 or float16, got " + precision);
            }
        }

        /** In float32. */
        public Options(boolean foldBatchNorm, boolean cudaGraphs, int lanes) { this(foldBatchNorm, cudaGraphs, lanes, DType.FLOAT32); }

        /** Four lanes, float32. */
        public Options(boolean foldBatchNorm, boolean cudaGraphs) { this(foldBatchNorm, cudaGraphs, 4); }

        /** These options computing in {@code dtype}. */
        public Options withPrecision(DType dtype) { return new Options(foldBatchNorm, cudaGraphs, lanes, dtype); }
    }

    private final Model model;
    private final Device device;
    private final int[] exampleShape;   // one example's shape, without the batch dimension
    private final int folded;
    private final boolean graphs;
    private final DType precision;   // the model's dtype once the constructor has folded in float32
    /** Write: work on the device's stream (eager runs, captures, closing); read: a lane's copies and replay. */
    private final ReentrantReadWriteLock deviceLock = new ReentrantReadWriteLock();
    /** Free lanes, the last used first: one caller at a time keeps using one lane's graphs. */
    private final BlockingDeque<Lane> lanes = new LinkedBlockingDeque<>();
    private final List<Lane> allLanes = new ArrayList<>();
    private final Map<Integer, Integer> eagerRuns = new HashMap<>();   // by padded batch size, under the write lock
    private volatile boolean closed;
    /** On the CPU in float32: the convolutions' packed weights, kept across calls (null while the constructor checks the fold). */
    private final WeightCache packedWeights;

    /** One caller's stream and its graphs, by padded batch size. */
    private static final class Lane {
        final CudaStream stream;
        final Map<Integer, Graphed> graphed = new HashMap<>();

        Lane(CudaStream stream) { this.stream = stream; }
    }

    /** A batch size's static input and float32 output, and its graph. */
    private record Graphed(Tensor input, Tensor output, CudaGraph graph) {}

    /** A predictor with {@link Options#DEFAULT}; {@code example} is a batch (N, ...) of the inputs it will take. */
    public Predictor(Model model, Tensor example) { this(model, example, Options.DEFAULT); }

    public Predictor(Model model, Tensor example, Options options) {
        if (example.dim() < 2) throw new IllegalArgumentException("Predictor: the example must be a batch (N, ...), got shape " + Shape.str(example.shape()));
        this.model = model.eval();
        this.device = model.parameters().isEmpty() ? Device.CPU : model.parameters().getFirst().device();
        this.exampleShape = Arrays.copyOfRange(example.shape(), 1, example.dim());
        this.graphs = options.cudaGraphs() && device.isCuda();
        this.precision = options.precision();
        // images on CUDA: channels-last activations, the layout of cuDNN's fastest kernels (resnet18 at batch 256 on an
        // H200: 16% more images/s than NCHW in float32)
        if (device.isCuda() && example.dim() == 4) model.channelsLast(true);
        int n = 0;
        if (options.foldBatchNorm()) {
            float[] before = eager(example);
            n = ConvBatchNormFolding.fold(model);
            if (n > 0) requireSame(before, eager(example));
        }
        this.folded = n;
        if (precision != DType.FLOAT32) {
            model.to(precision);
            if (!device.isCuda()) {   // said, not refused: a CPU run is how one checks a 16-bit model before a GPU
                LOG.log(System.Logger.Level.WARNING, "Predictor: " + precision + " on the CPU runs through the general (scalar) "
                        + "kernels and is several times slower than float32");
            }
        }
        this.packedWeights = device.isCuda() || precision != DType.FLOAT32 ? null : new WeightCache();
        if (graphs) {   // after the checks that may refuse the model, so a refusal leaves no stream behind
            for (int i = 0; i < options.lanes(); i++) allLanes.add(new Lane(CudaStream.create(device)));
            lanes.addAll(allLanes);
        }
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

    /** The dtype the model computes in (its parameters'); outputs are float32 whatever it is. */
    public DType precision() { return precision; }

    /** How many CUDA graphs have been captured (each lane's, one per padded batch size seen enough times; 0 on the CPU). */
    public int capturedGraphs() {
        deviceLock.writeLock().lock();
        try {
            return allLanes.stream().mapToInt(l -> l.graphed.size()).sum();
        } finally {
            deviceLock.writeLock().unlock();
        }
    }

    /** The model's output for a batch {@code x} (N, ...example shape), as a float32 tensor on the CPU. Thread-safe. */
    public Tensor predict(Tensor x) {
        if (x.dim() != exampleShape.length + 1 || !Arrays.equals(Arrays.copyOfRange(x.shape(), 1, x.dim()), exampleShape) || x.size(0) < 1) {
            throw new IllegalArgumentException("Predictor: expected a batch (N, " + Shape.str(exampleShape).replaceAll("[()\\[\\]]", "")
                    + ") as the example, got shape " + Shape.str(x.shape()));
        }
        if (!graphs || x.dtype() != DType.FLOAT32) return eagerLocked(x);
        Lane lane;
        try {
            lane = lanes.takeFirst();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Predictor: interrupted while waiting for a free lane", e);
        }
        try {
            int n = x.size(0), padded = n == 1 ? 1 : Integer.highestOneBit(n - 1) << 1;   // the next power of two
            Graphed g = lane.graphed.get(padded);
            if (g == null) {
                deviceLock.writeLock().lock();
                try {
                    requireOpen();
                    int runs = eagerRuns.getOrDefault(padded, 0);
                    if (runs < WARMUP || lane.graphed.size() >= MAX_GRAPHS) {
                        eagerRuns.put(padded, runs + 1);
                        return eager(x, padded, precision);
                    }
                    g = capture(padded);
                    lane.graphed.put(padded, g);
                } finally {
                    deviceLock.writeLock().unlock();
                }
            }
            return replay(lane, g, x, n);
        } finally {
            lanes.addFirst(lane);
        }
    }

    /** x through the lane's graph, on the lane's stream: the device's stream is not touched (unless x lives on it). */
    private Tensor replay(Lane lane, Graphed g, Tensor x, int n) {
        int rowIn = (int) (g.input().numel() / g.input().size(0)), rowOut = (int) (g.output().numel() / g.output().size(0));
        float[] out = new float[n * rowOut];
        deviceLock.readLock().lock();
        try {
            requireOpen();
            if (x.device().equals(device) && x.isContiguous()) {
                lane.stream.copyIn(x, n * rowIn, g.input());
            } else {
                lane.stream.copyIn(x.device().isCuda() ? x.to(Device.CPU).toFloatArray() : x.toFloatArray(), n * rowIn, g.input());
            }
            lane.stream.replay(g.graph());
            lane.stream.copyOut(g.output(), n * rowOut, out);
        } finally {
            deviceLock.readLock().unlock();
        }
        int[] shape = g.output().shape();
        shape[0] = n;
        return Tensor.of(out, shape);
    }

    /** The eager forward, as a float32 CPU tensor, with the device to itself. */
    private Tensor eagerLocked(Tensor x) {
        deviceLock.writeLock().lock();
        try {
            requireOpen();
            return eager(x, x.size(0), precision);
        } finally {
            deviceLock.writeLock().unlock();
        }
    }

    /**
     * The eager forward of x (floating inputs cast to {@code dtype}, the model's) padded to {@code rows} (the shapes a
     * capture will see), its first N rows as a float32 CPU tensor.
     */
    private Tensor eager(Tensor x, int rows, DType dtype) {
        float[] values;
        int[] shape;
        try (GradMode ignored = GradMode.disabled(); MemoryScope scope = MemoryScope.open()) {
            Tensor in = x.to(device);
            if (in.dtype().isFloating() && in.dtype() != dtype) in = in.to(dtype);   // token ids stay integers
            if (rows > x.size(0)) {
                int[] s = in.shape();
                s[0] = rows - x.size(0);
                in = Tensor.cat(List.of(in, Tensor.zeros(s, in.dtype(), device)), 0);
            }
            Tensor batch = in;
            Tensor out = (packedWeights == null ? model.forward(batch) : packedWeights.around(() -> model.forward(batch))).narrow(0, 0, x.size(0));
            shape = out.shape();
            values = out.toFloatArray();
        }
        return Tensor.of(values, shape);   // made outside the scope, so it outlives it
    }

    /** The float32 model's outputs (the fold's check, before any conversion). */
    private float[] eager(Tensor x) { return eager(x, x.size(0), DType.FLOAT32).toFloatArray(); }

    /** A graph of the forward for batches of {@code padded} rows, its input and float32 output allocated once. */
    private Graphed capture(int padded) {
        int[] shape = new int[exampleShape.length + 1];
        shape[0] = padded;
        System.arraycopy(exampleShape, 0, shape, 1, exampleShape.length);
        Tensor input = Tensor.zeros(shape, DType.FLOAT32, device).keep();   // read by the graph on every replay: outlives all scopes
        Tensor[] output = new Tensor[1];
        Runnable body = () -> {
            // the forward's temporaries are freed inside the capture, to the graph's private pool
            try (GradMode ignored = GradMode.disabled(); MemoryScope inner = MemoryScope.open()) {
                output[0] = model.forward(input.to(precision)).to(DType.FLOAT32).contiguous().detach().keep();
            }
        };
        CudaAllocator alloc = CudaDevice.get(device.index()).allocator();
        for (int attempt = 0; ; attempt++) {
            try {
                CudaGraph graph = CudaGraph.capture(device, body);
                return new Graphed(input, output[0], graph);
            } catch (CudaAllocator.CaptureNeedsMemory e) {
                if (attempt >= MAX_POOL_TOP_UPS) {
                    input.close();
                    throw e;
                }
                alloc.reserve(e.bytes());   // nothing of the aborted capture ran: add the missing block and try again
            }
        }
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("Predictor used after close()");
    }

    /** Releases the lanes, their graphs and static tensors; later calls fail. */
    @Override public void close() {
        deviceLock.writeLock().lock();
        try {
            if (closed) return;
            closed = true;
            for (Lane lane : allLanes) {
                lane.stream.close();
                for (Graphed g : lane.graphed.values()) {
                    g.graph().close();
                    g.output().close();
                    g.input().close();
                }
                lane.graphed.clear();
            }
            if (packedWeights != null) packedWeights.clear();   // a closed predictor kept by its caller holds no copies
        } finally {
            deviceLock.writeLock().unlock();
        }
    }
}
