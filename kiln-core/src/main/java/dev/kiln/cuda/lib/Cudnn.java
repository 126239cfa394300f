package dev.kiln.cuda.lib;

import dev.kiln.DType;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.cuda.CudaException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.kiln.cuda.lib.Bind.ADDR;
import static dev.kiln.cuda.lib.Bind.DOUBLE;
import static dev.kiln.cuda.lib.Bind.INT;
import static dev.kiln.cuda.lib.Bind.PTR;
import static dev.kiln.cuda.lib.Bind.SIZE_T;
import static dev.kiln.cuda.lib.Bind.status;

/**
 * A cuDNN 9 handle (classic "legacy" API through the libcudnn.so.9 shim): convolution, pooling and batch norm for the
 * CUDA backend.
 *
 * <p>The hot loop creates no descriptors: {@link #conv}, {@link #pool} and {@link #batchNorm} return a plan per
 * geometry, made once and cached on this handle, holding its descriptors and (for convolution) the algorithm chosen
 * the first time each direction runs. Scratch memory comes from the caller's {@link WorkspaceProvider}.
 *
 * <p>Tensors are contiguous NCHW. A handle is not thread-safe: one per thread and device, made while the device's
 * context is current. Closing the handle closes its plans.
 */
public final class Cudnn implements AutoCloseable {
    static final Bind.Library LIB = new Bind.Library("cudnn", "libcudnn.so.9", "libcudnn.so");

    // ---- enum values, from cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h (cuDNN 9)
    /** cudnnDataType_t */
    static final int CUDNN_DATA_FLOAT = 0, CUDNN_DATA_DOUBLE = 1, CUDNN_DATA_HALF = 2, CUDNN_DATA_BFLOAT16 = 9;
    /** cudnnTensorFormat_t */
    static final int CUDNN_TENSOR_NCHW = 0;
    /** cudnnConvolutionMode_t: cross-correlation is what deep learning calls convolution. */
    static final int CUDNN_CROSS_CORRELATION = 1;
    /**
     * cudnnMathType_t. Note CUDNN_DEFAULT_MATH lets float32 use TF32 tensor cores on Ampere and newer, so "no TF32"
     * must be CUDNN_FMA_MATH.
     */
    static final int CUDNN_DEFAULT_MATH = 0, CUDNN_TENSOR_OP_MATH = 1, CUDNN_FMA_MATH = 3;
    /** cudnnPoolingMode_t */
    static final int CUDNN_POOLING_MAX = 0, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING = 1,
            CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING = 2, CUDNN_POOLING_MAX_DETERMINISTIC = 3;
    /** cudnnNanPropagation_t */
    static final int CUDNN_NOT_PROPAGATE_NAN = 0, CUDNN_PROPAGATE_NAN = 1;
    /** cudnnBatchNormMode_t: one mean/variance per channel over (N, H, W). */
    static final int CUDNN_BATCHNORM_SPATIAL = 1;

    /**
     * cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (all three alike): int algo; cudnnStatus_t status; float time;
     * size_t memory; cudnnDeterminism_t determinism; cudnnMathType_t mathType; int reserved[3]. 48 bytes with padding.
     */
    static final long PERF_SIZE = 48, PERF_ALGO = 0, PERF_STATUS = 4, PERF_TIME = 8, PERF_MEMORY = 16,
            PERF_DETERMINISM = 24, PERF_MATH = 28;

    /** Raw handles, resolved on first use (only after {@link #LIB} has loaded). */
    static final class H {
        static final MethodHandle create = LIB.bind("cudnnCreate", status(ADDR));
        static final MethodHandle destroy = LIB.bind("cudnnDestroy", status(PTR));
        static final MethodHandle setStream = LIB.bind("cudnnSetStream", status(PTR, PTR));
        static final MethodHandle getVersion = LIB.bind("cudnnGetVersion", FunctionDescriptor.of(SIZE_T));
        static final MethodHandle getErrorString = LIB.bind("cudnnGetErrorString", FunctionDescriptor.of(ADDR, INT));

