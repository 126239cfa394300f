package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ReduceOp;

/**
 * Batched matrix products on CUDA: cuBLAS where it is present and the layout suits it ({@link Blas}), else the tiled kernel of
 * matmul.cu; linear with its bias (and its bias gradient) fused into one cuBLASLt GEMM where cuBLASLt takes the problem.
 */
final class MatmulCuda extends CudaFamily {
    private final Kernels.Table gemm;
    private final ReductionsCuda reductions;

    MatmulCuda(CudaBackend backend, ReductionsCuda reductions) {
        super(backend);
        this.reductions = reductions;
        gemm = new Kernels.Table(dev, "matmul.cu", "gemm");
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
        boolean fused = in > 0 && (long) n * out > 0 && Blas.tryLtTo(dev, dev.allowTf32(), x.dtype(), t, bc == null ? CublasLt.Epilogue.DEFAULT : CublasLt.Epilogue.BIAS,
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
        boolean fused = in > 0 && Blas.tryLt(dev, x.dtype(), bc == null ? CublasLt.Epilogue.DEFAULT : CublasLt.Epilogue.BIAS, false,
                !lw.transposed(), lx.transposed(), out, n, in, ptr(wc), lw.ld(), ptr(xc), lx.ld(), ptr(y), out, bc == null ? 0 : ptr(bc));
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
            fused = !lg.transposed() && Blas.tryLtTo(dev, dev.allowTf32(), t, o, epilogue, lx.transposed(), true, in, out, n, ptr(xc), lx.ld(),
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
        if (Blas.tryGemm(dev, t, batch, m, n, k, a, sab, sam, sak, b, sbb, sbk, sbn, c, scb, scm, accumulate)) return;
        if (!t.isFloating()) throw new IllegalArgumentException("matmul: expected floating tensors, got " + t);
        for (int b0 = 0; b0 < batch; b0 += 65535) {
            int nb = Math.min(65535, batch - b0);
            Launch.args().ptr(c).ptr(a).ptr(b).gemm(m, n, k, sab, sam, sak, sbb, sbk, sbn, scb, scm, accumulate).i32(b0)
                    .go(dev, gemm.get(t), (int) ((n + 63) / 64), (int) ((m + 63) / 64), nb, 256, 0);
        }
    }
}
