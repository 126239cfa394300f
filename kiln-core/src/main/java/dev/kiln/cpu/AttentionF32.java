package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * Part of the Attention family: {@link AttentionCpu}'s float32 path. Per (batch, head), on one thread each, a block of
 * rows at a time, the scores are made by the float GEMM (Sgemm), softmaxed in place a row at a time (in vector lanes,
 * ElementwiseCpu's exp), and multiplied by V; backward recomputes them from the saved logsumexp and makes dV, dP, dQ and
 * dK as four more products. One (L, S) float buffer per thread, not per head. The double-precision loops of
 * AttentionCpu stay for float64 and as the reference (`AttentionF32Test`); they computed every dot product element by
 * element and were half a GPT step on the CPU.
 */
final class AttentionF32 {
    private AttentionF32() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final Sgemm GEMM = Sgemm.PREFERRED;

    /** A contiguous float32 copy's array (x itself when it already is one from offset 0). */
    private static float[] data(Tensor x) {
        Tensor c = x.isContiguous() && x.offset() == 0 && x.storage().numel() == x.numel() ? x : x.detach().contiguousCopy();
        return (float[]) CpuStorage.arrayOf(c);
    }

    /** The array of a new float32 result the kernels write into directly (a copy afterwards was one thread's 25-100 MB). */
    private static float[] array(Tensor t) { return (float[]) CpuStorage.arrayOf(t); }

    /**
     * Rows per block. Causal attention multiplies block [i0, i1) by the keys before i1 only: at 256 tokens, 64-row blocks
     * skip 37% of the products' work (the masked triangle), and the products stay large enough for the GEMM.
     */
    private static final int ROWS = 64;

    /** Keys a block of rows up to i1 sees: those before i1 when causal, else all s. */
    private static int keys(boolean causal, int i1, int s) { return causal ? Math.min(s, i1) : s; }

    /**
     * The scaled, masked scores of rows [i0, i1) of head bh against its first `keys` keys into p (rows s apart), each row
     * then replaced by its softmax, zero past the keys it sees; rows with no visible key become NaN. lseOut[bh*l + i]
     * gets each row's logsumexp when not null, or, with lseIn instead (backward), the saved logsumexp is used rather than
     * the row's maximum and sum.
     */
    private static void probabilities(float[] q, float[] k, float[] mask, int bh, int l, int s, int d, int i0, int i1, int keys,
                                      boolean causal, float scale, float[] p, float[] lseOut, float[] lseIn, Sgemm.Scratch scratch) {
        // p = q_bh[i0:i1] · k_bh[0:keys]ᵀ
        GEMM.gemm(i1 - i0, keys, d, new Sgemm.Mat(q, (bh * l + i0) * d, d, 1), new Sgemm.Mat(k, bh * s * d, 1, d), p, i0 * s, s, false, scratch);
        int lanes = F.length();
        for (int i = i0; i < i1; i++) {
            int ro = i * s, mo = (bh * l + i) * s, visible = causal ? Math.min(s, i + 1) : s, j = 0;
            FloatVector vmx = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; j + lanes <= visible; j += lanes) {
                FloatVector x = FloatVector.fromArray(F, p, ro + j).mul(scale);
                if (mask != null) x = x.add(FloatVector.fromArray(F, mask, mo + j));
                x.intoArray(p, ro + j);
                vmx = vmx.max(x);
            }
            float mx = Float.NEGATIVE_INFINITY;   // lane by lane, not reduceLanes: its order may change with the JIT tier
            for (int t = 0; t < lanes; t++) mx = Math.max(mx, vmx.lane(t));
            for (; j < visible; j++) {
                float x = p[ro + j] * scale + (mask == null ? 0f : mask[mo + j]);
                p[ro + j] = x;
                mx = Math.max(mx, x);
            }
            java.util.Arrays.fill(p, ro + visible, ro + keys, 0f);
            // exp(x - shift): by the saved logsumexp (no row sum), else by the row's maximum and then divided by the sum
            float shift = lseIn != null ? lseIn[bh * l + i] : mx;
            FloatVector vshift = FloatVector.broadcast(F, shift), vsum = FloatVector.zero(F);
            for (j = 0; j + lanes <= visible; j += lanes) {
                FloatVector e = ElementwiseCpu.exp(FloatVector.fromArray(F, p, ro + j).sub(vshift));
                e.intoArray(p, ro + j);
                vsum = vsum.add(e);
            }
            double sum = Lanes.sum(vsum);   // in lane order, in double (JitTierDeterminismTest)
            for (; j < visible; j++) sum += p[ro + j] = ElementwiseCpu.exp(p[ro + j] - shift);
            if (lseIn != null) {
                // a row that saw no key (logsumexp NaN) gives nothing back
                if (Float.isNaN(shift)) java.util.Arrays.fill(p, ro, ro + visible, 0f);
                continue;
            }
            if (!(sum > 0)) {   // no key visible: NaN, as the composite
                java.util.Arrays.fill(p, ro, ro + keys, Float.NaN);
                lseOut[bh * l + i] = Float.NaN;
                continue;
            }
            float inv = (float) (1 / sum);
            for (j = 0; j + lanes <= visible; j += lanes) FloatVector.fromArray(F, p, ro + j).mul(inv).intoArray(p, ro + j);
            for (; j < visible; j++) p[ro + j] *= inv;
            lseOut[bh * l + i] = (float) (mx + Math.log(sum));
        }
    }

    static Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        float[] qd = data(q), kd = data(k), vd = data(v), md = mask == null ? null : data(mask.to(DType.FLOAT32));
        // every element written below: each row's output by its block's product, its logsumexp (or NaN) by probabilities
        Tensor outT = CpuStorage.unsetTensor(new int[]{b, h, l, dv}, DType.FLOAT32), lseT = CpuStorage.unsetTensor(new int[]{b, h, l}, DType.FLOAT32);
        float[] out = array(outT), lse = array(lseT);
        Parallel.range(bhs, 1, (lo, hi) -> {
            Sgemm.Scratch scratch = GEMM.localScratch();
            float[] p = ThreadBuffers.get(ThreadBuffers.ATTENTION_SCORES, l * s);
            for (int bh = lo; bh < hi; bh++) {
                for (int i0 = 0; i0 < l; i0 += ROWS) {
                    int i1 = Math.min(l, i0 + ROWS), keys = keys(causal, i1, s);
                    probabilities(qd, kd, md, bh, l, s, d, i0, i1, keys, causal, (float) scale, p, lse, null, scratch);
                    // out_bh[i0:i1] = p[i0:i1, 0:keys] · v_bh[0:keys]
                    GEMM.gemm(i1 - i0, dv, keys, new Sgemm.Mat(p, i0 * s, s, 1), new Sgemm.Mat(vd, bh * s * dv, dv, 1), out,
                            (bh * l + i0) * dv, dv, false, scratch);
                }
            }
        });
        return new Tensor[]{outT, lseT};
    }

    static Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        float[] qd = data(q), kd = data(k), vd = data(v), md = mask == null ? null : data(mask.to(DType.FLOAT32));
        float[] gd = data(g.to(DType.FLOAT32)), od = data(out.to(DType.FLOAT32)), lse = data(logSumExp.to(DType.FLOAT32));
        // dq's rows are written once per block; dk and dv are sums over the blocks, so they start at zero
        Tensor dqT = CpuStorage.unsetTensor(new int[]{b, h, l, d}, DType.FLOAT32);
        Tensor dkT = newTensor(new int[]{b, h, s, d}, DType.FLOAT32), dvT = newTensor(new int[]{b, h, s, dv}, DType.FLOAT32);
        float[] dq = array(dqT), dk = array(dkT), dvv = array(dvT);
        float sc = (float) scale;
        Parallel.range(bhs, 1, (lo, hi) -> {
            Sgemm.Scratch scratch = GEMM.localScratch();
            float[] p = ThreadBuffers.get(ThreadBuffers.ATTENTION_SCORES, l * s);
            float[] dp = ThreadBuffers.get(ThreadBuffers.ATTENTION_GRADS, l * s);
            for (int bh = lo; bh < hi; bh++) {
                // dk and dv sum over the blocks (their arrays start at zero); dq's rows are each block's own
                for (int i0 = 0; i0 < l; i0 += ROWS) {
                    int i1 = Math.min(l, i0 + ROWS), keys = keys(causal, i1, s), rows = i1 - i0, go = (bh * l + i0) * dv;
                    probabilities(qd, kd, md, bh, l, s, d, i0, i1, keys, causal, sc, p, null, lse, scratch);
                    // dv_bh[0:keys] += pᵀ · g;  dp = g · v_bh[0:keys]ᵀ
                    GEMM.gemm(keys, dv, rows, new Sgemm.Mat(p, i0 * s, 1, s), new Sgemm.Mat(gd, go, dv, 1), dvv, bh * s * dv, dv, true, scratch);
                    GEMM.gemm(rows, keys, dv, new Sgemm.Mat(gd, go, dv, 1), new Sgemm.Mat(vd, bh * s * dv, 1, dv), dp, i0 * s, s, false, scratch);
                    // ds = p * (dp - delta) * scale, delta_i = sum_c g_ic out_ic (the row's sum of p * dp)
                    for (int i = i0; i < i1; i++) {
                        int gi = (bh * l + i) * dv, ro = i * s;
                        double delta = 0;
                        for (int c = 0; c < dv; c++) delta += (double) gd[gi + c] * od[gi + c];
                        float dl = (float) delta;
                        for (int j = 0; j < keys; j++) dp[ro + j] = p[ro + j] > 0 ? p[ro + j] * (dp[ro + j] - dl) * sc : 0f;
                    }
                    // dq_bh[i0:i1] = ds · k_bh[0:keys];  dk_bh[0:keys] += dsᵀ · q_bh[i0:i1]
                    GEMM.gemm(rows, d, keys, new Sgemm.Mat(dp, i0 * s, s, 1), new Sgemm.Mat(kd, bh * s * d, d, 1), dq, (bh * l + i0) * d, d, false, scratch);
                    GEMM.gemm(keys, d, rows, new Sgemm.Mat(dp, i0 * s, 1, s), new Sgemm.Mat(qd, (bh * l + i0) * d, d, 1), dk, bh * s * d, d, true, scratch);
                }
            }
        });
        return new Tensor[]{dqT, dkT, dvT};
    }
}
