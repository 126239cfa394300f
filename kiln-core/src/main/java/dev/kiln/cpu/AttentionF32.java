package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.ops.Views;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Attention family: {@link AttentionCpu}'s float32 path. Per (batch, head), on one thread each, a block of
 * rows at a time, the scores are made by the float GEMM (Sgemm) against the head's keys packed once, softmaxed in place
 * a row at a time (in vector lanes, ElementwiseCpu's exp), and multiplied by V; backward recomputes them from the saved
 * logsumexp and makes dV, dP, dQ and dK as four more products. Operands are read where they lie, any row strides (a
 * self-attention's q, k and v are strided views of one projection): copying them contiguous cost a GPT layer six
 * 25 MB copies and their new arrays. The output is laid out (B, L, H, dv), so merging the heads is free, and the
 * gradients of a packed q, k and v go into one buffer of their projection's layout ({@link Backend#packedHeads}), as on
 * CUDA. One (L, S) float buffer per thread, not per head. The double-precision loops of AttentionCpu stay for float64
 * and as the reference (`AttentionF32Test`).
 */
final class AttentionF32 {
    private AttentionF32() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final Sgemm GEMM = Sgemm.PREFERRED;

    /**
     * One (B, H, n, e) operand read in place: head bh's row i starts at data[at(bh, i)], its e values one apart.
     * rs may be 0 (a mask broadcast over queries).
     */
    private record Heads(float[] data, int off, int sb, int sh, int h, int rs) {
        /** x itself when it is float32 with unit stride along its last dim, else a contiguous float32 copy. */
        static Heads of(Tensor x) {
            int[] st = x.strides();
            Tensor t = x.dtype() == DType.FLOAT32 && (st[3] == 1 || x.size(3) == 1) ? x : x.detach().to(DType.FLOAT32).contiguous();
            st = t.strides();
            return new Heads((float[]) CpuStorage.arrayOf(t), t.offset(), st[0], st[1], t.size(1), st[2]);
        }

        int at(int bh, int i) { return off + bh / h * sb + bh % h * sh + i * rs; }

        /** Head bh's rows from i on, as an (n, e) matrix. */
        Sgemm.Mat rows(int bh, int i) { return new Sgemm.Mat(data, at(bh, i), rs, 1); }

        /** Head bh's rows as the (e, n) matrix of their transpose. */
        Sgemm.Mat columns(int bh) { return new Sgemm.Mat(data, at(bh, 0), 1, rs); }

        /**
         * Head bh's n rows (e wide) copied into to from off, e apart, as a matrix: the products read a projection's heads,
         * rows 3H heads apart, and summed dk and dv into them, a third slower than at unit stride.
         */
        Sgemm.Mat copyTo(int bh, int n, int e, float[] to, int off) {
            for (int i = 0; i < n; i++) System.arraycopy(data, at(bh, i), to, off + i * e, e);
            return new Sgemm.Mat(to, off, e, 1);
        }

        /** Head bh's n rows (e wide) from from[off..], rows e apart. */
        void copyFrom(int bh, int n, int e, float[] from, int off) {
            for (int i = 0; i < n; i++) System.arraycopy(from, off + i * e, data, at(bh, i), e);
        }
    }

    /**
     * Rows per block. Causal attention multiplies block [i0, i1) by the keys before i1 only: at 256 tokens, 64-row blocks
     * skip 37% of the products' work (the masked triangle), and the products stay large enough for the GEMM.
     */
    private static final int ROWS = 64;

    /** Keys a block of rows up to i1 sees: those before i1 when causal, else all s. */
    private static int keys(boolean causal, int i1, int s) { return causal ? Math.min(s, i1) : s; }

    /**
     * The head's keys (or values) as the B of a product with them transposed, packed once for all its blocks: transposed
     * B is the GEMM's slowest to pack (one value at a time), and each block had packed every key before its last row.
     */
    private static float[] packColumns(Sgemm.Mat columns, int e, int n, int slot) {
        float[] packed = ThreadBuffers.get(slot, Sgemm.packedLength(n, e, GEMM.NR));
        GEMM.packAllB(columns, e, n, packed);
        return packed;
    }

    /**
     * The scores of rows [i0, i1) of head bh (q its rows) against its first `keys` keys (packed in pk) into p (rows s apart), each row
     * then exp(scale·score + mask - shift), zero past the keys it sees. Forward (lseOut not null) shifts by the row's
     * maximum and leaves each row unnormalised: norm[i - i0] gets 1 / its sum, lseOut its logsumexp (NaN, and norm NaN,
     * for a row that sees no key). Backward (lseIn, from lseOff) shifts by the saved logsumexp, which makes the probabilities
     * themselves; a row whose logsumexp is NaN gives zeros.
     */
    private static void probabilities(Sgemm.Mat q, float[] pk, Heads mask, int bh, int l, int s, int d, int i0, int i1, int keys,
                                      boolean causal, float scale, float[] p, float[] norm, float[] lseOut, float[] lseIn, int lseOff) {
        GEMM.packedColumns(i1 - i0, keys, d, q.at(i0, 0), pk, Sgemm.roundUp(s, GEMM.NR), 0, p, i0 * s, s, false);
        int lanes = F.length();
        FloatVector vscale = FloatVector.broadcast(F, scale), ninf = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY), zero = FloatVector.zero(F);
        float[] md = mask == null ? null : mask.data;
        for (int i = i0; i < i1; i++) {
            int ro = i * s, mo = mask == null ? 0 : mask.at(bh, i), visible = causal ? Math.min(s, i + 1) : s;
            // whole vectors up to the last one holding a visible key, its lanes past them masked (a causal row ends
            // anywhere: its tail one exp at a time was a fifth of the time); one at a time only at the end of a row
            int up = (visible + lanes - 1) / lanes * lanes, vec = up <= s ? up : F.loopBound(visible), j;
            float shift;
            if (lseIn != null) {
                shift = lseIn[lseOff + bh * l + i];
            } else {
                FloatVector vmx = ninf;
                for (j = 0; j < vec; j += lanes) {
                    FloatVector x = score(p, ro + j, md, mo + j, vscale);
                    vmx = vmx.max(j + lanes <= visible ? x : x.blend(ninf, F.indexInRange(j, visible).not()));
                }
                float mx = Lanes.max(vmx);
                for (; j < visible; j++) mx = Math.max(mx, md == null ? p[ro + j] * scale : Math.fma(p[ro + j], scale, md[mo + j]));
                shift = mx;
            }
            FloatVector vshift = FloatVector.broadcast(F, shift), vsum = zero;
            for (j = 0; j < vec; j += lanes) {
                FloatVector e = ElementwiseCpu.exp(score(p, ro + j, md, mo + j, vscale).sub(vshift));
                if (j + lanes > visible) e = e.blend(zero, F.indexInRange(j, visible).not());
                e.intoArray(p, ro + j);
                vsum = vsum.add(e);
            }
            double sum = Lanes.sum(vsum);   // in lane order, in double (JitTierDeterminismTest)
            for (; j < visible; j++) {
                float x = md == null ? p[ro + j] * scale : Math.fma(p[ro + j], scale, md[mo + j]);
                sum += p[ro + j] = ElementwiseCpu.exp(x - shift);
            }
            if (j < keys) java.util.Arrays.fill(p, ro + j, ro + keys, 0f);
            if (lseIn != null) {
                // a row that saw no key (logsumexp NaN) gives nothing back
                if (Float.isNaN(shift)) java.util.Arrays.fill(p, ro, ro + visible, 0f);
            } else if (!(sum > 0)) {   // no key visible: NaN, as the composite
                java.util.Arrays.fill(p, ro, ro + keys, 0f);
                norm[i - i0] = Float.NaN;
                lseOut[bh * l + i] = Float.NaN;
            } else {
                norm[i - i0] = (float) (1 / sum);
                lseOut[bh * l + i] = (float) (shift + Math.log(sum));
            }
        }
    }

    /** A vector of a row's scaled scores, plus the mask's when there is one: the same expression in every pass. */
    private static FloatVector score(float[] p, int at, float[] mask, int maskAt, FloatVector scale) {
        FloatVector x = FloatVector.fromArray(F, p, at);
        return mask == null ? x.mul(scale) : x.fma(scale, FloatVector.fromArray(F, mask, maskAt));
    }

    static Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        Heads qh = Heads.of(q), kh = Heads.of(k), vh = Heads.of(v), mh = mask == null ? null : Heads.of(mask);
        // every element written below: each row's output by its block's product, its logsumexp (or NaN) by probabilities
        Tensor outT = CpuStorage.unsetTensor(new int[]{b, l, h, dv}, DType.FLOAT32).permute(0, 2, 1, 3);
        Tensor lseT = CpuStorage.unsetTensor(new int[]{b, h, l}, DType.FLOAT32);
        Heads out = Heads.of(outT);
        float[] lse = (float[]) CpuStorage.arrayOf(lseT);
        Parallel.range(bhs, 1, (lo, hi) -> {
            Sgemm.Scratch scratch = GEMM.localScratch();
            float[] p = ThreadBuffers.get(ThreadBuffers.ATTENTION_SCORES, l * s), norm = new float[ROWS];
            float[] local = ThreadBuffers.get(ThreadBuffers.ATTENTION_HEAD, l * d + s * dv);
            for (int bh = lo; bh < hi; bh++) {
                float[] pk = packColumns(kh.columns(bh), d, s, ThreadBuffers.ATTENTION_KEYS);
                Sgemm.Mat qm = qh.copyTo(bh, l, d, local, 0), vm = vh.copyTo(bh, s, dv, local, l * d);
                for (int i0 = 0; i0 < l; i0 += ROWS) {
                    int i1 = Math.min(l, i0 + ROWS), keys = keys(causal, i1, s);
                    probabilities(qm, pk, mh, bh, l, s, d, i0, i1, keys, causal, (float) scale, p, norm, lse, null, 0);
                    // out_bh[i0:i1] = p[i0:i1, 0:keys] · v_bh[0:keys], then each row divided by its sum
                    GEMM.gemm(i1 - i0, dv, keys, new Sgemm.Mat(p, i0 * s, s, 1), vm, out.data, out.at(bh, i0), out.rs, false, scratch);
                    for (int i = i0; i < i1; i++) scaleRow(out.data, out.at(bh, i), dv, norm[i - i0]);
                }
            }
        });
        return new Tensor[]{outT, lseT};
    }

    private static void scaleRow(float[] x, int off, int n, float by) {
        int j = 0;
        for (; j + F.length() <= n; j += F.length()) FloatVector.fromArray(F, x, off + j).mul(by).intoArray(x, off + j);
        for (; j < n; j++) x[off + j] *= by;
    }

    static Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        Heads qh = Heads.of(q), kh = Heads.of(k), vh = Heads.of(v), mh = mask == null ? null : Heads.of(mask);
        Heads gh = Heads.of(g), oh = Heads.of(out);
        Tensor lseT = logSumExp.detach().to(DType.FLOAT32).contiguous();
        float[] lse = (float[]) CpuStorage.arrayOf(lseT);
        // every element written below, a head at a time from its local sums: dq's rows once per block; dk and dv, sums over
        // the blocks, by the first block taken (the last, which sees the most keys) and zeroed past the keys it sees
        Tensor dqT, dkT, dvT;
        if (Backend.packedHeads(q, k, v)) {
            // one buffer of the projection's (B, L, 3H, d) layout: its gradient needs no assembling copies
            Tensor packed = CpuStorage.unsetTensor(new int[]{b, l, 3 * h, d}, DType.FLOAT32);
            dqT = Views.sliceRaw(packed, 2, 0, h, 1).transpose(1, 2);
            dkT = Views.sliceRaw(packed, 2, h, 2 * h, 1).transpose(1, 2);
            dvT = Views.sliceRaw(packed, 2, 2 * h, 3 * h, 1).transpose(1, 2);
        } else {
            dqT = CpuStorage.unsetTensor(new int[]{b, h, l, d}, DType.FLOAT32);
            dkT = CpuStorage.unsetTensor(new int[]{b, h, s, d}, DType.FLOAT32);
            dvT = CpuStorage.unsetTensor(new int[]{b, h, s, dv}, DType.FLOAT32);
        }
        Heads dq = Heads.of(dqT), dk = Heads.of(dkT), dvh = Heads.of(dvT);
        float sc = (float) scale;
        FloatVector vsc = FloatVector.broadcast(F, sc), zero = FloatVector.zero(F);
        Parallel.range(bhs, 1, (lo, hi) -> {
            Sgemm.Scratch scratch = GEMM.localScratch();
            float[] p = ThreadBuffers.get(ThreadBuffers.ATTENTION_SCORES, l * s);
            float[] dp = ThreadBuffers.get(ThreadBuffers.ATTENTION_GRADS, l * s);
            int nPad = Sgemm.roundUp(s, GEMM.NR);
            // the head's q, k, g and its dq, dk, dv at unit row stride, one after another
            int qo = 0, ko = qo + l * d, go = ko + s * d, dqo = go + l * dv, dko = dqo + l * d, dvo = dko + s * d;
            float[] local = ThreadBuffers.get(ThreadBuffers.ATTENTION_HEAD, dvo + s * dv);
            for (int bh = lo; bh < hi; bh++) {
                Sgemm.Mat qm = qh.copyTo(bh, l, d, local, qo), km = kh.copyTo(bh, s, d, local, ko), gm = gh.copyTo(bh, l, dv, local, go);
                float[] pk = packColumns(new Sgemm.Mat(local, ko, 1, d), d, s, ThreadBuffers.ATTENTION_KEYS);
                float[] pv = packColumns(vh.columns(bh), dv, s, ThreadBuffers.ATTENTION_VALUES);
                int last = l == 0 ? -1 : (l - 1) / ROWS * ROWS, covered = l == 0 ? 0 : keys(causal, l, s);
                java.util.Arrays.fill(local, dko + covered * d, dko + s * d, 0f);
                java.util.Arrays.fill(local, dvo + covered * dv, dvo + s * dv, 0f);
                for (int i0 = last; i0 >= 0; i0 -= ROWS) {
                    int i1 = Math.min(l, i0 + ROWS), keys = keys(causal, i1, s), rows = i1 - i0;
                    boolean sum = i0 != last;
                    probabilities(qm, pk, mh, bh, l, s, d, i0, i1, keys, causal, sc, p, null, null, lse, lseT.offset());
                    // dv_bh[0:keys] (+)= pᵀ · g;  dp = g · v_bh[0:keys]ᵀ
                    GEMM.gemm(keys, dv, rows, new Sgemm.Mat(p, i0 * s, 1, s), gm.at(i0, 0), local, dvo, dv, sum, scratch);
                    GEMM.packedColumns(rows, keys, dv, gm.at(i0, 0), pv, nPad, 0, dp, i0 * s, s, false);
                    // ds = p * (dp - delta) * scale, delta_i = sum_c g_ic out_ic (the row's sum of p * dp); 0 where p is
                    for (int i = i0; i < i1; i++) {
                        int gi = go + i * dv, oi = oh.at(bh, i), ro = i * s, j = 0, c = 0;
                        FloatVector acc = zero;
                        for (; c + F.length() <= dv; c += F.length()) {
                            acc = FloatVector.fromArray(F, local, gi + c).fma(FloatVector.fromArray(F, oh.data, oi + c), acc);
                        }
                        double delta = Lanes.sum(acc);
                        for (; c < dv; c++) delta += (double) local[gi + c] * oh.data[oi + c];
                        FloatVector dl = FloatVector.broadcast(F, (float) delta);
                        for (; j + F.length() <= keys; j += F.length()) {
                            FloatVector pj = FloatVector.fromArray(F, p, ro + j);
                            FloatVector ds = pj.mul(FloatVector.fromArray(F, dp, ro + j).sub(dl)).mul(vsc);
                            ds.blend(zero, pj.compare(VectorOperators.GT, 0f).not()).intoArray(dp, ro + j);
                        }
                        for (; j < keys; j++) dp[ro + j] = p[ro + j] > 0 ? p[ro + j] * (dp[ro + j] - (float) delta) * sc : 0f;
                    }
                    // dq_bh[i0:i1] = ds · k_bh[0:keys];  dk_bh[0:keys] (+)= dsᵀ · q_bh[i0:i1]
                    GEMM.gemm(rows, d, keys, new Sgemm.Mat(dp, i0 * s, s, 1), km, local, dqo + i0 * d, d, false, scratch);
                    GEMM.gemm(keys, d, rows, new Sgemm.Mat(dp, i0 * s, 1, s), qm.at(i0, 0), local, dko, d, sum, scratch);
                }
                dq.copyFrom(bh, l, d, local, dqo);
                dk.copyFrom(bh, s, d, local, dko);
                dvh.copyFrom(bh, s, dv, local, dvo);
            }
        });
        return new Tensor[]{dqT, dkT, dvT};
    }
}
