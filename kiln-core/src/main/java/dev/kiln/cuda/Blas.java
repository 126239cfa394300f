package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Logging;
import dev.kiln.Settings;
import dev.kiln.backend.QuantFormat;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;

/**
 * Matrix products through cuBLAS, when the library is present: one handle per device, bound to the device's
 * stream, with its own workspace from the caching allocator (so no cuBLAS call allocates, and graph capture can
 * work later). Calls on a device are serialised on its handle (cuBLAS handles are not thread-safe). float32 uses
 * TF32 tensor cores only when {@link CudaDevice#allowTf32()} says so for the device.
 */
final class Blas {
    private Blas() {}

    private static final Cublas[] HANDLES = new Cublas[64];
    /** Each device's cuBLASLt handle; it shares the cuBLAS handle's workspace (both run on the device's one stream). */
    private static final CublasLt[] LT = new CublasLt[64];
    private static final long[] WORKSPACE = new long[64];
    private static volatile boolean unavailable, ltUnavailable;

    /** The device's handle, or null when cuBLAS is not on this machine (then the own kernel runs). */
    private static Cublas handle(CudaDevice dev) {
        if (unavailable) return null;
        Cublas h = HANDLES[dev.index()];
        if (h != null) return h;
        synchronized (HANDLES) {
            if (HANDLES[dev.index()] == null) {
                if (!Cublas.available()) {
                    unavailable = true;
                    return null;
                }
                dev.makeCurrent();
                Cublas c = Cublas.create();
                c.setStream(dev.stream().address());
                CudaAllocator.Block ws = dev.allocator().allocate(Cublas.RECOMMENDED_WORKSPACE_BYTES);   // kept for the process
                c.setWorkspace(ws.address(), Cublas.RECOMMENDED_WORKSPACE_BYTES);
                WORKSPACE[dev.index()] = ws.address();
                HANDLES[dev.index()] = c;
            }
            return HANDLES[dev.index()];
        }
    }

    /** The device's cuBLASLt handle, or null when the library is not on this machine; callers hold the cuBLAS handle's lock. */
    static CublasLt lt(CudaDevice dev) {
        if (ltUnavailable || handle(dev) == null) return null;
        CublasLt h = LT[dev.index()];
        if (h != null) return h;
        if (!CublasLt.available()) {
            ltUnavailable = true;
            return null;
        }
        dev.makeCurrent();
        CublasLt lt = CublasLt.create();
        if (Settings.get().cudnnAlgoCache()) {
            try {   // the timed choices on disk: an optimisation, never a reason to go without cuBLASLt
                lt.setTimedChoices(new TimedChoicesFile(TimedChoicesFile.fileFor(KernelCache.cacheDir().getParent(), "cublaslt", String.valueOf(Cublas.libraryVersion()), dev.name())));
            } catch (RuntimeException e) {
                Logging.logger(Blas.class).log(System.Logger.Level.DEBUG, "cuBLASLt's timed choices stay in this process: " + e);
            }
        }
        return LT[dev.index()] = lt;
    }

    /**
     * One cuBLASLt GEMM with an epilogue (column-major, see {@link CublasLt#matmul}) on the device's stream and
     * workspace, its algorithm timed once per problem when the timed search is on ({@link Cuda#cudnnBenchmark()}) and
     * the stream is not being captured; false when cuBLASLt is absent or has no algorithm for it (then the caller takes
     * its other path).
     */
    static boolean tryLt(CudaDevice dev, DType t, CublasLt.Epilogue epilogue, boolean accumulate, boolean transA, boolean transB,
                         long m, long n, long k, long a, long lda, long b, long ldb, long d, long ldd, long bias) {
        if (!fits(m) || !fits(n) || !fits(k) || !fits(lda) || !fits(ldb) || !fits(ldd)) return false;
        return onLt(dev, (lt, workspace, tune) -> lt.matmul(t, dev.allowTf32(), epilogue, accumulate, transA, transB, (int) m,
                (int) n, (int) k, a, (int) lda, b, (int) ldb, d, (int) ldd, bias, workspace, Cublas.RECOMMENDED_WORKSPACE_BYTES,
                dev.stream().address(), tune));
    }

