package dev.kiln.cuda;

import dev.kiln.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static dev.kiln.cuda.NativeLibrary.ADDR;
import static dev.kiln.cuda.NativeLibrary.INT;
import static dev.kiln.cuda.NativeLibrary.PTR;
import static dev.kiln.cuda.NativeLibrary.SIZE_T;

/**
 * A cuBLAS handle: GEMM for the CUDA backend.
 *
 * <p><b>Row-major through a column-major library.</b> cuBLAS reads matrices column-major. A row-major (M x N) matrix
 * with leading dimension ld is, read column-major, its transpose (N x M) with the same ld. So the row-major product
 * C = A·B is the column-major product Cᵀ = Bᵀ·Aᵀ, and {@link #matmul} calls GEMM with the operands swapped
 * (B first, A second, m = N, n = M) and copies nothing. An operand stored transposed (strides (1, ld)) becomes
 * {@code CUBLAS_OP_T} with that ld; see {@link GemmOperand#of}.
 *
 * <p>A handle is not thread-safe: use one per thread (and per device), as cuBLAS asks. Its calls are asynchronous
 * on the handle's stream. The alpha/beta scalars live in a buffer the handle owns: cuBLAS reads host scalars when the
 * call is made, so the buffer is reused and the hot loop allocates nothing.
 */
public final class Cublas extends NativeHandle {
    static final NativeLibrary LIB = new NativeLibrary("cuBLAS", "cublas", Cublas::statusName, "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so");

    // ---- enum values, from cublas_api.h (CUDA 12/13)
    /** cublasOperation_t */
    static final int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
    /** cublasMath_t */
    static final int CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3;
    /** cublasComputeType_t */
    static final int CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_64F = 70, CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
    /** cublasGemmAlgo_t: let the library pick (tensor cores where the math mode / compute type allow). */
    static final int CUBLAS_GEMM_DEFAULT = -1;
    /** libraryPropertyType (library_types.h) */
    static final int MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2;

    /** cudaDataType_t, from library_types.h. */
    static final int CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14;

    /** The cuBLAS workspace NVIDIA recommends for Hopper (32 MiB); 4 MiB suffices for older GPUs. */
    public static final long RECOMMENDED_WORKSPACE_BYTES = 32L << 20;

    /** Raw handles, resolved on first use of the class (only after {@link #LIB} has loaded). */
    private static final class H {
        static final MethodHandle create = LIB.bind("cublasCreate_v2", ADDR);
        static final MethodHandle destroy = LIB.bind("cublasDestroy_v2", PTR);
        static final MethodHandle setStream = LIB.bind("cublasSetStream_v2", PTR, PTR);
        static final MethodHandle setWorkspace = LIB.bind("cublasSetWorkspace_v2", PTR, PTR, SIZE_T);
        static final MethodHandle setMathMode = LIB.bind("cublasSetMathMode", PTR, INT);
        static final MethodHandle getVersion = LIB.bind("cublasGetVersion_v2", PTR, ADDR);
        static final MethodHandle getProperty = LIB.bind("cublasGetProperty", INT, ADDR);
        static final MethodHandle statusName = LIB.bind("cublasGetStatusName",
                java.lang.foreign.FunctionDescriptor.of(ADDR, INT));
        // cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha*, A, Atype, lda, strideA,
        //     B, Btype, ldb, strideB, beta*, C, Ctype, ldc, strideC, batchCount, computeType, algo)
        static final MethodHandle gemmStridedBatchedEx = LIB.bind("cublasGemmStridedBatchedEx", 
                PTR, INT, INT, INT, INT, INT, ADDR,
                PTR, INT, INT, ValueLayout.JAVA_LONG,
                PTR, INT, INT, ValueLayout.JAVA_LONG,
                ADDR, PTR, INT, INT, ValueLayout.JAVA_LONG,
                INT, INT, INT);
    }

    private final Arena arena = Arena.ofShared();
    /** alpha at 0, beta at 8; written as float or double to suit the compute type. */
    private final MemorySegment scalars, alphaPtr, betaPtr;
    private int mathMode = CUBLAS_DEFAULT_MATH;
    private long workspace, workspaceBytes;

