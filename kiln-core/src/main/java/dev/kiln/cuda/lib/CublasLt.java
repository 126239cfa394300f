package dev.kiln.cuda.lib;

import dev.kiln.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.HashMap;
import java.util.Map;

import static dev.kiln.cuda.lib.Bind.ADDR;
import static dev.kiln.cuda.lib.Bind.INT;
import static dev.kiln.cuda.lib.Bind.PTR;
import static dev.kiln.cuda.lib.Bind.SIZE_T;
import static dev.kiln.cuda.lib.Bind.status;

/**
 * cuBLASLt: a row-major matrix product with a fused epilogue, D = act(A·B + bias), for the fusion of Linear layers
 * with their bias and activation. Same row-major trick as {@link Cublas}: the call is made for the column-major
 * Dᵀ = Bᵀ·Aᵀ, where the bias (length N, one per output column) runs along Dᵀ's rows, as cuBLASLt wants it.
 *
 * <p>Descriptors, layouts and the heuristic's algorithm are made once per geometry and cached on the handle. Like
 * cuBLAS, not thread-safe; the workspace is the caller's.
 */
public final class CublasLt implements AutoCloseable {
    static final Bind.Library LIB = new Bind.Library("cublasLt", "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so");

    // ---- values from cublasLt.h (CUDA 12/13)
    /** cublasLtMatmulDescAttributes_t */
    static final int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8;
    /** cublasLtMatmulPreferenceAttributes_t */
    static final int PREF_MAX_WORKSPACE_BYTES = 1;
    /** cublasLtEpilogue_t */
    static final int EPILOGUE_DEFAULT = 1, EPILOGUE_RELU = 2, EPILOGUE_BIAS = 4, EPILOGUE_RELU_BIAS = 6,
            EPILOGUE_GELU = 32, EPILOGUE_GELU_BIAS = 36;
    /**
     * cublasLtMatmulHeuristicResult_t: cublasLtMatmulAlgo_t algo (uint64_t data[8], 64 bytes); size_t workspaceSize;
     * cublasStatus_t state; float wavesCount; int reserved[4] — 96 bytes.
     */
    static final long HEUR_SIZE = 96, HEUR_ALGO_SIZE = 64, HEUR_WORKSPACE = 64, HEUR_STATE = 72;

    /** What runs after the product. GELU is cuBLASLt's tanh approximation. */
    public enum Epilogue {
        NONE(EPILOGUE_DEFAULT, false), BIAS(EPILOGUE_BIAS, true), RELU(EPILOGUE_RELU, false), BIAS_RELU(EPILOGUE_RELU_BIAS, true),
        GELU(EPILOGUE_GELU, false), BIAS_GELU(EPILOGUE_GELU_BIAS, true);

        final int value;
        final boolean bias;

        Epilogue(int value, boolean bias) {
            this.value = value;
            this.bias = bias;
        }
    }

    private static final class H {
        static final MethodHandle create = LIB.bind("cublasLtCreate", status(ADDR));
        static final MethodHandle destroy = LIB.bind("cublasLtDestroy", status(PTR));
        static final MethodHandle getVersion = LIB.bind("cublasLtGetVersion", FunctionDescriptor.of(SIZE_T));
        static final MethodHandle descCreate = LIB.bind("cublasLtMatmulDescCreate", status(ADDR, INT, INT));
        static final MethodHandle descDestroy = LIB.bind("cublasLtMatmulDescDestroy", status(PTR));
        static final MethodHandle descSet = LIB.bind("cublasLtMatmulDescSetAttribute", status(PTR, INT, ADDR, SIZE_T));
        // cublasLtMatrixLayoutCreate(layout*, cudaDataType, uint64_t rows, uint64_t cols, int64_t ld)
        static final MethodHandle layoutCreate = LIB.bind("cublasLtMatrixLayoutCreate", status(ADDR, INT, SIZE_T, SIZE_T, SIZE_T));
        static final MethodHandle layoutDestroy = LIB.bind("cublasLtMatrixLayoutDestroy", status(PTR));
        static final MethodHandle prefCreate = LIB.bind("cublasLtMatmulPreferenceCreate", status(ADDR));
        static final MethodHandle prefDestroy = LIB.bind("cublasLtMatmulPreferenceDestroy", status(PTR));
        static final MethodHandle prefSet = LIB.bind("cublasLtMatmulPreferenceSetAttribute", status(PTR, INT, ADDR, SIZE_T));
        static final MethodHandle heuristic = LIB.bind("cublasLtMatmulAlgoGetHeuristic",
                status(PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR));
        // cublasLtMatmul(handle, desc, alpha*, A, Adesc, B, Bdesc, beta*, C, Cdesc, D, Ddesc, algo*, workspace, wsSize, stream)
        static final MethodHandle matmul = LIB.bind("cublasLtMatmul",
                status(PTR, PTR, ADDR, PTR, PTR, PTR, PTR, ADDR, PTR, PTR, PTR, PTR, ADDR, PTR, SIZE_T, PTR));
    }