    /**
     * {@link #tryLt} with D in {@code out} and, when c is not 0, C added: D = op(A)·op(B) (+ bias) + C, C laid out as D (see {@link
     * CublasLt#matmul(DType, DType, boolean, CublasLt.Epilogue, long, boolean, boolean, int, int, int, long, int, long, int,
     * long, int, long, long, long, long, boolean)}); float32 on TF32 tensor cores when {@code tf32} (a matrix product's
     * {@link CudaDevice#allowTf32()}, a convolution's {@link CudaDevice#allowTf32Conv()}).
     */
    static boolean tryLtTo(CudaDevice dev, boolean tf32, DType t, DType out, CublasLt.Epilogue epilogue, boolean transA, boolean transB,
                          long m, long n, long k, long a, long lda, long b, long ldb, long c, long d, long ldd, long bias) {
        if (!fits(m) || !fits(n) || !fits(k) || !fits(lda) || !fits(ldb) || !fits(ldd)) return false;
        return onLt(dev, (lt, workspace, tune) -> lt.matmul(t, out, tf32, epilogue, c, transA, transB, (int) m,
                (int) n, (int) k, a, (int) lda, b, (int) ldb, d, (int) ldd, bias, workspace, Cublas.RECOMMENDED_WORKSPACE_BYTES,
                dev.stream().address(), tune));
    }

    /**
     * One 8-bit cuBLASLt product (see {@link CublasLt#matmulQuantized}) on the device's stream and workspace (the graph's
     * during capture, as {@link #tryLt}), timed once per problem under the timed search; false when cuBLASLt cannot take it.
     */
    static boolean tryLtQuantized(CudaDevice dev, QuantFormat format, int m, int n, int k, long a, long b, long d) {
        return onLt(dev, (lt, workspace, tune) -> lt.matmulQuantized(format, m, n, k, a, b, d, workspace,
                Cublas.RECOMMENDED_WORKSPACE_BYTES, dev.stream().address(), tune));
    }

    /** A cuBLASLt call given its handle, its workspace and whether the timed search may run. */
    private interface LtCall { boolean run(CublasLt lt, long workspace, boolean tune); }

    /**
     * Runs the call under the device's handle lock with the device's workspace, or inside a capture with a workspace of
     * the graph's pool and no timing (timing synchronises); false when cuBLASLt is absent.
     */
    private static boolean onLt(CudaDevice dev, LtCall call) {
        Cublas h = handle(dev);
        if (h == null) return false;
        synchronized (h) {
            CublasLt lt = lt(dev);
            if (lt == null) return false;
            dev.makeCurrent();
            CudaAllocator.Block captured = capturedWorkspace(dev);
            try {
                return call.run(lt, captured != null ? captured.address() : WORKSPACE[dev.index()], Cuda.cudnnBenchmark() && captured == null);
            } finally {
                if (captured != null) dev.allocator().free(captured);
            }
        }
    }

    /** Whether cuBLASLt took an 8-bit problem of these dimensions (tests). */
    static boolean ltTookQuantized(CudaDevice dev, QuantFormat format, int m, int n, int k) {
        Cublas h = handle(dev);
        if (h == null) return false;
        synchronized (h) {
            CublasLt lt = lt(dev);
            return lt != null && lt.acceptedQuantized(format, m, n, k);
        }
    }

    private static boolean fits(long v) { return v >= 0 && v <= Integer.MAX_VALUE; }

