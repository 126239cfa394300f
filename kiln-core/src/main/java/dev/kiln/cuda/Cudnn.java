package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.backend.Conv2dParams;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.HashMap;
import java.util.Map;

import static dev.kiln.cuda.NativeLibrary.ADDR;
import static dev.kiln.cuda.NativeLibrary.DOUBLE;
import static dev.kiln.cuda.NativeLibrary.INT;
import static dev.kiln.cuda.NativeLibrary.PTR;
import static dev.kiln.cuda.NativeLibrary.SIZE_T;

/**
 * A cuDNN 9 handle (classic "legacy" API through the libcudnn.so.9 shim): convolution for the CUDA backend.
 *
 * <p>The hot loop creates no descriptors: {@link #conv} returns a plan per
 * geometry, made once and cached on this handle, holding its descriptors and (for convolution) the algorithm chosen
 * the first time each direction runs. Scratch memory comes from the caller's {@link WorkspaceProvider}.
 *
 * <p>Tensors are contiguous NCHW. A handle is not thread-safe: one per thread and device, made while the device's
 * context is current. Closing the handle closes its plans.
 */
public final class Cudnn extends NativeHandle {
    static final NativeLibrary LIB = new NativeLibrary("cuDNN", "cudnn", Cudnn::statusName, "libcudnn.so.9", "libcudnn.so");

    // ---- enum values, from cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h (cuDNN 9)
    /** cudnnDataType_t */
    static final int CUDNN_DATA_FLOAT = 0, CUDNN_DATA_DOUBLE = 1, CUDNN_DATA_HALF = 2, CUDNN_DATA_BFLOAT16 = 9;
    /** cudnnTensorFormat_t */
    static final int CUDNN_TENSOR_NCHW = 0;
    static final int CUDNN_TENSOR_NHWC = 1;
    /** cudnnConvolutionMode_t: cross-correlation is what deep learning calls convolution. */
    static final int CUDNN_CROSS_CORRELATION = 1;
    /**
     * cudnnMathType_t. Note CUDNN_DEFAULT_MATH lets float32 use TF32 tensor cores on Ampere and newer, so "no TF32"
     * must be CUDNN_FMA_MATH.
     */
    static final int CUDNN_DEFAULT_MATH = 0, CUDNN_TENSOR_OP_MATH = 1, CUDNN_FMA_MATH = 3;
    /**
     * cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (all three alike): int algo; cudnnStatus_t status; float time;
     * size_t memory; cudnnDeterminism_t determinism; cudnnMathType_t mathType; int reserved[3]. 48 bytes with padding.
     */
    static final long PERF_SIZE = 48, PERF_ALGO = 0, PERF_STATUS = 4, PERF_TIME = 8, PERF_MEMORY = 16,
            PERF_DETERMINISM = 24, PERF_MATH = 28;

    /** Raw handles, resolved on first use (only after {@link #LIB} has loaded). */
    static final class H {
        static final MethodHandle create = LIB.bind("cudnnCreate", ADDR);
        static final MethodHandle destroy = LIB.bind("cudnnDestroy", PTR);
        static final MethodHandle setStream = LIB.bind("cudnnSetStream", PTR, PTR);
        static final MethodHandle getVersion = LIB.bind("cudnnGetVersion", FunctionDescriptor.of(SIZE_T));
        static final MethodHandle getErrorString = LIB.bind("cudnnGetErrorString", FunctionDescriptor.of(ADDR, INT));