        static final MethodHandle createTensor = LIB.bind("cudnnCreateTensorDescriptor", status(ADDR));
        static final MethodHandle destroyTensor = LIB.bind("cudnnDestroyTensorDescriptor", status(PTR));
        static final MethodHandle setTensorNd = LIB.bind("cudnnSetTensorNdDescriptor", status(PTR, INT, INT, ADDR, ADDR));
        static final MethodHandle createFilter = LIB.bind("cudnnCreateFilterDescriptor", status(ADDR));
        static final MethodHandle destroyFilter = LIB.bind("cudnnDestroyFilterDescriptor", status(PTR));
        static final MethodHandle setFilterNd = LIB.bind("cudnnSetFilterNdDescriptor", status(PTR, INT, INT, INT, ADDR));
        static final MethodHandle createConv = LIB.bind("cudnnCreateConvolutionDescriptor", status(ADDR));
        static final MethodHandle destroyConv = LIB.bind("cudnnDestroyConvolutionDescriptor", status(PTR));
        static final MethodHandle setConv2d = LIB.bind("cudnnSetConvolution2dDescriptor", status(PTR, INT, INT, INT, INT, INT, INT, INT, INT));
        static final MethodHandle setConvGroupCount = LIB.bind("cudnnSetConvolutionGroupCount", status(PTR, INT));
        static final MethodHandle setConvMathType = LIB.bind("cudnnSetConvolutionMathType", status(PTR, INT));
        static final MethodHandle convOutputDim = LIB.bind("cudnnGetConvolution2dForwardOutputDim", status(PTR, PTR, PTR, ADDR, ADDR, ADDR, ADDR));

        static final MethodHandle getFwdAlgo = LIB.bind("cudnnGetConvolutionForwardAlgorithm_v7", status(PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR));
        static final MethodHandle getBwdDataAlgo = LIB.bind("cudnnGetConvolutionBackwardDataAlgorithm_v7", status(PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR));
        static final MethodHandle getBwdFilterAlgo = LIB.bind("cudnnGetConvolutionBackwardFilterAlgorithm_v7", status(PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR));
        static final MethodHandle findFwdAlgo = LIB.bind("cudnnFindConvolutionForwardAlgorithmEx",
                status(PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR, PTR, SIZE_T));
        static final MethodHandle findBwdDataAlgo = LIB.bind("cudnnFindConvolutionBackwardDataAlgorithmEx",
                status(PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR, PTR, SIZE_T));
        static final MethodHandle findBwdFilterAlgo = LIB.bind("cudnnFindConvolutionBackwardFilterAlgorithmEx",
                status(PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR, PTR, SIZE_T));
        static final MethodHandle fwdWorkspace = LIB.bind("cudnnGetConvolutionForwardWorkspaceSize", status(PTR, PTR, PTR, PTR, PTR, INT, ADDR));
        static final MethodHandle bwdDataWorkspace = LIB.bind("cudnnGetConvolutionBackwardDataWorkspaceSize", status(PTR, PTR, PTR, PTR, PTR, INT, ADDR));
        static final MethodHandle bwdFilterWorkspace = LIB.bind("cudnnGetConvolutionBackwardFilterWorkspaceSize", status(PTR, PTR, PTR, PTR, PTR, INT, ADDR));
        static final MethodHandle convForward = LIB.bind("cudnnConvolutionForward",
                status(PTR, ADDR, PTR, PTR, PTR, PTR, PTR, INT, PTR, SIZE_T, ADDR, PTR, PTR));
        static final MethodHandle convBackwardData = LIB.bind("cudnnConvolutionBackwardData",
                status(PTR, ADDR, PTR, PTR, PTR, PTR, PTR, INT, PTR, SIZE_T, ADDR, PTR, PTR));
        static final MethodHandle convBackwardFilter = LIB.bind("cudnnConvolutionBackwardFilter",
                status(PTR, ADDR, PTR, PTR, PTR, PTR, PTR, INT, PTR, SIZE_T, ADDR, PTR, PTR));
        static final MethodHandle convBackwardBias = LIB.bind("cudnnConvolutionBackwardBias", status(PTR, ADDR, PTR, PTR, ADDR, PTR, PTR));
        static final MethodHandle addTensor = LIB.bind("cudnnAddTensor", status(PTR, ADDR, PTR, PTR, ADDR, PTR, PTR));

        static final MethodHandle createPool = LIB.bind("cudnnCreatePoolingDescriptor", status(ADDR));
        static final MethodHandle destroyPool = LIB.bind("cudnnDestroyPoolingDescriptor", status(PTR));
        static final MethodHandle setPool2d = LIB.bind("cudnnSetPooling2dDescriptor", status(PTR, INT, INT, INT, INT, INT, INT, INT, INT));
        static final MethodHandle poolForward = LIB.bind("cudnnPoolingForward", status(PTR, PTR, ADDR, PTR, PTR, ADDR, PTR, PTR));
        static final MethodHandle poolBackward = LIB.bind("cudnnPoolingBackward",
                status(PTR, PTR, ADDR, PTR, PTR, PTR, PTR, PTR, PTR, ADDR, PTR, PTR));

