package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.ops.Views;

/**
 * Fused attention on CUDA: cuDNN's flash kernels where they take the call (16-bit, no mask but causal, d = dv a multiple
 * of 8 up to 128; {@link AttentionPlan}), else Kiln's own (attention.cu), head sizes up to 128 for bfloat16 and float16, up to 64 for float32 and float64:
 * the first three on tensor cores (mma.sync, FlashAttention-2: a warp per 16 queries or keys; float32 as three TF32
 * products, or one where TF32 is allowed);
 * float64 a thread per query (forward, dq) or key (dk, dv) with the other side staged in shared memory. Inputs are read through their strides (the heads of a (B, T, H, d) view
 * need no copy); outputs and gradients are laid out (B, L, H, d) and returned as (B, H, L, d) views, so merging the
 * heads afterwards is free.
 */
final class AttentionCuda extends CudaFamily {
    private static final int ROWS = 64; // ATT_ROWS
    private final Kernels.Table fwd32, fwd64, dq32, dq64, dk32, dk64, dv32, dv64, delta;
    private final Kernels.Table mmaFwd32, mmaFwd64, mmaBwd32, mmaBwd64, mmaDelta, mmaDqFinish; // tensor cores, 16-bit inputs
    private final Kernels.Table mmaFwd128, mmaBwd128;      // 16-bit only, in dynamic shared memory
    private final Kernels.Table mmaDeltaV, mmaDqFinishV;   // the same with 16-byte accesses

    AttentionCuda(CudaBackend backend) {
        super(backend);
        fwd32 = new Kernels.Table(dev, "attention.cu", "attention_fwd_d32");
        fwd64 = new Kernels.Table(dev, "attention.cu", "attention_fwd_d64");
        dq32 = new Kernels.Table(dev, "attention.cu", "attention_bwd_dq_d32");
        dq64 = new Kernels.Table(dev, "attention.cu", "attention_bwd_dq_d64");
        dk32 = new Kernels.Table(dev, "attention.cu", "attention_bwd_dk_d32");
        dk64 = new Kernels.Table(dev, "attention.cu", "attention_bwd_dk_d64");
        dv32 = new Kernels.Table(dev, "attention.cu", "attention_bwd_dv_d32");
        dv64 = new Kernels.Table(dev, "attention.cu", "attention_bwd_dv_d64");
        delta = new Kernels.Table(dev, "attention.cu", "attention_delta");
        mmaFwd32 = new Kernels.Table(dev, "attention.cu", "attention_mma_fwd_d32").dynamicShared(tc32Shared(true, 32));
        mmaFwd64 = new Kernels.Table(dev, "attention.cu", "attention_mma_fwd_d64").dynamicShared(tc32Shared(true, 64));
        mmaBwd32 = new Kernels.Table(dev, "attention.cu", "attention_mma_bwd_d32").dynamicShared(tc32Shared(false, 32));
        mmaBwd64 = new Kernels.Table(dev, "attention.cu", "attention_mma_bwd_d64").dynamicShared(tc32Shared(false, 64));
        mmaFwd128 = new Kernels.Table(dev, "attention.cu", "attention_mma_fwd_d128").dynamicShared(FWD128_SHARED);
        mmaBwd128 = new Kernels.Table(dev, "attention.cu", "attention_mma_bwd_d128").dynamicShared(BWD128_SHARED);
        mmaDelta = new Kernels.Table(dev, "attention.cu", "attention_mma_delta");
        mmaDqFinish = new Kernels.Table(dev, "attention.cu", "attention_mma_dq_finish");
        mmaDeltaV = new Kernels.Table(dev, "attention.cu", "attention_mma_delta_v");
        mmaDqFinishV = new Kernels.Table(dev, "attention.cu", "attention_mma_dq_finish_v");
    }