        static final MethodHandle createTensor = LIB.bind("cudnnCreateTensorDescriptor", ADDR);
        static final MethodHandle destroyTensor = LIB.bind("cudnnDestroyTensorDescriptor", PTR);
        static final MethodHandle setTensorNd = LIB.bind("cudnnSetTensorNdDescriptor", PTR, INT, INT, ADDR, ADDR);
        static final MethodHandle createFilter = LIB.bind("cudnnCreateFilterDescriptor", ADDR);
        static final MethodHandle destroyFilter = LIB.bind("cudnnDestroyFilterDescriptor", PTR);
        static final MethodHandle setFilterNd = LIB.bind("cudnnSetFilterNdDescriptor", PTR, INT, INT, INT, ADDR);
        static final MethodHandle createConv = LIB.bind("cudnnCreateConvolutionDescriptor", ADDR);
        static final MethodHandle destroyConv = LIB.bind("cudnnDestroyConvolutionDescriptor", PTR);
        static final MethodHandle setConv2d = LIB.bind("cudnnSetConvolution2dDescriptor", PTR, INT, INT, INT, INT, INT, INT, INT, INT);
        static final MethodHandle setConvGroupCount = LIB.bind("cudnnSetConvolutionGroupCount", PTR, INT);
        static final MethodHandle setConvMathType = LIB.bind("cudnnSetConvolutionMathType", PTR, INT);
        static final MethodHandle convOutputDim = LIB.bind("cudnnGetConvolution2dForwardOutputDim", PTR, PTR, PTR, ADDR, ADDR, ADDR, ADDR);

        static final MethodHandle getFwdAlgo = LIB.bind("cudnnGetConvolutionForwardAlgorithm_v7", PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR);
        static final MethodHandle getBwdDataAlgo = LIB.bind("cudnnGetConvolutionBackwardDataAlgorithm_v7", PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR);
        static final MethodHandle getBwdFilterAlgo = LIB.bind("cudnnGetConvolutionBackwardFilterAlgorithm_v7", PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR);
        static final MethodHandle findFwdAlgo = LIB.bind("cudnnFindConvolutionForwardAlgorithmEx",
                PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR, PTR, SIZE_T);
        static final MethodHandle findBwdDataAlgo = LIB.bind("cudnnFindConvolutionBackwardDataAlgorithmEx",
                PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR, PTR, SIZE_T);
        static final MethodHandle findBwdFilterAlgo = LIB.bind("cudnnFindConvolutionBackwardFilterAlgorithmEx",
                PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR, PTR, SIZE_T);
        static final MethodHandle fwdWorkspace = LIB.bind("cudnnGetConvolutionForwardWorkspaceSize", PTR, PTR, PTR, PTR, PTR, INT, ADDR);
        static final MethodHandle bwdDataWorkspace = LIB.bind("cudnnGetConvolutionBackwardDataWorkspaceSize", PTR, PTR, PTR, PTR, PTR, INT, ADDR);
        static final MethodHandle bwdFilterWorkspace = LIB.bind("cudnnGetConvolutionBackwardFilterWorkspaceSize", PTR, PTR, PTR, PTR, PTR, INT, ADDR);
        static final MethodHandle convForward = LIB.bind("cudnnConvolutionForward",
                PTR, ADDR, PTR, PTR, PTR, PTR, PTR, INT, PTR, SIZE_T, ADDR, PTR, PTR);
        static final MethodHandle convBackwardData = LIB.bind("cudnnConvolutionBackwardData",
                PTR, ADDR, PTR, PTR, PTR, PTR, PTR, INT, PTR, SIZE_T, ADDR, PTR, PTR);
        static final MethodHandle convBackwardFilter = LIB.bind("cudnnConvolutionBackwardFilter",
                PTR, ADDR, PTR, PTR, PTR, PTR, PTR, INT, PTR, SIZE_T, ADDR, PTR, PTR);
    }

    /** How a convolution's algorithm is chosen, once per geometry and direction. */
    public enum AlgoSearch {
        /** cudnnGetConvolution*Algorithm_v7: cuDNN's heuristics; runs nothing on the device, so safe anywhere. */
        HEURISTIC,
        /**
         * cudnnFindConvolution*AlgorithmEx: times the candidates on the device (synchronises, so never while a CUDA
         * graph is being captured) with scratch from the workspace provider, and keeps the fastest.
         */
        BENCHMARK
    }

