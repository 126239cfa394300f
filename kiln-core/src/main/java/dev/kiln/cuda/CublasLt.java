package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.backend.QuantFormat;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.kiln.cuda.NativeLibrary.ADDR;
import static dev.kiln.cuda.NativeLibrary.INT;
import static dev.kiln.cuda.NativeLibrary.PTR;
import static dev.kiln.cuda.NativeLibrary.SIZE_T;

/**
 * A cuBLASLt handle: one GEMM with a fused epilogue (the bias added to the product, the bias gradient summed from
 * an operand, or the tanh GELU's gradient applied to it), so linear layers need no separate bias or GELU-gradient pass. Column-major, as {@link Cublas}; the caller maps its
 * row-major tensors as {@link Blas} does.
 *
 * <p>Each problem (types, shapes, leading dimensions, transposes, epilogue, accumulation, pointer alignment) gets a
 * plan once: the descriptors and the candidates cuBLASLt's heuristic offers for the caller's workspace. The first
 * candidate runs until a call asks for the timed search ({@code tune}, outside graph capture): then each candidate is
 * timed once on the call's own operands and the fastest kept (the heuristic's first pick is often not it for the
 * narrow products of small models). A problem without an algorithm is remembered as refused, so {@link #matmul}
 * answers false at once and the caller takes its other path. Calls allocate nothing and are asynchronous on the
 * given stream, so they can be captured in a CUDA graph. Not thread-safe: callers serialise on the handle.
 */
public final class CublasLt extends NativeHandle {
    private static final System.Logger LOG = dev.kiln.Logging.logger(CublasLt.class);
    static final NativeLibrary LIB = new NativeLibrary("cuBLASLt", "cublasLt", CublasLt::statusName,
            "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so");

    /** cublasLtEpilogue_t: what the GEMM does after the product. */
    public enum Epilogue {
        /** D = op(A)·op(B). */
        DEFAULT(1),
        /** D = op(A)·op(B) + bias, bias (rows of D) added to every column. */
        BIAS(4),
        /** D = max(op(A)·op(B) (+ C), 0). */
        RELU(2),
        /** D = max(op(A)·op(B) (+ C) + bias, 0). */
        RELU_BIAS(6),
        /** D = op(A)·op(B), and bias = the sum of op(B) over k (one value per column of D); op(B) must be transposed. */
        BGRADB(512),
        /**
         * D = op(A)·op(B) times GELU's derivative (the tanh approximation) at the GELU input laid out as D, whose
         * pointer takes the bias's place: the input gradient of a linear layer after a GELU in one product.
         */
        DGELU(192);

        final int code;

        Epilogue(int code) { this.code = code; }
    }

    // ---- enum values, from cublasLt.h (CUDA 12/13)
    /** cublasLtMatmulDescAttributes_t */
    private static final int DESC_SCALE_TYPE = 1, DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8,
            DESC_EPILOGUE_AUX_POINTER = 11, DESC_EPILOGUE_AUX_LD = 12;
    /** cudaDataType_t (library_types.h) and cublasComputeType_t (cublas_api.h) of the 8-bit products. */
    static final int CUDA_R_8I = 3, CUDA_R_32I = 10, CUDA_R_8F_E4M3 = 28, CUBLAS_COMPUTE_32I = 72;
    /** cublasLtMatmulPreferenceAttributes_t */
    private static final int PREF_MAX_WORKSPACE_BYTES = 1, PREF_MIN_ALIGNMENT_A = 5;   // A, B, C, D: 5, 6, 7, 8
    private static final int HEURISTIC_RESULT_BYTES = 96;   // algo (64), workspaceSize (8), state (4), wavesCount (4), reserved (16)
    /** Candidates asked of the heuristic for the timed search, and the timed runs of each after one warm-up run. */
    private static final int CANDIDATES = 8, TIMED_RUNS = 3;