    // attention.cu's MmaFwdShared<128, 2> (128 rows of Q, K and V twice of 64 rows; rows of 128 + 8 two-byte elements)
    // and MmaBwdShared<128> (K, V, Q, dO; dS^T 64 x (64 + 8); 64 log-sum-exps and deltas)
    private static final int FWD128_SHARED = (2 * 64 + 4 * 64) * 136 * 2, BWD128_SHARED = 4 * 64 * 136 * 2 + 64 * 72 * 2 + 2 * 64 * 4;

    /**
     * The float32 kernels' dynamic shared memory at head width D (16-bit ones of width 32 and 64 use static): attention.cu's
     * Tc32FwdShared (K and V tiles of 32 rows, twice, each as hi and lo halves; rows of D + 8 and D + 4 floats) and
     * Tc32BwdShared (64 rows of K, 32 of Q and dO, each as hi and lo; dS^T's 64 x (32 + 4), as hi and lo; 32 log-sum-exps
     * and deltas).
     */
    private static int tc32Shared(boolean forward, int width) {
        return forward ? 2 * 2 * 32 * ((width + 8) + (width + 4)) * 4
                : (2 * 64 * (width + 4) + 4 * 32 * (width + 8) + 2 * 64 * 36 + 2 * 32) * 4;
    }

    static boolean supports(DType t, int headDim, int valueDim) {
        int max = t == DType.BFLOAT16 || t == DType.FLOAT16 ? 128 : 64;
        return t.isFloating() && headDim >= 1 && headDim <= max && valueDim >= 1 && valueDim <= max;
    }

    /** The kernels' head width D (d and dv zero-padded to it): 32, 64 or 128. */
    private static int width(int d, int dv) {
        int m = Math.max(d, dv);
        return m <= 32 ? 32 : m <= 64 ? 64 : 128;
    }

    /** x itself when its last dim is contiguous, else a contiguous copy (released with {@link #drop}). */
    private Tensor rows(Tensor x) { return x.size(-1) == 1 || x.strides()[3] == 1 ? x : contiguous(x); }

    /** A (B, L, H, e) tensor seen as (B, H, L, e). */
    private Tensor headsInner(int b, int h, int l, int e, DType t) { return newTensor(new int[]{b, l, h, e}, t).permute(0, 2, 1, 3); }

    private static Launch geo(Launch a, Tensor x) {
        int[] s = x.strides();
        return a.i64(s[0]).i64(s[1]).i64(s[2]);
    }

    private Launch mask(Launch a, Tensor m) {
        if (m == null) return a.i64(0).i64(0).i64(0).i64(0);
        int[] s = m.strides();
        return a.i64(s[0]).i64(s[1]).i64(s[2]).i64(s[3]);
    }

