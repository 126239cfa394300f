package dev.kiln.cuda;

import dev.kiln.Settings;
import dev.kiln.DType;
import dev.kiln.backend.Conv2dParams;

/**
 * Convolutions (and 16-bit fused attention, {@link AttentionPlan}) through cuDNN, when the library is present: one handle per device on the device's stream, a plan
 * per geometry (descriptors and algorithm chosen once, cached on the handle), workspaces from the caching
 * allocator, returned as soon as the call is queued (stream order keeps them valid). float32 uses TF32 only when
 * {@link CudaDevice#allowTf32Conv()} says so for the device (on by default, as PyTorch's cudnn.allow_tf32); bfloat16 and float16 run
 * on tensor cores with float32 accumulation. Set {@code KILN_CUDNN=0} to use the im2col + GEMM kernels instead.
 * Algorithms found by the timed search ({@link Cuda#setCudnnBenchmark}) are kept in the kiln cache folder
 * ({@link TimedChoicesFile}; {@code KILN_CUDNN_ALGO_CACHE=0} keeps them in memory only).
 */
final class Dnn {
    private Dnn() {}

    private static final Cudnn[] HANDLES = new Cudnn[64];
    private static volatile boolean disabled = !Settings.get().cudnn();
    private static volatile Boolean present;

    static boolean available(DType t) {
        if (disabled) return false;
        boolean supported = switch (t) {
            // 16-bit data with float32 accumulation on tensor cores: what autocast's convolutions run on
            case FLOAT32, FLOAT64, BFLOAT16, FLOAT16 -> true;
            case INT64, INT32, UINT8, BOOL -> false;
        };
        if (!supported) return false;
        Boolean p = present;
        if (p == null) {
            try {
                p = Cudnn.available();
            } catch (RuntimeException | LinkageError e) {
                p = false;
            }
            present = p;
        }
        return p;
    }

    /** Tests switch cuDNN off to check the im2col + GEMM path on a machine that has cuDNN. */
    static void setEnabled(boolean enabled) { disabled = !enabled; }

    private static Cudnn handle(CudaDevice dev) {
        Cudnn h = HANDLES[dev.index()];
        if (h != null) return h;
        synchronized (HANDLES) {
            if (HANDLES[dev.index()] == null) {
                dev.makeCurrent();
                Cudnn c = Cudnn.create();
                c.setStream(dev.stream().address());
                c.setAlgoSearch(Cuda.cudnnBenchmark() ? Cudnn.AlgoSearch.BENCHMARK : Cudnn.AlgoSearch.HEURISTIC, benchmarkWorkspace(dev));
                if (Settings.get().cudnnAlgoCache()) {
                    c.setTimedChoices(new TimedChoicesFile(TimedChoicesFile.fileFor(KernelCache.cacheDir().getParent(), "cudnn", String.valueOf(Cudnn.version()), dev.name())));
                }
                HANDLES[dev.index()] = c;
            }
            return HANDLES[dev.index()];
        }
    }

    /** Hands out one workspace block per call and frees it after the call is queued. */
    private static final class Scratch implements WorkspaceProvider, AutoCloseable {
        private final CudaAllocator allocator;
        private CudaAllocator.Block block;

        Scratch(CudaAllocator allocator) { this.allocator = allocator; }

        @Override public long address(long bytes) {
            if (block != null) allocator.free(block);
            block = allocator.allocate(bytes);
            return block.address();
        }

        @Override public void close() {
            if (block != null) allocator.free(block);
            block = null;
        }
    }

    /**
     * The most workspace a benchmarked algorithm may use: a sixteenth of the device's memory, at most 1 GiB (taken
     * from the caching allocator once, then reused; the fastest weight gradients of a batch-1024 CNN want ~250 MB).
     */
    private static long benchmarkWorkspace(CudaDevice dev) { return Math.min(1L << 30, dev.totalMemory() / 16); }

    private interface Call { void run(ConvPlan plan, WorkspaceProvider ws); }

    private static void run(CudaDevice dev, DType t, int[] xShape, int[] wShape, Conv2dParams p, boolean channelsLast, Call call) {
        Cudnn h = handle(dev);
        synchronized (h) {
            dev.makeCurrent();
            // a search runs the candidates and synchronises: never inside a graph capture
            h.setSearchSuspended(dev.allocator().capturing());
            ConvPlan plan = h.conv(t, xShape, wShape, p, dev.allowTf32Conv(), channelsLast);
            try (Scratch s = new Scratch(dev.allocator())) {
                call.run(plan, s);
            }
        }
    }

    /** Attention calls cuDNN ran, forward and backward, for tests that check it took them. */
    static final java.util.concurrent.atomic.AtomicLong ATTENTION_FORWARDS = new java.util.concurrent.atomic.AtomicLong(),
            ATTENTION_BACKWARDS = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Fused attention through cuDNN, forward (device pointers q, k, v, o, lse) or backward (q, k, v, o, do, dq, dk, dv,
     * lse), laid out as {@code key} says. False, with nothing queued, when cuDNN has no engine for this geometry: the
     * caller runs its own kernels.
     */
    static boolean attention(CudaDevice dev, AttentionPlan.Key key, boolean forward, long... tensors) {
        Cudnn h = handle(dev);
        synchronized (h) {
            dev.makeCurrent();
            try (Scratch s = new Scratch(dev.allocator())) {
                if (!h.attention(key).run(h.handle(), forward, tensors, s)) return false;
            }
            (forward ? ATTENTION_FORWARDS : ATTENTION_BACKWARDS).incrementAndGet();
            return true;
        }
    }

    /** Whether new algorithm choices are timed ({@link Cuda#setCudnnBenchmark}): set on every handle made so far. */
    static void setBenchmark(boolean on) {
        synchronized (HANDLES) {
            for (Cudnn h : HANDLES) {
                if (h == null) continue;
                synchronized (h) {
                    h.setAlgoSearch(on ? Cudnn.AlgoSearch.BENCHMARK : Cudnn.AlgoSearch.HEURISTIC, h.benchmarkWorkspaceLimit());
                }
            }
        }
    }

    /**
     * y = conv(x, w) without bias (device pointers: x, y NCHW and w KCRS, or when {@code channelsLast} x, y NHWC and w
     * KRSC); the caller adds bias and ReLU in its epilogue.
     */
    static void forward(CudaDevice dev, DType t, int[] xShape, int[] wShape, Conv2dParams p, boolean channelsLast, long x, long w, long y) {
        run(dev, t, xShape, wShape, p, channelsLast, (plan, s) -> plan.forward(x, w, y, 1, 0, s));
    }

    /** gx = the input gradient from gy and w, plus beta times gx as it was (beta 0 or 1). */
    static void backwardData(CudaDevice dev, DType t, int[] xShape, int[] wShape, Conv2dParams p, boolean channelsLast, long gy, long w, long gx,
                             double beta) {
        run(dev, t, xShape, wShape, p, channelsLast, (plan, s) -> plan.backwardData(gy, w, gx, 1, beta, s));
    }

    /** gw = the weight gradient from x and gy. */
    static void backwardFilter(CudaDevice dev, DType t, int[] xShape, int[] wShape, Conv2dParams p, boolean channelsLast, long x, long gy, long gw) {
        run(dev, t, xShape, wShape, p, channelsLast, (plan, s) -> plan.backwardFilter(x, gy, gw, 1, 0, s));
    }
}