    private static final class H {
        static final MethodHandle create = LIB.bind("cublasLtCreate", ADDR);
        static final MethodHandle destroy = LIB.bind("cublasLtDestroy", PTR);
        static final MethodHandle descCreate = LIB.bind("cublasLtMatmulDescCreate", ADDR, INT, INT);
        static final MethodHandle descDestroy = LIB.bind("cublasLtMatmulDescDestroy", PTR);
        static final MethodHandle descSet = LIB.bind("cublasLtMatmulDescSetAttribute", PTR, INT, ADDR, SIZE_T);
        static final MethodHandle layoutCreate = LIB.bind("cublasLtMatrixLayoutCreate", ADDR, INT,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);
        static final MethodHandle layoutDestroy = LIB.bind("cublasLtMatrixLayoutDestroy", PTR);
        static final MethodHandle prefCreate = LIB.bind("cublasLtMatmulPreferenceCreate", ADDR);
        static final MethodHandle prefDestroy = LIB.bind("cublasLtMatmulPreferenceDestroy", PTR);
        static final MethodHandle prefSet = LIB.bind("cublasLtMatmulPreferenceSetAttribute", PTR, INT, ADDR, SIZE_T);
        // (handle, desc, Adesc, Bdesc, Cdesc, Ddesc, pref, requestedAlgoCount, results[], returnAlgoCount*)
        static final MethodHandle heuristic = LIB.bind("cublasLtMatmulAlgoGetHeuristic",
                PTR, PTR, PTR, PTR, PTR, PTR, PTR, INT, ADDR, ADDR);
        // (handle, desc, alpha*, A, Adesc, B, Bdesc, beta*, C, Cdesc, D, Ddesc, algo*, workspace, workspaceBytes, stream)
        static final MethodHandle matmul = LIB.bind("cublasLtMatmul",
                PTR, PTR, ADDR, PTR, PTR, PTR, PTR, ADDR, PTR, PTR, PTR, PTR, ADDR, PTR, SIZE_T, PTR);
        static final MethodHandle statusName = LIB.bind("cublasLtGetStatusName", FunctionDescriptor.of(ADDR, INT));
    }

    /**
     * One problem's descriptors and candidate algorithms, {@code algo} the one that runs; {@code desc == 0} marks a
     * problem cuBLASLt refused.
     */
    private static final class Plan {
        final long desc, layoutA, layoutB, layoutD;
        final MemorySegment[] candidates;
        MemorySegment algo;
        boolean timed;

        Plan(long desc, long layoutA, long layoutB, long layoutD, MemorySegment[] candidates) {
            this.desc = desc;
            this.layoutA = layoutA;
            this.layoutB = layoutB;
            this.layoutD = layoutD;
            this.candidates = candidates;
            this.algo = candidates.length > 0 ? candidates[0] : null;
            this.timed = candidates.length < 2;
        }

        boolean refused() { return desc == 0; }
    }

    /** What a plan depends on; {@code quant} is null for the float types, else dtype is null. */
    private record Key(DType dtype, DType out, QuantFormat quant, boolean tf32, Epilogue epilogue, boolean accumulate, boolean transA,
                       boolean transB, int m, int n, int k, int lda, int ldb, int ldd, long alignment) {}

    private static final Plan REFUSED = new Plan(0, 0, 0, 0, new MemorySegment[0]);

    private final Arena arena = Arena.ofShared();
    /** alpha = 1 at 0, beta = 0 at 4 as floats, a pointer-sized scratch at 8, alpha = 1 at 16, beta = 0 at 20 as int32 (int8's scale type). */
    private final MemorySegment scalars;
    private final Map<Key, Plan> plans = new HashMap<>();
    private volatile TimedChoices timedChoices;   // timed choices kept on disk (Blas.lt sets it), or null
    /** Why the last refused problem was refused (tests print it). */
    String lastRefusal;