    private Cublas(long handle) {
        super("cuBLAS handle", handle);
        this.scalars = arena.allocate(16, 8);
        this.alphaPtr = scalars.asSlice(0, 8);
        this.betaPtr = scalars.asSlice(8, 8);
    }

    /** Creates a handle on the calling thread's current CUDA context (the device must be current). */
    public static Cublas create() {
        LIB.lookup(); // LibraryNotFound, clearly, before any raw handle is touched
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            LIB.check("cublasCreate_v2", (int) H.create.invokeExact(out));
            return new Cublas(out.get(ValueLayout.JAVA_LONG, 0));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** Whether libcublas can be found on this machine (loads it; creates no handle). */
    public static boolean available() { return LIB.available(); }

    /** The library version as cuBLAS spells it (e.g. 130000 for 13.0.0), without a handle or a GPU. */
    public static int libraryVersion() {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            int[] parts = new int[3];
            int[] props = {MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL};
            for (int i = 0; i < 3; i++) {
                LIB.check("cublasGetProperty", (int) H.getProperty.invokeExact(props[i], v));
                parts[i] = v.get(INT, 0);
            }
            return parts[0] * 10000 + parts[1] * 100 + parts[2];
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** cublasGetVersion_v2 on this handle. */
    public int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            LIB.check("cublasGetVersion_v2", (int) H.getVersion.invokeExact(handle(), v));
            return v.get(INT, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /**
     * Issues this handle's work on {@code stream} (a CUstream / cudaStream_t; 0 is the legacy default stream).
     * cublasSetStream resets the workspace to cuBLAS's own pool, so a workspace given with {@link #setWorkspace} is
     * given again here.
     */
    public void setStream(long stream) {
        try {
            LIB.check("cublasSetStream_v2", (int) H.setStream.invokeExact(handle(), stream));
            if (workspace != 0) LIB.check("cublasSetWorkspace_v2", (int) H.setWorkspace.invokeExact(address, workspace, workspaceBytes));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /**
     * Gives cuBLAS a workspace of the caller's device memory (at least 256-byte aligned; {@link #RECOMMENDED_WORKSPACE_BYTES}),
     * so that it never allocates on its own: required for CUDA graph capture. The memory must outlive its use on the stream.
     */
    public void setWorkspace(long devicePtr, long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("cublasSetWorkspace: negative size " + bytes);
        try {
            LIB.check("cublasSetWorkspace_v2", (int) H.setWorkspace.invokeExact(handle(), devicePtr, bytes));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
        workspace = devicePtr;
        workspaceBytes = bytes;
    }

    /** CUBLAS_TF32_TENSOR_OP_MATH when {@code allowTf32}, else CUBLAS_DEFAULT_MATH. {@link #gemmStridedBatched} sets it per call for float32. */
    public void setMathMode(boolean allowTf32) {
        setMathMode(allowTf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    }

    private void setMathMode(int mode) {
        if (mode == mathMode) return;
        try {
            LIB.check("cublasSetMathMode", (int) H.setMathMode.invokeExact(handle(), mode));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
        mathMode = mode;
    }

    /**
     * Row-major batched product C[i] = alpha·A[i]·B[i] + beta·C[i], for i &lt; batch, with A (M x K), B (K x N) and C
     * (M x N) contiguous (ldc = N, batch stride M·N). Device pointers point at element 0 of batch 0.
     */
    public void matmul(DType dtype, boolean allowTf32, int batch, int m, int n, int k,
                       long a, GemmOperand aLayout, long b, GemmOperand bLayout, long c, double alpha, double beta) {
        // Cᵀ (N x M, column-major, ldc = N) = Bᵀ·Aᵀ: B goes first.
        gemmStridedBatched(dtype, allowTf32,
                bLayout.transposed(), aLayout.transposed(), n, m, k, alpha,
                b, bLayout.ld(), bLayout.batchStride(),
                a, aLayout.ld(), aLayout.batchStride(),
                beta, c, Math.max(1, n), (long) m * n, batch);
    }

    /**
     * cublasGemmStridedBatchedEx, column-major as cuBLAS defines it: C[i] = alpha·op(A[i])·op(B[i]) + beta·C[i],
     * op(A) m x k, op(B) k x n, C m x n.
     *
     * <p>Types: float32 computes in CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 (and the TF32 math mode) when
     * {@code allowTf32}; float64 in CUBLAS_COMPUTE_64F; bfloat16 and float16 take 16-bit inputs and output and
     * accumulate in CUBLAS_COMPUTE_32F. alpha and beta are given as doubles and passed in the compute type's precision.
     */
    public void gemmStridedBatched(DType dtype, boolean allowTf32, boolean transA, boolean transB, int m, int n, int k,
                                   double alpha, long a, int lda, long strideA, long b, int ldb, long strideB,
                                   double beta, long c, int ldc, long strideC, int batch) {
        int dataType = switch (dtype) {
            case FLOAT32 -> CUDA_R_32F;
            case FLOAT64 -> CUDA_R_64F;
            case BFLOAT16 -> CUDA_R_16BF;
            case FLOAT16 -> CUDA_R_16F;
            case INT64, INT32, UINT8, BOOL -> throw new IllegalArgumentException("cuBLAS gemm: unsupported dtype " + dtype
                    + " (float32, float64, bfloat16, float16 only)");
        };
        int computeType = dtype == DType.FLOAT64 ? CUBLAS_COMPUTE_64F
                : dtype == DType.FLOAT32 && allowTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        // The handle's math mode can also turn CUBLAS_COMPUTE_32F into TF32: keep the two in step for float32.
        if (dtype == DType.FLOAT32) setMathMode(allowTf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
        if (m == 0 || n == 0 || batch == 0) return;
        if (computeType == CUBLAS_COMPUTE_64F) {
            scalars.set(ValueLayout.JAVA_DOUBLE, 0, alpha);
            scalars.set(ValueLayout.JAVA_DOUBLE, 8, beta);
        } else {
            scalars.set(ValueLayout.JAVA_FLOAT, 0, (float) alpha);
            scalars.set(ValueLayout.JAVA_FLOAT, 8, (float) beta);
        }
        try {
            int st = (int) H.gemmStridedBatchedEx.invokeExact(handle(),
                    transA ? CUBLAS_OP_T : CUBLAS_OP_N, transB ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, alphaPtr,
                    a, dataType, lda, strideA,
                    b, dataType, ldb, strideB,
                    betaPtr, c, dataType, ldc, strideC,
                    batch, computeType, CUBLAS_GEMM_DEFAULT);
            if (st != 0) {
                throw LIB.failure("cublasGemmStridedBatchedEx", st, dtype + " transa=" + (transA ? "T" : "N") + " transb=" + (transB ? "T" : "N")
                        + " m=" + m + " n=" + n + " k=" + k + " lda=" + lda + " ldb=" + ldb + " ldc=" + ldc
                        + " strides=" + strideA + "/" + strideB + "/" + strideC + " batch=" + batch);
            }
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    @Override protected void destroy(long handle) {
        try {
            LIB.check("cublasDestroy_v2", (int) H.destroy.invokeExact(handle));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        } finally {
            arena.close();
        }
    }

    /** The status's name: from cublasGetStatusName where the library has it, else from the table in cublas_api.h. */
    static String statusName(int status) {
        try {
            if (LIB.has("cublasGetStatusName")) {
                String s = NativeLibrary.cString((MemorySegment) H.statusName.invokeExact(status));
                if (!s.isEmpty()) return s;
            }
        } catch (Throwable ignored) {
            // fall through to the table
        }
        return switch (status) {
            case 0 -> "CUBLAS_STATUS_SUCCESS";
            case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED";
            case 3 -> "CUBLAS_STATUS_ALLOC_FAILED";
            case 7 -> "CUBLAS_STATUS_INVALID_VALUE";
            case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
            case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
            case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
            case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
            case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
            case 16 -> "CUBLAS_STATUS_LICENSE_ERROR";
            default -> "CUBLAS_STATUS_" + status;
        };
    }
}