        static final MethodHandle deriveBn = LIB.bind("cudnnDeriveBNTensorDescriptor", status(PTR, PTR, INT));
        static final MethodHandle bnForwardTraining = LIB.bind("cudnnBatchNormalizationForwardTraining",
                status(PTR, INT, ADDR, ADDR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, DOUBLE, PTR, PTR, DOUBLE, PTR, PTR));
        static final MethodHandle bnForwardInference = LIB.bind("cudnnBatchNormalizationForwardInference",
                status(PTR, INT, ADDR, ADDR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, DOUBLE));
        static final MethodHandle bnBackward = LIB.bind("cudnnBatchNormalizationBackward",
                status(PTR, INT, ADDR, ADDR, ADDR, ADDR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, DOUBLE, PTR, PTR));
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

    /**
     * Remembers the algorithms {@link AlgoSearch#BENCHMARK} found, across runs, so a process that sees a geometry
     * again skips the search (and so a profiler run gets the algorithms a plain run got). Keys describe direction,
     * dtype, shapes, convolution parameters and TF32; the implementation scopes them to a device and cuDNN version.
     */
    public interface AlgoCache {
        /** {algo, mathType}, or null. */
        int[] get(String key);

        void put(String key, int algo, int mathType);
    }

    private volatile AlgoCache algoCache;

    /** Where benchmarked choices are remembered (null: nowhere). */
    public void setAlgoCache(AlgoCache cache) { this.algoCache = cache; }

    AlgoCache algoCache() { return algoCache; }

    private final Arena arena = Arena.ofShared();
    private final long handle;
    /** Host scalars (alpha, beta, and the second pair batch norm backward takes), 8 bytes each. */
    private final MemorySegment scalars;
    final MemorySegment[] scalar = new MemorySegment[4];
    private AlgoSearch algoSearch = AlgoSearch.HEURISTIC;
    private long benchmarkWorkspaceLimit = 256L << 20;
    private final Map<ConvPlan.Key, ConvPlan> convPlans = new HashMap<>();
    private final Map<PoolPlan.Key, PoolPlan> poolPlans = new HashMap<>();
    private final Map<BatchNormPlan.Key, BatchNormPlan> bnPlans = new HashMap<>();
    private boolean closed;

    private Cudnn(long handle) {
        this.handle = handle;
        this.scalars = arena.allocate(32, 8);
        for (int i = 0; i < 4; i++) scalar[i] = scalars.asSlice(8L * i, 8);
    }

    /** Creates a handle on the calling thread's current CUDA context. */
    public static Cudnn create() {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            check("cudnnCreate", (int) H.create.invokeExact(out));
            return new Cudnn(out.get(ValueLayout.JAVA_LONG, 0));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
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
            throw Bind.rethrow(t);
        }
    }