    private long ptrOrNull(Tensor t) { return t == null ? 0 : ptr(t); }

    Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) {
        DType t = q.dtype();
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3);
        Tensor qc = rows(q), kc = rows(k), vc = rows(v), mc = mask == null ? null : contiguousMask(mask, t);
        Tensor out = headsInner(b, h, l, dv, t), lse = newTensor(new int[]{b, h, l}, t.accumulation());
        if ((long) b * h * l * s > 0 && cudnnTakes(mask, d, dv, qc, kc, vc, out)
                && Dnn.attention(dev, cudnnKey(qc, kc, causal, scale, qc, kc, vc, out), true, ptr(qc), ptr(kc), ptr(vc), ptr(out), ptr(lse))) {
            release(qc, q, kc, k, vc, v, mc, mask);
            return new Tensor[]{out, lse};
        }
        if ((long) b * h * l > 0) {
            Launch a = Launch.args().ptr(ptr(out)).ptr(ptr(lse)).ptr(ptr(qc)).ptr(ptr(kc)).ptr(ptr(vc)).ptr(ptrOrNull(mc))
                    .i32(h).i32(l).i32(s).i32(d).i32(dv).i32(causal ? 1 : 0);
            int width = width(d, dv);
            boolean small = width == 32;
            if (tensorCores(t)) {
                a.i32(vec(d, dv, qc, kc, vc) ? 1 : 0);
                if (t == DType.FLOAT32) a.i32(split());
                a.f64(scale);
                Kernels.Table fn = width == 128 ? mmaFwd128 : small ? mmaFwd32 : mmaFwd64;
                int rows = width == 128 ? 128 : 64;   // queries a block: 128 at D = 128 (two row tiles a warp)
                int tiles = (l + rows - 1) / rows;
                // float32's grid is (heads, tiles): the blocks of every head's heaviest causal tile start first
                mask(geo(geo(geo(geo(a, qc), kc), vc), out), mc).go(dev, fn.get(t), t == DType.FLOAT32 ? b * h : tiles,
                        t == DType.FLOAT32 ? tiles : b * h, 1, 128, width == 128 ? FWD128_SHARED : t == DType.FLOAT32 ? tc32Shared(true, width) : 0);
            } else {
                a.f64(scale);
                mask(geo(geo(geo(geo(a, qc), kc), vc), out), mc).go(dev, (small ? fwd32 : fwd64).get(t), (l + ROWS - 1) / ROWS, b * h, 1, ROWS, 0);
            }
        }
        release(qc, q, kc, k, vc, v, mc, mask);
        return new Tensor[]{out, lse};
    }

    Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        DType t = q.dtype();
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3);
        int width = width(d, dv);
        boolean small = width == 32;
        Tensor gc = rows(g.dtype() == t ? g : contiguous(g, t)), qc = rows(q), kc = rows(k), vc = rows(v), oc = rows(out);
        Tensor mc = mask == null ? null : contiguousMask(mask, t), lse = contiguous(logSumExp);
        Tensor dq, dk, dvv;
        if (tensorCores(t) && Backend.packedHeads(q, k, v)) {
            // q, k and v are the three parts of one (B, L, 3H, d) projection: their gradients go into one buffer of that
            // layout, so the projection's gradient needs no assembling copies (see CausalSelfAttention's split)
            Tensor packed = newTensor(new int[]{b, l, 3 * h, d}, t);
            dq = Views.sliceRaw(packed, 2, 0, h, 1).transpose(1, 2);
            dk = Views.sliceRaw(packed, 2, h, 2 * h, 1).transpose(1, 2);
            dvv = Views.sliceRaw(packed, 2, 2 * h, 3 * h, 1).transpose(1, 2);
        } else {
            dq = gradientFor(q, b, h, l, d, t);
            dk = gradientFor(k, b, h, s, d, t);
            dvv = gradientFor(v, b, h, s, dv, t);
        }
        if ((long) b * h * l * s > 0 && cudnnTakes(mask, d, dv, qc, kc, vc, oc, gc, dq, dk, dvv)
                && Dnn.attention(dev, cudnnKey(qc, kc, causal, scale, qc, kc, vc, oc, gc, dq, dk, dvv), false, ptr(qc), ptr(kc), ptr(vc),
                ptr(oc), ptr(gc), ptr(dq), ptr(dk), ptr(dvv), ptr(lse))) {
            release(qc, q, kc, k, vc, v, mc, mask);
            drop(oc, out);
            drop(lse, logSumExp);
            if (gc != g) gc.storage().release();
            return new Tensor[]{dq, dk, dvv};
        }
        Tensor deltas = newTensor(new int[]{b, h, l}, t.accumulation());
        Object[][] passes = {{small ? dq32 : dq64, dq, l}, {small ? dk32 : dk64, dk, s}, {small ? dv32 : dv64, dvv, s}};
        if (tensorCores(t)) {
            passes = new Object[0][];
            mmaBackward(gc, qc, kc, vc, oc, lse, deltas, mc, dq, dk, dvv, causal, scale, width);
        } else if ((long) b * h * l > 0) {
            geo(geo(Launch.args().ptr(ptr(deltas)).ptr(ptr(gc)).ptr(ptr(oc)).i32(h).i32(l).i32(dv), gc), oc)
                    .go(dev, delta.get(t), (l + 127) / 128, b * h, 1, 128, 0);
        }
        for (Object[] p : passes) {
            Tensor dst = (Tensor) p[1];
            int rowsOut = (int) p[2];
            if ((long) b * h * rowsOut == 0) {
                if (dst.numel() > 0) backend.fill(dst, 0);
                continue;
            }
            Launch a = Launch.args().ptr(ptr(dst)).ptr(ptr(gc)).ptr(ptr(qc)).ptr(ptr(kc)).ptr(ptr(vc)).ptr(ptr(lse)).ptr(ptr(deltas))
                    .ptr(ptrOrNull(mc)).i32(h).i32(l).i32(s).i32(d).i32(dv).i32(causal ? 1 : 0).f64(scale);
            mask(geo(geo(geo(geo(geo(a, qc), kc), vc), gc), dst), mc)
                    .go(dev, ((Kernels.Table) p[0]).get(t), (rowsOut + ROWS - 1) / ROWS, b * h, 1, ROWS, 0);
        }
        deltas.storage().release();
        release(qc, q, kc, k, vc, v, mc, mask);
        drop(oc, out);
        drop(lse, logSumExp);
        if (gc != g) gc.storage().release();
        return new Tensor[]{dq, dk, dvv};
    }

    /**
     * Whether cuDNN's fused attention (its flash kernels, Hopper's wgmma among them) takes the call: 16-bit data, no mask
     * but causal, d = dv a multiple of 8 up to 128, every row 16-byte aligned. When its heuristics find no engine for a
     * geometry, {@link Dnn} says so and the kernels below run.
     */
    private boolean cudnnTakes(Tensor mask, int d, int dv, Tensor... xs) {
        DType t = xs[0].dtype();
        if (mask != null || (t != DType.BFLOAT16 && t != DType.FLOAT16) || d != dv || d % 8 != 0 || d > 128 || !Dnn.available(t)) return false;
        for (Tensor x : xs) {
            int[] st = x.strides();
            if (st[3] != 1 || ptr(x) % 16 != 0 || st[0] % 8 != 0 || st[1] % 8 != 0 || st[2] % 8 != 0) return false;
        }
        return true;
    }

    /** The plan key: geometry and the strides of the tensors given (q, k, v, o, then do, dq, dk, dv for the backward). */
    private static AttentionPlan.Key cudnnKey(Tensor q, Tensor k, boolean causal, double scale, Tensor... xs) {
        long[] strides = new long[32];
        for (int i = 0; i < xs.length; i++) for (int j = 0; j < 4; j++) strides[4 * i + j] = xs[i].strides()[j];
        return new AttentionPlan.Key(q.dtype(), q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), q.size(3), causal, (float) scale, strides);
    }

    /**
     * Where x's gradient goes: a contiguous tensor when x is one (a (B, H, L, d) leaf: its gradient then needs no copy
     * into x's layout), else (B, L, H, e) seen as (B, H, L, e), the layout the usual (B, L, H, e) view of the heads takes
     * back.
     */
    private Tensor gradientFor(Tensor x, int b, int h, int l, int e, DType t) {
        return x.isContiguous() ? newTensor(x.shape(), t) : headsInner(b, h, l, e, t);
    }

    /** bfloat16, float16 and float32 take the mma.sync kernels; float64 the thread-per-row ones. */
    private static boolean tensorCores(DType t) { return t == DType.BFLOAT16 || t == DType.FLOAT16 || t == DType.FLOAT32; }

    /** float32 products as three TF32 products (float32's precision), or one where TF32 is allowed for matmul. */
    private int split() { return dev.allowTf32() ? 0 : 1; }

    /**
     * delta = rowsum(dO * O) (zeroing the float32 dq scratch on the way), then one pass over 64-key blocks for dk and dv,
     * dq summed into the scratch by atomics and finished (scaled, cast) after.
     */
    private void mmaBackward(Tensor gc, Tensor qc, Tensor kc, Tensor vc, Tensor oc, Tensor lse, Tensor deltas, Tensor mc, Tensor dq, Tensor dk,
                             Tensor dvv, boolean causal, double scale, int width) {
        DType t = qc.dtype();
        int b = qc.size(0), h = qc.size(1), l = qc.size(2), d = qc.size(3), s = kc.size(2), dv = vc.size(3);
        Tensor acc = newTensor(new int[]{b * h, l, width}, DType.FLOAT32);
        long rows = (long) b * h * l;
        if (rows > 0) {
            boolean v = vec(dv, dv, gc, oc);   // 8 lanes a row with 16-byte loads, else a warp a row
            geo(geo(Launch.args().ptr(ptr(deltas)).ptr(ptr(acc)).ptr(ptr(gc)).ptr(ptr(oc)).i32(h).i32(l).i32(dv).i32(width), gc), oc).i64(rows)
                    .go(dev, (v ? mmaDeltaV : mmaDelta).get(t), (int) (v ? (rows + 15) / 16 : (rows + 3) / 4), 1, 1, 128, 0);
        }
        if ((long) b * h * s > 0) {
            Launch a = Launch.args().ptr(ptr(acc)).ptr(ptr(dk)).ptr(ptr(dvv)).ptr(ptr(gc)).ptr(ptr(qc)).ptr(ptr(kc)).ptr(ptr(vc)).ptr(ptr(lse))
                    .ptr(ptr(deltas)).ptr(ptrOrNull(mc)).i32(h).i32(l).i32(s).i32(d).i32(dv).i32(causal ? 1 : 0)
                    .i32(vec(d, dv, qc, kc, vc, gc) ? 1 : 0);
            if (t == DType.FLOAT32) a.i32(split());
            a.f64(scale);
            Kernels.Table fn = width == 128 ? mmaBwd128 : width == 32 ? mmaBwd32 : mmaBwd64;
            int tiles = (s + 63) / 64;   // float32: (heads, tiles), as the forward
            mask(geo(geo(geo(geo(geo(geo(a, qc), kc), vc), gc), dk), dvv), mc)
                    .go(dev, fn.get(t), t == DType.FLOAT32 ? b * h : tiles, t == DType.FLOAT32 ? tiles : b * h, 1, 128,
                            width == 128 ? BWD128_SHARED : t == DType.FLOAT32 ? tc32Shared(false, width) : 0);
        }
        long n = (long) b * h * l * d;
        if (n > 0) {
            boolean v = vec(d, d, dq);   // 16 bytes of dq a thread
            long chunks = v ? n / (16 / t.byteSize()) : n;
            geo(Launch.args().ptr(ptr(dq)).ptr(ptr(acc)).i32(h).i32(l).i32(d).i32(width).f64(scale), dq).i64(chunks)
                    .go(dev, (v ? mmaDqFinishV : mmaDqFinish).get(t), grid(chunks), BLOCK);
        }
        acc.storage().release();
    }

    /** Whether the tensor-core kernels may move 16-byte chunks: head sizes a multiple of a chunk, every row 16-byte aligned. */
    private boolean vec(int d, int dv, Tensor... xs) {
        int chunk = 16 / xs[0].dtype().byteSize();
        if (d % chunk != 0 || dv % chunk != 0) return false;
        for (Tensor x : xs) {
            int[] st = x.strides();
            if (ptr(x) % 16 != 0 || st[0] % chunk != 0 || st[1] % chunk != 0 || st[2] % chunk != 0) return false;
        }
        return true;
    }

    /** The additive mask in the accumulation dtype, keeping its stride-0 (broadcast) dims. */
    private Tensor contiguousMask(Tensor m, DType t) { return m.dtype() == t.accumulation() ? m : contiguous(m, t.accumulation()); }

    private static void release(Tensor qc, Tensor q, Tensor kc, Tensor k, Tensor vc, Tensor v, Tensor mc, Tensor mask) {
        drop(qc, q);
        drop(kc, k);
        drop(vc, v);
        if (mc != null) drop(mc, mask);
    }
}
