package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ReduceOp;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * Batched matrix products on CUDA: cuBLAS where it is present and the layout suits it ({@link Blas}), else the tiled kernel of
 * matmul.cu; linear with its bias (and its bias gradient) fused into one cuBLASLt GEMM where cuBLASLt takes the problem.
 * float32 products (TF32 not allowed) may run on Kiln's own tensor-core kernel instead ({@link #product}).
 */
final class MatmulCuda extends CudaFamily {
    private final Kernels.Table gemm;
    /**
     * The float32 tensor-core products gemm_tc32_{nn, nt, tn, tt} (mma.sync) and gemm_wg32_* (wgmma, Hopper), indexed
     * (transA ? 2 : 0) + (transB ? 1 : 0), and the split-k sum.
     */
    private final Kernels.Single[] tc32 = new Kernels.Single[4], wg32 = new Kernels.Single[4];
    private final Kernels.Single tc32Sum;
    /** Whether the device is Hopper (9.0), whose kernels are built as sm_90a: gemm_wg32 runs there. */
    private final boolean hopper;
    private final ReductionsCuda reductions;

    MatmulCuda(CudaBackend backend, ReductionsCuda reductions) {
        super(backend);
        this.reductions = reductions;
        gemm = new Kernels.Table(dev, "matmul.cu", "gemm");
        String[] ops = {"nn", "nt", "tn", "tt"};
        for (int i = 0; i < 4; i++) {
            tc32[i] = new Kernels.Single(dev, "matmul.cu", "gemm_tc32_" + ops[i]).dynamicShared(TC32_SHARED);
            wg32[i] = new Kernels.Single(dev, "matmul.cu", "gemm_wg32_" + ops[i]).dynamicShared(WG32_SHARED);
        }
        tc32Sum = new Kernels.Single(dev, "matmul.cu", "gemm_tc32_sum");
        hopper = KernelCache.arch(dev).equals("sm_90a");
        tc32Pick = TimedPick.on(dev, hopper ? "gemm_wg32" : "gemm_tc32", "cublas", () -> KernelCache.sourceHash("matmul.cu") + "-" + Cublas.libraryVersion());
    }

    Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        Tensor out = newTensor(new int[]{batch, m, n}, a.dtype());
        if ((long) batch * m * n == 0) return out;
        int[] sa = a.strides(), sb = b.strides();
        gemm(a.dtype(), batch, m, n, k, ptr(a), sa[0], sa[1], sa[2], ptr(b), sb[0], sb[1], sb[2],
                ptr(out), (long) m * n, n, false);
        return out;
    }

    /**
     * linear with a residual: one cuBLASLt product that adds it in the epilogue (D = x·wᵀ + bias + residual, D in the
     * residual's dtype); else the product, then the add.
     */
    Tensor linear(Tensor x, Tensor w, Tensor bias, Tensor residual) {
        if (residual == null) return linear(x, w, bias);
        int n = x.shape()[0], in = x.shape()[1], out = w.shape()[0];
        DType t = residual.dtype();
        Tensor rc = contiguous(residual), xc = gemmReady(x), wc = gemmReady(w), bc = bias == null ? null : contiguous(bias, t);
        Tensor y = newTensor(new int[]{n, out}, t);
        GemmOperand lx = operand(xc), lw = operand(wc);
        boolean fused = in > 0 && (long) n * out > 0 && product(dev.allowTf32(), x.dtype(), t, bc == null ? CublasLt.Epilogue.DEFAULT : CublasLt.Epilogue.BIAS,
                !lw.transposed(), lx.transposed(), out, n, in, ptr(wc), lw.ld(), ptr(xc), lx.ld(), ptr(rc), ptr(y), out, bc == null ? 0 : ptr(bc));
        drop(xc, x);
        drop(wc, w);
        if (bc != null) drop(bc, bias);
        if (!fused) {
            y.storage().release();
            Tensor p = linear(x, w, bias), pt = p.dtype() == t ? p : contiguous(p, t);
            y = backend.binary(BinaryOp.ADD, rc, pt);
            if (pt != p) pt.storage().release();
            p.storage().release();
        }
        drop(rc, residual);
        return y;
    }

    Tensor linear(Tensor x, Tensor w, Tensor bias) {
        int n = x.shape()[0], in = x.shape()[1], out = w.shape()[0];
        Tensor y = newTensor(new int[]{n, out}, x.dtype());
        if ((long) n * out == 0) return y;
        Tensor xc = gemmReady(x), wc = gemmReady(w), bc = bias == null ? null : contiguous(bias);
        GemmOperand lx = operand(xc), lw = operand(wc);
        // column-major: yᵀ (out x N) = op(w) · op(x), w read as (in x out) and x as (in x N) when row-major
        boolean fused = in > 0 && product(dev.allowTf32(), x.dtype(), x.dtype(), bc == null ? CublasLt.Epilogue.DEFAULT : CublasLt.Epilogue.BIAS,
                !lw.transposed(), lx.transposed(), out, n, in, ptr(wc), lw.ld(), ptr(xc), lx.ld(), 0, ptr(y), out, bc == null ? 0 : ptr(bc));
        if (!fused) {
            if (bc != null) backend.copy(y, new Tensor(bc.storage(), new int[]{n, out}, new int[]{0, 1}, bc.offset()));
            else if (in == 0) backend.fill(y, 0);
            int[] sx = xc.strides(), sw = wc.strides();
            gemm(x.dtype(), 1, n, out, in, ptr(xc), 0, sx[0], sx[1], ptr(wc), 0, sw[1], sw[0], ptr(y), (long) n * out, out, bc != null);
        }
        drop(xc, x);
        drop(wc, w);
        if (bc != null) drop(bc, bias);
        return y;
    }

    /**
     * linear's weight gradient gᵀ·x (out, in) into dw and, when db is not null, its bias gradient (the sums of g's
     * columns, out) into db: the GEMM, and the column sums 16 bytes a thread where g's rows allow (cuBLASLt's BGRADB
     * epilogue runs a bias-gradient kernel of its own, slower: 0.385 against 0.335 ms of a GPT bf16 step), else the GEMM
     * with that epilogue, else a GEMM and a reduction.
     */
    void linearBackwardWeight(Tensor g, Tensor x, Tensor dw, Tensor db) {
        int n = g.shape()[0], out = g.shape()[1], in = x.shape()[1];
        DType t = g.dtype(), o = dw.dtype();
        if ((long) out * in == 0) return;
        if (n == 0) {
            backend.fill(dw, 0);
            if (db != null) backend.fill(db, 0);
            return;
        }
        if (!dw.isContiguous() || db != null && (!db.isContiguous() || db.dtype() != o)) {
            throw new IllegalArgumentException("linearBackwardWeight: contiguous dw and db of one dtype expected");
        }
        Tensor gc = gemmReady(g), xc = gemmReady(x);
        GemmOperand lg = operand(gc), lx = operand(xc);
        // column-major: dwᵀ (in x out) = op(x) · op(g), x read as (in x N) and g as (out x N), transposed: BGRADB sums
        // op(g) over N, which cuBLASLt does only for a transposed B, so g must be row-major. D (and the bias gradient)
        // may be float32 beside 16-bit operands: a float32 parameter's gradient with no cast of its own
        boolean sumsApart = db != null && !lg.transposed() && lg.ld() == out && ReductionsCuda.vectorised(t, ptr(gc), out);
        if (sumsApart) reductions.colReduce(ReduceOp.SUM, ptr(db), o, ptr(gc), t, n, out);
        Tensor epilogueDb = sumsApart ? null : db;
        CublasLt.Epilogue epilogue = epilogueDb != null ? CublasLt.Epilogue.BGRADB : CublasLt.Epilogue.DEFAULT;
        long bias = epilogueDb != null ? ptr(epilogueDb) : 0;
        boolean fused;
        if (!lg.transposed() && t.byteSize() == 2 && lg.ld() % 8 != 0) {
            // 16-bit gradient rows off 16-byte boundaries (a 65-token vocabulary's head): for them cuBLASLt's only kernel is
            // a generic one (magma_sgemmEx, 0.68 ms of a 7.6 ms GPT step); from a copy with padded rows (~10 µs) it runs
            // its tensor-core kernels
            int ld = (out + 7) / 8 * 8;
            Tensor padded = newTensor(new int[]{n, ld}, t);
            backend.copy(new Tensor(padded.storage(), new int[]{n, out}, new int[]{ld, 1}, 0), gc);
            fused = Blas.tryLtTo(dev, dev.allowTf32(), t, o, epilogue, lx.transposed(), true, in, out, n, ptr(xc), lx.ld(), ptr(padded), ld, 0,
                    ptr(dw), in, bias);
            padded.storage().release();
        } else {
            fused = !lg.transposed() && product(dev.allowTf32(), t, o, epilogue, lx.transposed(), true, in, out, n, ptr(xc), lx.ld(),
                    ptr(gc), lg.ld(), 0, ptr(dw), in, bias);
        }
        if (!fused) {
            int[] sg = gc.strides(), sx = xc.strides();
            Tensor d = o == t ? dw : newTensor(new int[]{out, in}, t);
            gemm(t, 1, out, in, n, ptr(gc), 0, sg[1], sg[0], ptr(xc), 0, sx[0], sx[1], ptr(d), (long) out * in, in, false);
            if (d != dw) {
                backend.copy(dw, d);
                d.storage().release();
            }
            if (epilogueDb != null) {
                Tensor sum = backend.reduce(ReduceOp.SUM, gc, new int[]{0}, false);
                backend.copy(epilogueDb, sum);
                sum.storage().release();
            }
        }
        drop(gc, g);
        drop(xc, x);
    }

    /**
     * linearAfter's input gradient after the tanh GELU, (g·w) times GELU's derivative at h, as one cuBLASLt product with the
     * DGELU epilogue (h read in the epilogue: no (N, in) product written and read again); null where that does not apply
     * or cuBLASLt refuses the problem (the caller composes it).
     */
    Tensor linearAfterBackwardInput(BinaryOp activationBackward, Tensor g, Tensor w, Tensor h) {
        int n = g.shape()[0], out = g.shape()[1], in = w.shape()[1];
        DType t = h.dtype();
        // cuBLASLt reads GELU's input with a leading dimension that is a multiple of 8, laid out as D
        if (activationBackward != BinaryOp.GELU_TANH_BACKWARD || g.dtype() != t || w.dtype() != t || !h.isContiguous() || in % 8 != 0
                || (long) n * in * out == 0) {
            return null;
        }
        Tensor gc = gemmReady(g), wc = gemmReady(w);
        GemmOperand lg = operand(gc), lw = operand(wc);
        Tensor dh = newTensor(new int[]{n, in}, t);
        // column-major: dhᵀ (in x N) = op(w) · op(g), w read as (in x out) and g as (out x N) when row-major
        boolean fused = Blas.tryLt(dev, t, CublasLt.Epilogue.DGELU, false, lw.transposed(), lg.transposed(), in, n, out, ptr(wc), lw.ld(),
                ptr(gc), lg.ld(), ptr(dh), in, ptr(h));
        drop(gc, g);
        drop(wc, w);
        if (fused) return dh;
        dh.storage().release();
        return null;
    }

    /** t itself when cuBLAS can read its layout (row- or column-major), else a contiguous copy. */
    private Tensor gemmReady(Tensor t) { return operand(t) != null ? t : backend.contiguous(t); }

    private static GemmOperand operand(Tensor t) {
        int[] s = t.shape(), st = t.strides();
        return GemmOperand.of(1, s[0], s[1], 0, st[0], st[1]);
    }

    /**
     * C[b] (row-major, column stride 1) = A[b] x B[b] (+ C[b] when accumulate), for any element strides of A and B
     * (batch stride 0 for a shared matrix). cuBLAS when it is present and the layout suits it, else the own kernel.
     */
    void gemm(DType t, int batch, long m, long n, long k, long a, long sab, long sam, long sak, long b, long sbb, long sbk, long sbn,
              long c, long scb, long scm, boolean accumulate) {
        BooleanSupplier library = () -> Blas.tryGemm(dev, t, batch, m, n, k, a, sab, sam, sak, b, sbb, sbk, sbn, c, scb, scm, accumulate);
        GemmOperand la = GemmOperand.of(batch, m, k, sab, sam, sak), lb = GemmOperand.of(batch, k, n, sbb, sbk, sbn);
        // row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: B goes first
        if (batch == 1 && la != null && lb != null && scm >= n && k > 0
                ? product(dev.allowTf32(), t, t, CublasLt.Epilogue.DEFAULT, lb.transposed(), la.transposed(), n, m, k, b, lb.ld(), a, la.ld(),
                        accumulate ? c : 0, c, Math.max(1, scm), 0, library)
                : library.getAsBoolean()) {
            return;
        }
        if (!t.isFloating()) throw new IllegalArgumentException("matmul: expected floating tensors, got " + t);
        for (int b0 = 0; b0 < batch; b0 += 65535) {
            int nb = Math.min(65535, batch - b0);
            Launch.args().ptr(c).ptr(a).ptr(b).gemm(m, n, k, sab, sam, sak, sbb, sbk, sbn, scb, scm, accumulate).i32(b0)
                    .go(dev, gemm.get(t), (int) ((n + 63) / 64), (int) ((m + 63) / 64), nb, 256, 0);
        }
    }

    /** gemm_tc32's tile of D (TC32_BM x TC32_BN) and threads a block (as matmul.cu): one block a multiprocessor. */
    private static final int TC32_BM = 128, TC32_BN = 128, TC32_THREADS = 256;
    /** Dynamic shared memory of gemm_tc32: three stages of two operand tiles of 128 x 36 floats. */
    private static final int TC32_SHARED = 3 * 2 * TC32_BM * 36 * Float.BYTES;
    /** gemm_wg32's: four stages of the two operand tiles and two sets of B's split tile (hi and lo, 128 x 32 floats each). */
    static final int WG32_SHARED = 4 * 2 * TC32_BM * 36 * Float.BYTES + 2 * 2 * TC32_BN * 32 * Float.BYTES;

    /** {@link #product(boolean, DType, DType, CublasLt.Epilogue, boolean, boolean, long, long, long, long, long, long, long, long, long, long, long, BooleanSupplier)} with cuBLASLt as the library. */
    private boolean product(boolean tf32, DType t, DType out, CublasLt.Epilogue epilogue, boolean transA, boolean transB, long m, long n,
                            long k, long a, long lda, long b, long ldb, long c, long d, long ldd, long bias) {
        return product(tf32, t, out, epilogue, transA, transB, m, n, k, a, lda, b, ldb, c, d, ldd, bias,
                () -> Blas.tryLtTo(dev, tf32, t, out, epilogue, transA, transB, m, n, k, a, lda, b, ldb, c, d, ldd, bias));
    }

    /**
     * D = op(A)·op(B) (+ bias) (+ C), column-major as {@link Blas#tryLtTo}: matmul.cu's gemm_tc32 (float32 as three TF32
     * tensor-core products, float32's precision) where it applies and the timed search ({@link Cuda#cudnnBenchmark()}) found
     * it faster than {@code library} for this problem, else {@code library}, the cuBLAS call the caller would make; false
     * when that refused. A problem is timed on its first call outside a capture whose C is not D (the runs repeat it).
     */
    private boolean product(boolean tf32, DType t, DType out, CublasLt.Epilogue epilogue, boolean transA, boolean transB, long m, long n,
                            long k, long a, long lda, long b, long ldb, long c, long d, long ldd, long bias, BooleanSupplier library) {
        if (!tc32Applies(tf32, t, out, epilogue, transA, transB, m, n, k, a, lda, b, ldb, ldd)) return library.getAsBoolean();
        Tc32Key key = new Tc32Key(transA, transB, m, n, k, lda, ldb, ldd, epilogue, c != 0);
        Runnable run = () -> tc32(transA, transB, (int) m, (int) n, (int) k, a, (int) lda, b, (int) ldb, c, d, (int) ldd, bias);
        Boolean ours = tc32Forced != null ? tc32Forced : tc32Pick.kept(key);
        if (ours == null && Cuda.cudnnBenchmark() && !dev.allocator().capturing() && c != d) {
            ours = tc32Pick.choose(key, () -> {
                run.run();
                return true;
            }, library);
        }
        if (ours != Boolean.TRUE) return library.getAsBoolean();
        run.run();
        return true;
    }

    /** Tests: TRUE runs gemm_tc32 (or gemm_wg32) wherever it applies, FALSE never, null (the default) as the timed search chose. */
    static volatile Boolean tc32Forced;
    /** Tests: gemm_tc32 (mma.sync) on Hopper too, where gemm_wg32 runs otherwise. */
    static volatile boolean mmaSyncForced;
    /** gemm_tc32 products launched in this process (tests). */
    static final AtomicLong TC32_RUNS = new AtomicLong();

    /** What the timed choice between gemm_tc32 and cuBLAS is kept by. */
    private record Tc32Key(boolean transA, boolean transB, long m, long n, long k, long lda, long ldb, long ldd, CublasLt.Epilogue epilogue, boolean c) {}

    /** Per product, whether the timed search kept gemm_tc32 (not yet chosen: cuBLAS runs). */
    private final TimedPick<Tc32Key> tc32Pick;

    /**
     * Whether gemm_tc32 can take the product: float32 in and out with TF32 not allowed, no epilogue but a bias (matmul.cu
     * says why not a GELU's backward), an sm_80 or later device, products of at least 2^27 multiply-adds (below, launches
     * dominate either way), and each operand's contiguous rows 16-byte aligned (cp.async; a 65-token vocabulary's head is not).
     */
    private boolean tc32Applies(boolean tf32, DType t, DType out, CublasLt.Epilogue epilogue, boolean transA, boolean transB, long m, long n,
                                long k, long a, long lda, long b, long ldb, long ldd) {
        if (tf32 || t != DType.FLOAT32 || out != DType.FLOAT32 || dev.computeCapabilityMajor() < 8) return false;
        if (epilogue != CublasLt.Epilogue.DEFAULT && epilogue != CublasLt.Epilogue.BIAS) return false;
        if (m <= 0 || n <= 0 || k <= 0 || m * n * k < 1L << 27 || Math.max(Math.max(m, n), Math.max(k, Math.max(Math.max(lda, ldb), ldd))) > Integer.MAX_VALUE
                || (n + 127) / 128 > 65535) {
            return false;
        }
        long extentA = transA ? k : m, extentB = transB ? n : k;
        return extentA % 4 == 0 && lda % 4 == 0 && a % 16 == 0 && extentB % 4 == 0 && ldb % 4 == 0 && b % 16 == 0;
    }

    /**
     * Launches gemm_wg32 on Hopper, else gemm_tc32 (see matmul.cu): one 128 x 128 tile of D a block, k split in slices when the tiles alone would leave
     * multiprocessors idle (a weight gradient's 384 x 1152 x 16384: 27 tiles on 132 multiprocessors), the slices' sums
     * added in order by gemm_tc32_sum.
     */
    private void tc32(boolean transA, boolean transB, int m, int n, int k, long a, int lda, long b, int ldb, long c, long d, int ldd, long bias) {
        int kslice = tc32Slice(m, n, k, dev.multiprocessorCount()), slices = (k + kslice - 1) / kslice;
        int gx = (m + TC32_BM - 1) / TC32_BM, gy = (n + TC32_BN - 1) / TC32_BN;
        boolean wgmma = hopper && !mmaSyncForced;
        Kernels.Fn fn = (wgmma ? wg32 : tc32)[(transA ? 2 : 0) + (transB ? 1 : 0)].get();
        int shared = wgmma ? WG32_SHARED : TC32_SHARED;
        TC32_RUNS.incrementAndGet();
        if (slices == 1) {
            Launch.args().ptr(d).ptr(a).ptr(b).ptr(c).ptr(bias).ptr(0).ints(m, n, k, lda, ldb, ldd, kslice)
                    .go(dev, fn, gx, gy, 1, TC32_THREADS, shared);
            return;
        }
        CudaAllocator.Block part = dev.allocator().allocate((long) slices * m * n * Float.BYTES);
        try {
            Launch.args().ptr(d).ptr(a).ptr(b).ptr(0).ptr(0).ptr(part.address()).ints(m, n, k, lda, ldb, ldd, kslice)
                    .go(dev, fn, gx, gy, slices, TC32_THREADS, shared);
            long blocks = Math.min(((long) m * n + 255) / 256, 8L * dev.multiprocessorCount());
            Launch.args().ptr(d).ptr(part.address()).ptr(c).ptr(bias).ints(m, n, k, lda, ldb, ldd, kslice).i32(slices)
                    .go(dev, tc32Sum.get(), (int) blocks, 1, 1, 256, 0);
        } finally {
            dev.allocator().free(part);   // stream-ordered: the next user of the block runs after these kernels
        }
    }

    /**
     * The k extent of one slice (a multiple of the 32-deep tile): all of k, or the split that takes the fewest waves of
     * tiles per unit of k ({@code slots} blocks resident at once), up to 16 slices of at least 256, when it saves 5%.
     */
    static int tc32Slice(long m, long n, int k, int slots) {
        long tiles = ((m + TC32_BM - 1) / TC32_BM) * ((n + TC32_BN - 1) / TC32_BN);
        double best = (tiles + slots - 1) / slots;
        int slice = k;
        for (int s = 2; s <= 16; s++) {
            int ks = ((k + s - 1) / s + 31) / 32 * 32;
            if (ks < 256) break;
            int used = (k + ks - 1) / ks;
            double waves = (double) ((tiles * used + slots - 1) / slots) / used;
            if (waves < best * 0.95) {
                best = waves;
                slice = ks;
            }
        }
        return slice;
    }
}