    /** Issues this handle's work on {@code stream} (a CUstream; 0 is the legacy default stream). */
    public void setStream(long stream) {
        try {
            check("cudnnSetStream", (int) H.setStream.invokeExact(handle(), stream));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    /** How convolution algorithms not yet chosen will be chosen (default {@link AlgoSearch#HEURISTIC}). */
    public void setAlgoSearch(AlgoSearch search, long benchmarkWorkspaceLimitBytes) {
        this.algoSearch = search;
        this.benchmarkWorkspaceLimit = benchmarkWorkspaceLimitBytes;
    }

    AlgoSearch algoSearch() { return algoSearch; }

    long benchmarkWorkspaceLimit() { return benchmarkWorkspaceLimit; }

    public long handle() {
        if (closed) throw new IllegalStateException("cuDNN handle is closed");
        return handle;
    }

    // ---- plans, one per geometry

    /**
     * The plan for a 2-D convolution of x (N, C, H, W) with w (K, C/groups, R, S): descriptors made once, algorithms
     * chosen on first use per direction. {@code allowTf32} lets float32 use TF32 tensor cores.
     */
    public ConvPlan conv(DType dtype, int[] xShape, int[] wShape, Conv2dParams p, boolean allowTf32) {
        checkShape("conv x", xShape, 4);
        checkShape("conv w", wShape, 4);
        var key = new ConvPlan.Key(dtype, xShape[0], xShape[1], xShape[2], xShape[3], wShape[0], wShape[1], wShape[2], wShape[3],
                p, dtype == DType.FLOAT32 && allowTf32);
        ConvPlan plan = convPlans.get(key);
        if (plan == null) {
            plan = new ConvPlan(this, key);
            convPlans.put(key, plan);
        }
        return plan;
    }

    /** The plan for 2-D pooling of x (N, C, H, W). */
    public PoolPlan pool(DType dtype, int[] xShape, Pool2dParams p, PoolPlan.Mode mode) {
        checkShape("pool x", xShape, 4);
        var key = new PoolPlan.Key(dtype, xShape[0], xShape[1], xShape[2], xShape[3], p, mode);
        PoolPlan plan = poolPlans.get(key);
        if (plan == null) {
            plan = new PoolPlan(this, key);
            poolPlans.put(key, plan);
        }
        return plan;
    }

    /** The plan for spatial batch norm over x (N, C, H, W) (a (N, C) input is (N, C, 1, 1)). */
    public BatchNormPlan batchNorm(DType dtype, int[] xShape) {
        int[] s = xShape.length == 2 ? new int[]{xShape[0], xShape[1], 1, 1} : xShape;
        checkShape("batch norm x", s, 4);
        var key = new BatchNormPlan.Key(dtype, s[0], s[1], s[2], s[3]);
        BatchNormPlan plan = bnPlans.get(key);
        if (plan == null) {
            plan = new BatchNormPlan(this, key);
            bnPlans.put(key, plan);
        }
        return plan;
    }

    /** How many plans this handle holds (each owns a few descriptors). */
    public int cachedPlans() { return convPlans.size() + poolPlans.size() + bnPlans.size(); }

    private static void checkShape(String what, int[] shape, int rank) {
        if (shape.length != rank) throw new IllegalArgumentException("cuDNN " + what + ": expected " + rank + " dims, got " + java.util.Arrays.toString(shape));
        for (int d : shape) if (d < 1) throw new IllegalArgumentException("cuDNN " + what + ": dims must be >= 1, got " + java.util.Arrays.toString(shape));
    }

    /** Writes alpha/beta in the scaling type cuDNN expects for {@code dtype} (double for double data, else float). */
    void setScalar(int i, DType dtype, double v) {
        if (dtype == DType.FLOAT64) scalar[i].set(ValueLayout.JAVA_DOUBLE, 0, v);
        else scalar[i].set(ValueLayout.JAVA_FLOAT, 0, (float) v);
    }

    @Override
    public void close() {
        if (closed) return;
        List<AutoCloseable> plans = new ArrayList<>();
        plans.addAll(convPlans.values());
        plans.addAll(poolPlans.values());
        plans.addAll(bnPlans.values());
        RuntimeException first = null;
        for (AutoCloseable c : plans) {
            try {
                c.close();
            } catch (Exception e) {
                if (first == null) first = e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
        }
        convPlans.clear();
        poolPlans.clear();
        bnPlans.clear();
        closed = true;
        try {
            check("cudnnDestroy", (int) H.destroy.invokeExact(handle));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
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
    public static final class TensorDesc implements AutoCloseable {
        final long ptr;
        private boolean closed;

        public TensorDesc(DType dtype, int[] dims, int[] strides) {
            if (dims.length != strides.length || dims.length < 4) {
                throw new IllegalArgumentException("cuDNN tensor descriptor: need >= 4 dims with matching strides, got "
                        + java.util.Arrays.toString(dims) + " / " + java.util.Arrays.toString(strides));
            }
            this.ptr = createDesc("cudnnCreateTensorDescriptor", H.createTensor);
            try (Arena a = Arena.ofConfined()) {
                check("cudnnSetTensorNdDescriptor", (int) H.setTensorNd.invokeExact(ptr, dataType(dtype), dims.length,
                        a.allocateFrom(ValueLayout.JAVA_INT, dims), a.allocateFrom(ValueLayout.JAVA_INT, strides)));
            } catch (Throwable t) {
                close();
                throw Bind.rethrow(t);
            }
        }

        private TensorDesc(long ptr) { this.ptr = ptr; }

        /** Takes ownership of a descriptor made elsewhere (e.g. by cudnnDeriveBNTensorDescriptor). */
        static TensorDesc wrap(long ptr) { return new TensorDesc(ptr); }

        /** A contiguous NCHW descriptor. */
        public static TensorDesc nchw(DType dtype, int n, int c, int h, int w) {
            return new TensorDesc(dtype, new int[]{n, c, h, w}, new int[]{c * h * w, h * w, w, 1});
        }

        public long ptr() { return ptr; }

        @Override public void close() {
            if (closed) return;
            closed = true;
            destroyDesc("cudnnDestroyTensorDescriptor", H.destroyTensor, ptr);
        }
    }

    /** A cudnnFilterDescriptor_t, (K, C/groups, R, S) in NCHW. */
    public static final class FilterDesc implements AutoCloseable {
        final long ptr;
        private boolean closed;

        public FilterDesc(DType dtype, int k, int c, int r, int s) {
            this.ptr = createDesc("cudnnCreateFilterDescriptor", H.createFilter);
            try (Arena a = Arena.ofConfined()) {
                check("cudnnSetFilterNdDescriptor", (int) H.setFilterNd.invokeExact(ptr, dataType(dtype), CUDNN_TENSOR_NCHW, 4,
                        a.allocateFrom(ValueLayout.JAVA_INT, k, c, r, s)));
            } catch (Throwable t) {
                close();
                throw Bind.rethrow(t);
            }
        }

        public long ptr() { return ptr; }

        @Override public void close() {
            if (closed) return;
            closed = true;
            destroyDesc("cudnnDestroyFilterDescriptor", H.destroyFilter, ptr);
        }
    }

    /** A cudnnConvolutionDescriptor_t: 2-D cross-correlation, with groups and a math type. */
    public static final class ConvDesc implements AutoCloseable {
        final long ptr;
        private int mathType = -1;
        private boolean closed;

        public ConvDesc(Conv2dParams p, DType dtype, int mathType) {
            this.ptr = createDesc("cudnnCreateConvolutionDescriptor", H.createConv);
            // float accumulation for 16-bit data ("pseudo half"), the data's own type otherwise
            int compute = dtype == DType.FLOAT64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
            try {
                check("cudnnSetConvolution2dDescriptor", (int) H.setConv2d.invokeExact(ptr, p.padH(), p.padW(), p.strideH(), p.strideW(),
                        p.dilationH(), p.dilationW(), CUDNN_CROSS_CORRELATION, compute));
                if (p.groups() != 1) check("cudnnSetConvolutionGroupCount", (int) H.setConvGroupCount.invokeExact(ptr, p.groups()));
            } catch (Throwable t) {
                close();
                throw Bind.rethrow(t);
            }
            setMathType(mathType);
        }

        /** cudnnSetConvolutionMathType, skipped when unchanged (it is a host-only call either way). */
        public void setMathType(int math) {
            if (math == mathType) return;
            try {
                check("cudnnSetConvolutionMathType", (int) H.setConvMathType.invokeExact(ptr, math));
            } catch (Throwable t) {
                throw Bind.rethrow(t);
            }
            mathType = math;
        }

        public long ptr() { return ptr; }

        @Override public void close() {
            if (closed) return;
            closed = true;
            destroyDesc("cudnnDestroyConvolutionDescriptor", H.destroyConv, ptr);
        }
    }

    /** A cudnnPoolingDescriptor_t, 2-D. */
    public static final class PoolDesc implements AutoCloseable {
        final long ptr;
        private boolean closed;

        public PoolDesc(int mode, Pool2dParams p) {
            this.ptr = createDesc("cudnnCreatePoolingDescriptor", H.createPool);
            try {
                check("cudnnSetPooling2dDescriptor", (int) H.setPool2d.invokeExact(ptr, mode, CUDNN_PROPAGATE_NAN,
                        p.kernelH(), p.kernelW(), p.padH(), p.padW(), p.strideH(), p.strideW()));
            } catch (Throwable t) {
                close();
                throw Bind.rethrow(t);
            }
        }

        public long ptr() { return ptr; }

        @Override public void close() {
            if (closed) return;
            closed = true;
            destroyDesc("cudnnDestroyPoolingDescriptor", H.destroyPool, ptr);
        }
    }

    static long createDesc(String call, MethodHandle create) {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            check(call, (int) create.invokeExact(out));
            return out.get(ValueLayout.JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    static void destroyDesc(String call, MethodHandle destroy, long ptr) {
        if (ptr == 0) return;
        try {
            check(call, (int) destroy.invokeExact(ptr));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    // ---- status codes

    static void check(String call, int status) {
        if (status != 0) throw failure(call, status, null);
    }

    static CudaException failure(String call, int status, String detail) {
        return new CudaException("cuDNN", call, status, statusName(status), detail);
    }

    /** cudnnGetErrorString (cuDNN 9's codes are 1000s: 2000 BAD_PARAM, 3000 NOT_SUPPORTED, ...). */
    static String statusName(int status) {
        try {
            String s = Bind.cString((MemorySegment) H.getErrorString.invokeExact(status));
            if (!s.isEmpty()) return s;
        } catch (Throwable ignored) {
            // fall through
        }
        return "CUDNN_STATUS_" + status;
    }
}