    /**
     * Runs C = A x B (+ C) and returns true, or returns false when cuBLAS cannot take it. A single product goes through
     * cuBLASLt unless the timed search found cuBLAS's own pick faster for it (each library's kernels win some shapes).
     */
    static boolean tryGemm(CudaDevice dev, DType t, int batch, long m, long n, long k, long a, long sab, long sam, long sak,
                           long b, long sbb, long sbk, long sbn, long c, long scb, long scm, boolean accumulate) {
        if (!t.isFloating() || !fits(m) || !fits(n) || !fits(k) || scm < n || !fits(scm) || k == 0) return false;
        GemmOperand la = GemmOperand.of(batch, m, k, sab, sam, sak), lb = GemmOperand.of(batch, k, n, sbb, sbk, sbn);
        if (la == null || lb == null) return false;
        // row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: B goes first
        if (batch == 1) {
            GemmKey key = new GemmKey(t, dev.allowTf32(), lb.transposed(), la.transposed(), n, m, k, lb.ld(), la.ld(), scm, accumulate);
            TimedPick<GemmKey> pick = ltPick(dev);
            Boolean viaLt = pick.kept(key);
            BooleanSupplier lt = () -> tryLt(dev, t, CublasLt.Epilogue.DEFAULT, accumulate, lb.transposed(),
                    la.transposed(), n, m, k, b, lb.ld(), a, la.ld(), c, Math.max(1, scm), 0);
            if (viaLt == null && !accumulate && Cuda.cudnnBenchmark() && !dev.allocator().capturing()) {
                // cuBLASLt's fastest candidate (timed by its first call) against cuBLAS's own pick
                viaLt = pick.choose(key, lt, () -> cublas(dev, t, batch, m, n, k, la, lb, a, b, c, scm, scb, false));
                if (viaLt == null) return cublas(dev, t, batch, m, n, k, la, lb, a, b, c, scm, scb, false);
            }
            if (viaLt != Boolean.FALSE && lt.getAsBoolean()) return true;
        }
        return cublas(dev, t, batch, m, n, k, la, lb, a, b, c, scm, scb, accumulate);
    }

    /** What decides between cuBLASLt and cuBLAS for one product. */
    private record GemmKey(DType t, boolean tf32, boolean transA, boolean transB, long m, long n, long k,
                           long lda, long ldb, long ldc, boolean accumulate) {}

    /** Per device and product, whether cuBLASLt's timed pick beat cuBLAS's (not yet chosen: cuBLASLt runs). */
    private static final Map<Integer, TimedPick<GemmKey>> LT_PICKS = new ConcurrentHashMap<>();

    private static TimedPick<GemmKey> ltPick(CudaDevice dev) {
        return LT_PICKS.computeIfAbsent(dev.index(), i -> TimedPick.on(dev, "cublaslt", "cublas", () -> String.valueOf(Cublas.libraryVersion())));
    }

    private static boolean cublas(CudaDevice dev, DType t, int batch, long m, long n, long k, GemmOperand la, GemmOperand lb,
                                  long a, long b, long c, long scm, long scb, boolean accumulate) {
        Cublas h = handle(dev);
        if (h == null) return false;
        synchronized (h) {
            dev.makeCurrent();
            CudaAllocator.Block captured = capturedWorkspace(dev);
            if (captured != null) h.setWorkspace(captured.address(), Cublas.RECOMMENDED_WORKSPACE_BYTES);
            try {
                h.gemmStridedBatched(t, dev.allowTf32(), lb.transposed(), la.transposed(), (int) n, (int) m, (int) k, 1.0,
                        b, lb.ld(), lb.batchStride(), a, la.ld(), la.batchStride(), accumulate ? 1.0 : 0.0,
                        c, (int) Math.max(1, scm), scb, batch);
            } finally {
                if (captured != null) {
                    h.setWorkspace(WORKSPACE[dev.index()], Cublas.RECOMMENDED_WORKSPACE_BYTES);
                    dev.allocator().free(captured);
                }
            }
        }
        return true;
    }

    /**
     * Inside a capture, the call's scratch comes from the graph's own pool (freed after it, stream-ordered like any
     * temporary of the graph): graphs replayed side by side on streams of their own (a predictor's lanes) must not share
     * the device's one workspace, which split-K products write. Outside a capture: null, the device's workspace.
     */
    private static CudaAllocator.Block capturedWorkspace(CudaDevice dev) {
        return dev.allocator().capturing() ? dev.allocator().allocate(Cublas.RECOMMENDED_WORKSPACE_BYTES) : null;
    }
}