    private volatile TimedChoices timedChoices;

    /** Where benchmarked choices are remembered (null: nowhere). */
    void setTimedChoices(TimedChoices cache) { this.timedChoices = cache; }

    TimedChoices timedChoices() { return timedChoices; }

    private final Arena arena = Arena.ofShared();
    /** Host scalars (alpha, beta, and the second pair batch norm backward takes), 8 bytes each. */
    private final MemorySegment scalars;
    final MemorySegment[] scalar = new MemorySegment[4];
    private AlgoSearch algoSearch = AlgoSearch.HEURISTIC;
    private long benchmarkWorkspaceLimit = 256L << 20;
    private final Map<ConvPlan.Key, ConvPlan> convPlans = new HashMap<>();
    private final Map<AttentionPlan.Key, AttentionPlan> attentionPlans = new HashMap<>();
    private boolean searchSuspended;

    private Cudnn(long handle) {
        super("cuDNN handle", handle);
        this.scalars = arena.allocate(32, 8);
        for (int i = 0; i < 4; i++) scalar[i] = scalars.asSlice(8L * i, 8);
    }

    /** Creates a handle on the calling thread's current CUDA context. */
    public static Cudnn create() {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            LIB.check("cudnnCreate", (int) H.create.invokeExact(out));
            return new Cudnn(out.get(ValueLayout.JAVA_LONG, 0));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** Whether libcudnn can be found on this machine. */
    public static boolean available() { return LIB.available(); }

    /** cudnnGetVersion: e.g. 91400 for 9.14.0. Needs no handle and no GPU. */
    public static long version() {
        LIB.lookup();
        try {
            return (long) H.getVersion.invokeExact();
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** Issues this handle's work on {@code stream} (a CUstream; 0 is the legacy default stream). */
    public void setStream(long stream) {
        try {
            LIB.check("cudnnSetStream", (int) H.setStream.invokeExact(handle(), stream));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** How convolution algorithms not yet chosen will be chosen (default {@link AlgoSearch#HEURISTIC}). */
    public void setAlgoSearch(AlgoSearch search, long benchmarkWorkspaceLimitBytes) {
        this.algoSearch = search;
        this.benchmarkWorkspaceLimit = benchmarkWorkspaceLimitBytes;
    }

    /**
     * While suspended (a CUDA graph capture: a search runs the candidates and synchronises) new choices take the
     * heuristic whatever {@link #setAlgoSearch} says.
     */
    public void setSearchSuspended(boolean suspended) { this.searchSuspended = suspended; }

    /** How the next new choice is made. */
    AlgoSearch algoSearch() { return searchSuspended ? AlgoSearch.HEURISTIC : algoSearch; }

    long benchmarkWorkspaceLimit() { return benchmarkWorkspaceLimit; }

    // ---- plans, one per geometry

    /**
     * The plan for a 2-D convolution of x (N, C, H, W) with w (K, C/groups, R, S): descriptors made once, algorithms
     * chosen on first use per direction. {@code allowTf32} lets float32 use TF32 tensor cores.
     */
    public ConvPlan conv(DType dtype, int[] xShape, int[] wShape, Conv2dParams p, boolean allowTf32) {
        return conv(dtype, xShape, wShape, p, allowTf32, false);
    }

    /** The plan for x, y channels-last and the filter KRSC when {@code channelsLast}, else all NCHW. */
    public ConvPlan conv(DType dtype, int[] xShape, int[] wShape, Conv2dParams p, boolean allowTf32, boolean channelsLast) {
        checkShape("conv x", xShape, 4);
        checkShape("conv w", wShape, 4);
        var key = new ConvPlan.Key(dtype, xShape[0], xShape[1], xShape[2], xShape[3], wShape[0], wShape[1], wShape[2], wShape[3],
                p, dtype == DType.FLOAT32 && allowTf32, channelsLast);
        ConvPlan plan = convPlans.get(key);
        if (plan == null) {
            plan = new ConvPlan(this, key);
            convPlans.put(key, plan);
        }
        return plan;
    }

    /** How many plans this handle holds (each owns a few descriptors). */
    public int cachedPlans() { return convPlans.size() + attentionPlans.size(); }

    /** The fused-attention plan for a geometry (its graphs built on first use per direction), cached on this handle. */
    AttentionPlan attention(AttentionPlan.Key key) { return attentionPlans.computeIfAbsent(key, AttentionPlan::new); }

    private static void checkShape(String what, int[] shape, int rank) {
        if (shape.length != rank) throw new IllegalArgumentException("cuDNN " + what + ": expected " + rank + " dims, got " + java.util.Arrays.toString(shape));
        for (int d : shape) if (d < 1) throw new IllegalArgumentException("cuDNN " + what + ": dims must be >= 1, got " + java.util.Arrays.toString(shape));
    }

    /** Writes alpha/beta in the scaling type cuDNN expects for {@code dtype} (double for double data, else float). */
    void setScalar(int i, DType dtype, double v) {
        if (dtype == DType.FLOAT64) scalar[i].set(ValueLayout.JAVA_DOUBLE, 0, v);
        else scalar[i].set(ValueLayout.JAVA_FLOAT, 0, (float) v);
    }

    @Override protected void destroy(long handle) {
        RuntimeException first = null;
        java.util.List<AutoCloseable> plans = new java.util.ArrayList<>(convPlans.values());
        plans.addAll(attentionPlans.values());
        for (AutoCloseable plan : plans) {
            try {
                plan.close();
            } catch (Exception e) {
                if (first == null) first = e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
        }
        convPlans.clear();
        attentionPlans.clear();
        try {
            LIB.check("cudnnDestroy", (int) H.destroy.invokeExact(handle));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        } finally {
            arena.close();
        }
        if (first != null) throw first;
    }

    // ---- descriptors

    static int dataType(DType t) {
        return switch (t) {
            case FLOAT32 -> CUDNN_DATA_FLOAT;
            case FLOAT64 -> CUDNN_DATA_DOUBLE;
            case FLOAT16 -> CUDNN_DATA_HALF;
            case BFLOAT16 -> CUDNN_DATA_BFLOAT16;
            case INT64, INT32, UINT8, BOOL -> throw new IllegalArgumentException("cuDNN: unsupported dtype " + t
                    + " (float32, float64, bfloat16, float16 only)");
        };
    }

    /** A cudnnTensorDescriptor_t (4 or more dims, explicit strides). */
    public static final class TensorDesc extends NativeHandle {
        public TensorDesc(DType dtype, int[] dims, int[] strides) {
            if (dims.length != strides.length || dims.length < 4) {   // checked before a descriptor exists to leak
                throw new IllegalArgumentException("cuDNN tensor descriptor: need >= 4 dims with matching strides, got "
                        + java.util.Arrays.toString(dims) + " / " + java.util.Arrays.toString(strides));
            }
            super("cuDNN tensor descriptor", createDesc("cudnnCreateTensorDescriptor", H.createTensor));
            try (Arena a = Arena.ofConfined()) {
                LIB.check("cudnnSetTensorNdDescriptor", (int) H.setTensorNd.invokeExact(address, dataType(dtype), dims.length,
                        a.allocateFrom(ValueLayout.JAVA_INT, dims), a.allocateFrom(ValueLayout.JAVA_INT, strides)));
            } catch (Throwable t) {
                close();
                throw NativeLibrary.rethrow(t);
            }
        }

        /** A contiguous NCHW descriptor. */
        public static TensorDesc nchw(DType dtype, int n, int c, int h, int w) {
            return new TensorDesc(dtype, new int[]{n, c, h, w}, new int[]{c * h * w, h * w, w, 1});
        }

        /** A channels-last descriptor: dims (N, C, H, W), memory order N, H, W, C. */
        public static TensorDesc nhwc(DType dtype, int n, int c, int h, int w) {
            return new TensorDesc(dtype, new int[]{n, c, h, w}, new int[]{c * h * w, 1, w * c, c});
        }

        @Override protected void destroy(long ptr) { destroyDesc("cudnnDestroyTensorDescriptor", H.destroyTensor, ptr); }
    }

    /** A cudnnFilterDescriptor_t, (K, C/groups, R, S) laid out KCRS, or KRSC when channelsLast. */
    public static final class FilterDesc extends NativeHandle {
        public FilterDesc(DType dtype, int k, int c, int r, int s, boolean channelsLast) {
            super("cuDNN filter descriptor", createDesc("cudnnCreateFilterDescriptor", H.createFilter));
            try (Arena a = Arena.ofConfined()) {
                LIB.check("cudnnSetFilterNdDescriptor", (int) H.setFilterNd.invokeExact(address, dataType(dtype),
                        channelsLast ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, 4,
                        a.allocateFrom(ValueLayout.JAVA_INT, k, c, r, s)));
            } catch (Throwable t) {
                close();
                throw NativeLibrary.rethrow(t);
            }
        }

        @Override protected void destroy(long ptr) { destroyDesc("cudnnDestroyFilterDescriptor", H.destroyFilter, ptr); }
    }

    /** A cudnnConvolutionDescriptor_t: 2-D cross-correlation, with groups and a math type. */
    public static final class ConvDesc extends NativeHandle {
        private int mathType = -1;

        public ConvDesc(Conv2dParams p, DType dtype, int mathType) {
            super("cuDNN convolution descriptor", createDesc("cudnnCreateConvolutionDescriptor", H.createConv));
            // float accumulation for 16-bit data ("pseudo half"), the data's own type otherwise
            int compute = dtype == DType.FLOAT64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
            try {
                LIB.check("cudnnSetConvolution2dDescriptor", (int) H.setConv2d.invokeExact(address, p.padH(), p.padW(), p.strideH(), p.strideW(),
                        p.dilationH(), p.dilationW(), CUDNN_CROSS_CORRELATION, compute));
                if (p.groups() != 1) LIB.check("cudnnSetConvolutionGroupCount", (int) H.setConvGroupCount.invokeExact(address, p.groups()));
            } catch (Throwable t) {
                close();
                throw NativeLibrary.rethrow(t);
            }
            setMathType(mathType);
        }

        /** cudnnSetConvolutionMathType, skipped when unchanged (it is a host-only call either way). */
        public void setMathType(int math) {
            if (math == mathType) return;
            try {
                LIB.check("cudnnSetConvolutionMathType", (int) H.setConvMathType.invokeExact(address, math));
            } catch (Throwable t) {
                throw NativeLibrary.rethrow(t);
            }
            mathType = math;
        }

        @Override protected void destroy(long ptr) { destroyDesc("cudnnDestroyConvolutionDescriptor", H.destroyConv, ptr); }
    }

    static long createDesc(String call, MethodHandle create) {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            LIB.check(call, (int) create.invokeExact(out));
            return out.get(ValueLayout.JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    static void destroyDesc(String call, MethodHandle destroy, long ptr) {
        if (ptr == 0) return;
        try {
            LIB.check(call, (int) destroy.invokeExact(ptr));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    // ---- status codes

    /** cudnnGetErrorString (cuDNN 9's codes are 1000s: 2000 BAD_PARAM, 3000 NOT_SUPPORTED, ...). */
    static String statusName(int status) {
        try {
            String s = NativeLibrary.cString((MemorySegment) H.getErrorString.invokeExact(status));
            if (!s.isEmpty()) return s;
        } catch (Throwable ignored) {
            // fall through
        }
        return "CUDNN_STATUS_" + status;
    }
}