    private final Arena arena = Arena.ofShared();
    private final long handle;
    private final MemorySegment alpha, beta, attr;
    private final Map<Key, Plan> plans = new HashMap<>();
    private boolean closed;

    private CublasLt(long handle) {
        this.handle = handle;
        this.alpha = arena.allocate(8, 8);
        this.beta = arena.allocate(8, 8);
        this.attr = arena.allocate(8, 8);
    }

    public static CublasLt create() {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            Cublas.check("cublasLtCreate", (int) H.create.invokeExact(out));
            return new CublasLt(out.get(ValueLayout.JAVA_LONG, 0));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    public static boolean available() { return LIB.available(); }

    /** cublasLtGetVersion, e.g. 130002. */
    public static int libraryVersion() {
        LIB.lookup();
        try {
            return (int) (long) H.getVersion.invokeExact();
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    private record Key(DType dtype, boolean tf32, Epilogue epilogue, int m, int n, int k, GemmOperand a, GemmOperand b, long workspaceBytes) {}

    /** The descriptors of one geometry and the algorithm the heuristic picked for it. */
    private static final class Plan implements AutoCloseable {
        long desc, layoutA, layoutB, layoutD;
        MemorySegment algo;
        long workspace;
        long lastBias = -1;

        @Override public void close() {
            destroy("cublasLtMatrixLayoutDestroy", H.layoutDestroy, layoutA);
            destroy("cublasLtMatrixLayoutDestroy", H.layoutDestroy, layoutB);
            destroy("cublasLtMatrixLayoutDestroy", H.layoutDestroy, layoutD);
            destroy("cublasLtMatmulDescDestroy", H.descDestroy, desc);
        }
    }

    /**
     * Row-major D (M x N, contiguous) = epilogue(A·B + bias) with A (M x K) and B (K x N) as their layouts say and
     * bias of length N (0 when the epilogue takes none). float32 (TF32 when allowed), float64, bfloat16, float16.
     *
     * @param workspace      device scratch for cuBLASLt (may be 0 with workspaceBytes 0); 32 MiB recommended on Hopper
     * @param stream         the CUstream to run on
     */
    public void matmul(DType dtype, boolean allowTf32, Epilogue epilogue, int m, int n, int k,
                       long a, GemmOperand aLayout, long b, GemmOperand bLayout, long bias, long d,
                       long workspace, long workspaceBytes, long stream) {
        if (closed) throw new IllegalStateException("cuBLASLt handle is closed");
        if (epilogue.bias && bias == 0) throw new IllegalArgumentException("cuBLASLt " + epilogue + ": bias pointer is null");
        if (m == 0 || n == 0) return;
        Key key = new Key(dtype, dtype == DType.FLOAT32 && allowTf32, epilogue, m, n, k,
                new GemmOperand(aLayout.transposed(), aLayout.ld(), 0), new GemmOperand(bLayout.transposed(), bLayout.ld(), 0), workspaceBytes);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = plan(key);
            plans.put(key, plan);
        }
        try {
            if (epilogue.bias && bias != plan.lastBias) {
                attr.set(ValueLayout.JAVA_LONG, 0, bias);
                Cublas.check("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", (int) H.descSet.invokeExact(plan.desc, DESC_BIAS_POINTER, attr, 8L));
                plan.lastBias = bias;
            }
            if (dtype == DType.FLOAT64) {
                alpha.set(ValueLayout.JAVA_DOUBLE, 0, 1.0);
                beta.set(ValueLayout.JAVA_DOUBLE, 0, 0.0);
            } else {
                alpha.set(ValueLayout.JAVA_FLOAT, 0, 1f);
                beta.set(ValueLayout.JAVA_FLOAT, 0, 0f);
            }
            // column-major Dᵀ (N x M) = op(B-buffer) (N x K) · op(A-buffer) (K x M); C = D with beta 0
            int st = (int) H.matmul.invokeExact(handle, plan.desc, alpha, b, plan.layoutB, a, plan.layoutA, beta,
                    d, plan.layoutD, d, plan.layoutD, plan.algo, workspace, workspaceBytes, stream);
            if (st != 0) throw Cublas.failure("cublasLtMatmul", st, dtype + " " + epilogue + " m=" + m + " n=" + n + " k=" + k);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    private Plan plan(Key key) {
        int dataType = switch (key.dtype()) {
            case FLOAT32 -> Cublas.CUDA_R_32F;
            case FLOAT64 -> Cublas.CUDA_R_64F;
            case BFLOAT16 -> Cublas.CUDA_R_16BF;
            case FLOAT16 -> Cublas.CUDA_R_16F;
            case INT64, INT32, UINT8, BOOL -> throw new IllegalArgumentException("cuBLASLt matmul: unsupported dtype " + key.dtype());
        };
        int compute = key.dtype() == DType.FLOAT64 ? Cublas.CUBLAS_COMPUTE_64F
                : key.tf32() ? Cublas.CUBLAS_COMPUTE_32F_FAST_TF32 : Cublas.CUBLAS_COMPUTE_32F;
        int scaleType = key.dtype() == DType.FLOAT64 ? Cublas.CUDA_R_64F : Cublas.CUDA_R_32F;
        Plan p = new Plan();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            Cublas.check("cublasLtMatmulDescCreate", (int) H.descCreate.invokeExact(out, compute, scaleType));
            p.desc = out.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment v = a.allocate(8, 8);
            // Operand "A" of the column-major call is the B buffer; "B" is the A buffer.
            v.set(ValueLayout.JAVA_INT, 0, key.b().transposed() ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            Cublas.check("cublasLtMatmulDescSetAttribute(TRANSA)", (int) H.descSet.invokeExact(p.desc, DESC_TRANSA, v, 4L));
            v.set(ValueLayout.JAVA_INT, 0, key.a().transposed() ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            Cublas.check("cublasLtMatmulDescSetAttribute(TRANSB)", (int) H.descSet.invokeExact(p.desc, DESC_TRANSB, v, 4L));
            v.set(ValueLayout.JAVA_INT, 0, key.epilogue().value);
            Cublas.check("cublasLtMatmulDescSetAttribute(EPILOGUE)", (int) H.descSet.invokeExact(p.desc, DESC_EPILOGUE, v, 4L));

            int m = key.m(), n = key.n(), k = key.k();
            // stored (column-major) shapes: B buffer is N x K (op N) or K x N (op T); A buffer K x M or M x K
            p.layoutB = layout(a, dataType, key.b().transposed() ? k : n, key.b().transposed() ? n : k, key.b().ld());
            p.layoutA = layout(a, dataType, key.a().transposed() ? m : k, key.a().transposed() ? k : m, key.a().ld());
            p.layoutD = layout(a, dataType, n, m, n);

            Cublas.check("cublasLtMatmulPreferenceCreate", (int) H.prefCreate.invokeExact(out));
            long pref = out.get(ValueLayout.JAVA_LONG, 0);
            try {
                v.set(ValueLayout.JAVA_LONG, 0, key.workspaceBytes());
                Cublas.check("cublasLtMatmulPreferenceSetAttribute", (int) H.prefSet.invokeExact(pref, PREF_MAX_WORKSPACE_BYTES, v, 8L));
                if (key.epilogue().bias) { // the heuristic checks the bias pointer's alignment: give it an aligned stand-in
                    v.set(ValueLayout.JAVA_LONG, 0, 256L);
                    Cublas.check("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", (int) H.descSet.invokeExact(p.desc, DESC_BIAS_POINTER, v, 8L));
                }
                MemorySegment result = a.allocate(HEUR_SIZE, 8);
                MemorySegment count = a.allocate(INT);
                Cublas.check("cublasLtMatmulAlgoGetHeuristic", (int) H.heuristic.invokeExact(handle, p.desc, p.layoutB, p.layoutA,
                        p.layoutD, p.layoutD, pref, 1, result, count));
                if (count.get(INT, 0) < 1) {
                    throw new IllegalStateException("cublasLtMatmulAlgoGetHeuristic: no algorithm for " + key);
                }
                p.algo = arena.allocate(HEUR_ALGO_SIZE, 8);
                p.algo.copyFrom(result.asSlice(0, HEUR_ALGO_SIZE));
                p.workspace = result.get(ValueLayout.JAVA_LONG, HEUR_WORKSPACE);
            } finally {
                destroy("cublasLtMatmulPreferenceDestroy", H.prefDestroy, pref);
            }
            return p;
        } catch (Throwable t) {
            p.close();
            throw Bind.rethrow(t);
        }
    }

    private static long layout(Arena a, int dataType, long rows, long cols, long ld) throws Throwable {
        MemorySegment out = a.allocate(ValueLayout.ADDRESS);
        Cublas.check("cublasLtMatrixLayoutCreate", (int) H.layoutCreate.invokeExact(out, dataType, rows, cols, ld));
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    private static void destroy(String call, MethodHandle h, long ptr) {
        if (ptr == 0) return;
        try {
            Cublas.check(call, (int) h.invokeExact(ptr));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            for (Plan p : plans.values()) p.close();
            plans.clear();
            Cublas.check("cublasLtDestroy", (int) H.destroy.invokeExact(handle));
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        } finally {
            arena.close();
        }
    }
}
