package dev.kiln.cuda;

import dev.kiln.DType;

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
        return LT[dev.index()] = CublasLt.create();
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
        Cublas h = handle(dev);
        if (h == null) return false;
        synchronized (h) {
            CublasLt lt = lt(dev);
            if (lt == null) return false;
            dev.makeCurrent();
            return lt.matmul(t, dev.allowTf32(), epilogue, accumulate, transA, transB, (int) m, (int) n, (int) k, a, (int) lda,
                    b, (int) ldb, d, (int) ldd, bias, WORKSPACE[dev.index()], Cublas.RECOMMENDED_WORKSPACE_BYTES,
                    dev.stream().address(), Cuda.cudnnBenchmark() && !dev.allocator().capturing());
        }
    }

    private static boolean fits(long v) { return v >= 0 && v <= Integer.MAX_VALUE; }

    /** Runs C = A x B (+ C) through cuBLAS and returns true, or returns false when cuBLAS cannot take it. */
    static boolean tryGemm(CudaDevice dev, DType t, int batch, long m, long n, long k, long a, long sab, long sam, long sak,
                           long b, long sbb, long sbk, long sbn, long c, long scb, long scm, boolean accumulate) {
        if (!t.isFloating() || !fits(m) || !fits(n) || !fits(k) || scm < n || !fits(scm) || k == 0) return false;
        GemmOperand la = GemmOperand.of(batch, m, k, sab, sam, sak), lb = GemmOperand.of(batch, k, n, sbb, sbk, sbn);
        if (la == null || lb == null) return false;
        // row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: B goes first. One product: through cuBLASLt, whose timed
        // search finds faster kernels for the narrow products of small models than cuBLAS's fixed pick
        if (batch == 1 && tryLt(dev, t, CublasLt.Epilogue.DEFAULT, accumulate, lb.transposed(), la.transposed(), n, m, k,
                b, lb.ld(), a, la.ld(), c, Math.max(1, scm), 0)) return true;
        Cublas h = handle(dev);
        if (h == null) return false;
        synchronized (h) {
            dev.makeCurrent();
            // batched: cuBLAS's strided batched GEMM, with C's own strides
            h.gemmStridedBatched(t, dev.allowTf32(), lb.transposed(), la.transposed(), (int) n, (int) m, (int) k, 1.0,
                    b, lb.ld(), lb.batchStride(), a, la.ld(), la.batchStride(), accumulate ? 1.0 : 0.0,
                    c, (int) Math.max(1, scm), scb, batch);
        }
        return true;
    }
}