    private CublasLt(long handle) {
        super("cuBLASLt handle", handle);
        scalars = arena.allocate(24, 8);
        scalars.set(ValueLayout.JAVA_FLOAT, 0, 1f);
        scalars.set(ValueLayout.JAVA_FLOAT, 4, 0f);
        scalars.set(ValueLayout.JAVA_INT, 16, 1);
        scalars.set(ValueLayout.JAVA_INT, 20, 0);
    }

    /** Whether libcublasLt can be found on this machine. */
    public static boolean available() { return LIB.available(); }

    /** Creates a handle (the device's context must be current). */
    public static CublasLt create() {
        LIB.lookup();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            LIB.check("cublasLtCreate", (int) H.create.invokeExact(out));
            return new CublasLt(out.get(ValueLayout.JAVA_LONG, 0));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /**
     * Column-major D (m x n, leading dimension ldd) = op(A)·op(B) (+ D when {@code accumulate}) with the epilogue;
     * op(A) is m x k, op(B) k x n. For {@link Epilogue#BIAS} {@code bias} holds m values added to each column; for
     * {@link Epilogue#BGRADB} it receives n values, the sums of op(B) over k; for {@link Epilogue#DGELU} it is GELU's input,
     * m x n with leading dimension ldd. float32 (TF32 when {@code tf32}),
     * bfloat16 and float16, accumulated in float32. With {@code tune} (never during graph capture: it synchronises) a
     * problem's first such call times its candidates. Returns false, having done nothing, when cuBLASLt has no
     * algorithm for the problem.
     */
    public boolean matmul(DType dtype, boolean tf32, Epilogue epilogue, boolean accumulate, boolean transA, boolean transB,
                          int m, int n, int k, long a, int lda, long b, int ldb, long d, int ldd, long bias,
                          long workspace, long workspaceBytes, long stream, boolean tune) {
        return matmul(dtype, dtype, tf32, epilogue, accumulate ? d : 0, transA, transB, m, n, k, a, lda, b, ldb, d, ldd, bias, workspace,
                workspaceBytes, stream, tune);
    }

    /**
     * As {@link #matmul(DType, boolean, Epilogue, boolean, boolean, boolean, int, int, int, long, int, long, int, long, int,
     * long, long, long, long, boolean)}, with D in {@code out} (float32 beside 16-bit A and B, or A's type) and, when
     * {@code c} is not 0, C (laid out as D, of D's type) added: D = op(A)·op(B) + C, C being D itself or another matrix
     * (a residual added in the product's epilogue, without a pass of its own). The bias is then of D's type.
     */
    public boolean matmul(DType dtype, DType out, boolean tf32, Epilogue epilogue, long c, boolean transA, boolean transB,
                          int m, int n, int k, long a, int lda, long b, int ldb, long d, int ldd, long bias,
                          long workspace, long workspaceBytes, long stream, boolean tune) {
        int type = cudaType(dtype), outType = cudaType(out);
        if (type < 0 || outType < 0 || (out != dtype && out != DType.FLOAT32) || m <= 0 || n <= 0 || k <= 0) return false;
        // the heuristic picks kernels for the alignment it is told, so problems of differently aligned pointers differ
        long alignment = Math.min(256, Long.lowestOneBit(a | b | c | d | bias | (1L << 8)));
        Key key = new Key(dtype, out, null, tf32 && dtype == DType.FLOAT32, epilogue, c != 0, transA, transB, m, n, k, lda, ldb, ldd,
                alignment);
        int compute = key.tf32() ? Cublas.CUBLAS_COMPUTE_32F_FAST_TF32 : Cublas.CUBLAS_COMPUTE_32F;
        return matmul(key, type, outType, compute, Cublas.CUDA_R_32F, a, b, c == 0 ? d : c, d, bias, workspace, workspaceBytes, stream, tune);
    }

    private static int cudaType(DType t) {
        return switch (t) {
            case FLOAT32 -> Cublas.CUDA_R_32F;
            case BFLOAT16 -> Cublas.CUDA_R_16BF;
            case FLOAT16 -> Cublas.CUDA_R_16F;
            case FLOAT64, INT64, INT32, UINT8, BOOL -> -1;
        };
    }

    /**
     * The 8-bit tensor-core product: column-major D (m x n, leading dimension m) = Aᵀ·B with A (k x m) and B (k x n) codes
     * of the format, both with leading dimension k (the "TN" layout cuBLASLt's int8 and FP8 kernels require). int8:
     * CUBLAS_COMPUTE_32I, D int32 and exact; FP8 E4M3: CUBLAS_COMPUTE_32F, D float32 (no scale pointers: the per-channel
     * weight scales are applied by the caller's dequantizing pass, which cuBLASLt's one scalar per operand cannot do).
     * The caller pads m and k to multiples of 16. {@code tune} as {@link #matmul}. Returns false, having done nothing,
     * when cuBLASLt has no algorithm.
     */
    public boolean matmulQuantized(QuantFormat format, int m, int n, int k, long a, long b, long d, long workspace, long workspaceBytes,
                                   long stream, boolean tune) {
        if (m <= 0 || n <= 0 || k <= 0) return false;
        long alignment = Math.min(256, Long.lowestOneBit(a | b | d | (1L << 8)));
        Key key = new Key(null, null, format, false, Epilogue.DEFAULT, false, true, false, m, n, k, k, k, m, alignment);
        return format == QuantFormat.INT8
                ? matmul(key, CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, CUDA_R_32I, a, b, d, d, 0, workspace, workspaceBytes, stream, tune)
                : matmul(key, CUDA_R_8F_E4M3, Cublas.CUDA_R_32F, Cublas.CUBLAS_COMPUTE_32F, Cublas.CUDA_R_32F, a, b, d, d, 0, workspace,
                        workspaceBytes, stream, tune);
    }

    /** Plans the problem once (types: A and B, C and D, compute, alpha/beta), then runs it; false when refused. */
    private boolean matmul(Key key, int abType, int dType, int compute, int scaleType, long a, long b, long c, long d, long bias,
                           long workspace, long workspaceBytes, long stream, boolean tune) {
        Plan p = plans.get(key);
        if (p == null) {
            p = plan(key, abType, dType, compute, scaleType, bias, workspaceBytes);
            plans.put(key, p);
        }
        if (p.refused()) return false;
        boolean accumulate = key.accumulate();
        try {
            setEpiloguePointer(p.desc, key.epilogue(), bias);
            // a product accumulating in place would add into D again at each timing run, so it keeps the heuristic's pick
            if (tune && !p.timed && !(accumulate && c == d) && !chosenBefore(p, key, workspaceBytes)) {
                time(p, key, a, b, c, d, workspace, workspaceBytes, stream);
                TimedChoices kept = timedChoices;
                if (kept != null) kept.put(choiceKey(key, workspaceBytes), Arrays.asList(p.candidates).indexOf(p.algo), p.candidates.length);
            }
            run(p, p.algo, key, a, b, c, d, workspace, workspaceBytes, stream);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
        return true;
    }

    private void run(Plan p, MemorySegment algo, Key key, long a, long b, long c, long d, long workspace, long workspaceBytes,
                     long stream) throws Throwable {
        // alpha = 1; beta = 1 (the same value) to accumulate, else 0; int32 for int8's scale type, else float
        MemorySegment alpha = key.quant() == QuantFormat.INT8 ? scalars.asSlice(16) : scalars;
        MemorySegment beta = key.accumulate() ? alpha : alpha.asSlice(4);
        int st = (int) H.matmul.invokeExact(handle(), p.desc, alpha, a, p.layoutA, b, p.layoutB, beta,
                c, p.layoutD, d, p.layoutD, algo, workspace, workspaceBytes, stream);
        if (st != 0) throw LIB.failure("cublasLtMatmul", st, key.toString());
    }

    /** Keeps each problem's timed choice on disk (null: in this process only). */
    void setTimedChoices(TimedChoices cache) { this.timedChoices = cache; }

    private static String choiceKey(Key key, long workspaceBytes) { return key + " workspace " + workspaceBytes; }

    /**
     * Whether an earlier process timed this problem (on this GPU and cuBLAS version: the heuristic offers the same list,
     * its length checked), its choice then taken instead of timing the candidates again.
     */
    private boolean chosenBefore(Plan p, Key key, long workspaceBytes) {
        TimedChoices kept = timedChoices;
        int[] hit = kept == null ? null : kept.get(choiceKey(key, workspaceBytes));
        if (hit == null || hit[1] != p.candidates.length || hit[0] < 0 || hit[0] >= p.candidates.length) return false;
        p.algo = p.candidates[hit[0]];
        p.timed = true;
        LOG.log(System.Logger.Level.DEBUG, () -> "cuBLASLt " + key + ": candidate " + hit[0] + " of " + hit[1] + ", timed before");
        return true;
    }

    /** Times each candidate on the call's operands (one warm-up run, then {@link #TIMED_RUNS}) and keeps the fastest. */
    private void time(Plan p, Key key, long a, long b, long c, long d, long workspace, long workspaceBytes, long stream) throws Throwable {
        MemorySegment s = MemorySegment.ofAddress(stream), start = Driver.eventCreate(0), end = Driver.eventCreate(0);
        long t0 = System.nanoTime();
        try {
            float best = Float.MAX_VALUE;
            for (MemorySegment candidate : p.candidates) {
                run(p, candidate, key, a, b, c, d, workspace, workspaceBytes, stream);
                Driver.eventRecord(start, s);
                for (int i = 0; i < TIMED_RUNS; i++) run(p, candidate, key, a, b, c, d, workspace, workspaceBytes, stream);
                Driver.eventRecord(end, s);
                Driver.eventSynchronize(end);
                float ms = Driver.eventElapsedMillis(start, end);
                if (ms < best) {
                    best = ms;
                    p.algo = candidate;
                }
            }
            p.timed = true;
            double searchMs = (System.nanoTime() - t0) / 1e6;
            LOG.log(System.Logger.Level.DEBUG, () -> "cuBLASLt " + key + ": " + p.candidates.length + " candidates timed, "
                    + (Arrays.asList(p.candidates).indexOf(p.algo)) + String.format(" kept (the search %.1f ms)", searchMs));
        } catch (CudaException e) {   // a candidate the heuristic offered but cannot run here: keep its first pick
            p.algo = p.candidates[0];
            p.timed = true;
        } finally {
            Driver.eventDestroy(start);
            Driver.eventDestroy(end);
        }
    }

    /** Whether the problem has a plan that cuBLASLt accepted (for tests: which shapes take the fused path). */
    boolean accepted(DType dtype, Epilogue epilogue, int m, int n, int k) {
        return planned(key -> key.dtype() == dtype && key.epilogue() == epilogue, m, n, k, false);
    }

    /** Whether a product adding another matrix (D of type out), with this epilogue, of these dimensions has a plan cuBLASLt accepted (tests). */
    boolean acceptedAdding(DType dtype, DType out, Epilogue epilogue, int m, int n, int k) {
        return planned(key -> key.dtype() == dtype && key.out() == out && key.epilogue() == epilogue && key.accumulate(), m, n, k, false);
    }

    /** Whether a product with D of type out and this epilogue (C not added) has a plan cuBLASLt accepted (tests). */
    boolean accepted(DType dtype, DType out, Epilogue epilogue, int m, int n, int k) {
        return planned(key -> key.dtype() == dtype && key.out() == out && key.epilogue() == epilogue && !key.accumulate(), m, n, k, false);
    }

    /** Whether an 8-bit problem of these dimensions has a plan that cuBLASLt accepted (for tests: the tensor-core path ran). */
    boolean acceptedQuantized(QuantFormat format, int m, int n, int k) {
        return planned(key -> key.quant() == format, m, n, k, false);
    }

    /** Whether the problem's candidates were timed (for tests: the timed search ran). */
    boolean timed(DType dtype, Epilogue epilogue, int m, int n, int k) {
        return planned(key -> key.dtype() == dtype && key.epilogue() == epilogue, m, n, k, true);
    }

    private boolean planned(java.util.function.Predicate<Key> kind, int m, int n, int k, boolean timed) {
        return plans.entrySet().stream().anyMatch(e -> kind.test(e.getKey()) && e.getKey().m() == m && e.getKey().n() == n
                && e.getKey().k() == k && !e.getValue().refused() && (!timed || e.getValue().timed));
    }

    private Plan plan(Key key, int abType, int dType, int compute, int scaleType, long bias, long workspaceBytes) {
        long desc = 0, la = 0, lb = 0, ld = 0, pref = 0;
        try (Arena t = Arena.ofConfined()) {
            MemorySegment out = t.allocate(ValueLayout.ADDRESS);
            LIB.check("cublasLtMatmulDescCreate", (int) H.descCreate.invokeExact(out, compute, scaleType));
            desc = out.get(ValueLayout.JAVA_LONG, 0);
            setInt(desc, DESC_SCALE_TYPE, scaleType);
            setInt(desc, DESC_TRANSA, key.transA() ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            setInt(desc, DESC_TRANSB, key.transB() ? Cublas.CUBLAS_OP_T : Cublas.CUBLAS_OP_N);
            setInt(desc, DESC_EPILOGUE, key.epilogue().code);
            setEpiloguePointer(desc, key.epilogue(), bias);
            if (key.epilogue() == Epilogue.DGELU) setLong(desc, DESC_EPILOGUE_AUX_LD, key.ldd());   // GELU's input laid out as D
            la = layout(t, abType, key.transA() ? key.k() : key.m(), key.transA() ? key.m() : key.k(), key.lda());
            lb = layout(t, abType, key.transB() ? key.n() : key.k(), key.transB() ? key.k() : key.n(), key.ldb());
            ld = layout(t, dType, key.m(), key.n(), key.ldd());
            LIB.check("cublasLtMatmulPreferenceCreate", (int) H.prefCreate.invokeExact(out));
            pref = out.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment v = t.allocate(8, 8);
            v.set(ValueLayout.JAVA_LONG, 0, workspaceBytes);
            LIB.check("cublasLtMatmulPreferenceSetAttribute", (int) H.prefSet.invokeExact(pref, PREF_MAX_WORKSPACE_BYTES, v, 8L));
            v.set(ValueLayout.JAVA_INT, 0, (int) key.alignment());
            for (int i = 0; i < 4; i++) {
                LIB.check("cublasLtMatmulPreferenceSetAttribute", (int) H.prefSet.invokeExact(pref, PREF_MIN_ALIGNMENT_A + i, v, 4L));
            }
            MemorySegment results = t.allocate((long) HEURISTIC_RESULT_BYTES * CANDIDATES, 8), count = t.allocate(INT);
            int st = (int) H.heuristic.invokeExact(handle(), desc, la, lb, ld, ld, pref, CANDIDATES, results, count);
            List<MemorySegment> usable = new ArrayList<>();
            for (int i = 0; st == 0 && i < count.get(INT, 0); i++) {
                MemorySegment r = results.asSlice((long) i * HEURISTIC_RESULT_BYTES, HEURISTIC_RESULT_BYTES);
                if (r.get(INT, 72) != 0 || r.get(ValueLayout.JAVA_LONG, 64) > workspaceBytes) continue;
                usable.add(arena.allocate(64, 8).copyFrom(r.asSlice(0, 64)));
            }
            // a problem without an algorithm (NOT_SUPPORTED, or none returned) takes the caller's other path
            if (usable.isEmpty()) {
                destroyAll(desc, la, lb, ld);
                lastRefusal = key + ": heuristic status " + st + ", " + count.get(INT, 0) + " algorithms";
                return REFUSED;
            }
            return new Plan(desc, la, lb, ld, usable.toArray(MemorySegment[]::new));
        } catch (CudaException e) {   // a descriptor cuBLASLt does not take: the caller's other path, and the reason kept
            destroyAll(desc, la, lb, ld);
            lastRefusal = key + ": " + e.getMessage();
            return REFUSED;
        } catch (Throwable e) {
            destroyAll(desc, la, lb, ld);
            throw NativeLibrary.rethrow(e);
        } finally {
            try {
                if (pref != 0) LIB.check("cublasLtMatmulPreferenceDestroy", (int) H.prefDestroy.invokeExact(pref));
            } catch (Throwable e) {
                throw NativeLibrary.rethrow(e);
            }
        }
    }

    private static long layout(Arena t, int type, int rows, int cols, int ld) throws Throwable {
        MemorySegment out = t.allocate(ValueLayout.ADDRESS);
        LIB.check("cublasLtMatrixLayoutCreate", (int) H.layoutCreate.invokeExact(out, type, (long) rows, (long) cols, (long) ld));
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    private void setInt(long desc, int attribute, int value) throws Throwable {
        scalars.set(ValueLayout.JAVA_INT, 8, value);
        LIB.check("cublasLtMatmulDescSetAttribute", (int) H.descSet.invokeExact(desc, attribute, scalars.asSlice(8, 4), 4L));
    }

    /** The epilogue's vector or matrix: the bias (or its gradient), or GELU's input for DGELU. */
    private void setEpiloguePointer(long desc, Epilogue epilogue, long pointer) throws Throwable {
        if (epilogue != Epilogue.DEFAULT && epilogue != Epilogue.RELU) {
            setLong(desc, epilogue == Epilogue.DGELU ? DESC_EPILOGUE_AUX_POINTER : DESC_BIAS_POINTER, pointer);
        }
    }

    /** An 8-byte attribute: a pointer or an int64. */
    private void setLong(long desc, int attribute, long value) throws Throwable {
        scalars.set(ValueLayout.JAVA_LONG, 8, value);
        LIB.check("cublasLtMatmulDescSetAttribute", (int) H.descSet.invokeExact(desc, attribute, scalars.asSlice(8, 8), 8L));
    }

    private static void destroyAll(long desc, long la, long lb, long ld) {
        try {
            if (desc != 0) LIB.check("cublasLtMatmulDescDestroy", (int) H.descDestroy.invokeExact(desc));
            for (long l : new long[]{la, lb, ld}) if (l != 0) LIB.check("cublasLtMatrixLayoutDestroy", (int) H.layoutDestroy.invokeExact(l));
        } catch (Throwable e) {
            throw NativeLibrary.rethrow(e);
        }
    }

    @Override protected void destroy(long handle) {
        try {
            for (Plan p : plans.values()) if (!p.refused()) destroyAll(p.desc, p.layoutA, p.layoutB, p.layoutD);
            plans.clear();
            LIB.check("cublasLtDestroy", (int) H.destroy.invokeExact(handle));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        } finally {
            arena.close();
        }
    }

    /** The status's name, from cublasLtGetStatusName (cuBLAS's status codes). */
    static String statusName(int status) {
        try {
            if (LIB.has("cublasLtGetStatusName")) return NativeLibrary.cString((MemorySegment) H.statusName.invokeExact(status));
        } catch (Throwable ignored) {
            // fall back to the number
        }
        return Cublas.statusName(status);
    }
}
