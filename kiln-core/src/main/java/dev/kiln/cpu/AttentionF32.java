package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * Part of the Attention family: {@link AttentionCpu}'s float32 path. Per (batch, head), on one thread each, the (L, S)
 * scores are made by the float GEMM (Sgemm), softmaxed in place a row at a time, and multiplied by V; backward
 * recomputes them from the saved logsumexp and makes dV, dP, dQ and dK as four more products. One (L, S) float buffer
 * per thread, not per head. The double-precision loops of AttentionCpu stay for float64 and as the reference
 * (`AttentionF32Test`); they computed every dot product element by element and were half a GPT step on the CPU.
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

    private static Tensor tensor(float[] v, int... shape) {
        Tensor out = newTensor(shape, DType.FLOAT32);
        System.arraycopy(v, 0, (float[]) CpuStorage.arrayOf(out), 0, v.length);
        return out;
    }

    /**
     * The scaled, masked scores of head bh into p (l x s, row-major), each row then replaced by its softmax; rows with
     * no visible key become NaN. lse[bh*l + i] gets each row's logsumexp when lse is not null, or, when given instead
     * (backward), the saved logsumexp is used rather than the row's maximum and sum.
     */
    private static void probabilities(float[] q, float[] k, float[] mask, int bh, int l, int s, int d, boolean causal, float scale,
                                       float[] p, float[] lseOut, float[] lseIn, Sgemm.Scratch scratch) {
        // p = q_bh · k_bhᵀ
        GEMM.gemm(l, s, d, new Sgemm.Mat(q, bh * l * d, d, 1), new Sgemm.Mat(k, bh * s * d, 1, d), p, 0, s, false, scratch);
        for (int i = 0; i < l; i++) {
            int ro = i * s, visible = causal ? Math.min(s, i + 1) : s;
            float mx = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < visible; j++) {
                float v = p[ro + j] * scale + (mask == null ? 0f : mask[(bh * l + i) * s + j]);
                p[ro + j] = v;
                mx = Math.max(mx, v);
            }
            java.util.Arrays.fill(p, ro + visible, ro + s, 0f);
            if (lseIn != null) {
                float shift = lseIn[bh * l + i];
                for (int j = 0; j < visible; j++) {
                    float e = (float) Math.exp(p[ro + j] - shift);
                    p[ro + j] = e > 0 ? e : 0f;   // a row that saw no key (logsumexp NaN) gives nothing back
                }
                continue;
            }
            double sum = 0;
            for (int j = 0; j < visible; j++) sum += p[ro + j] = (float) Math.exp(p[ro + j] - mx);
            if (!(sum > 0)) {   // no key visible: NaN, as the composite
                java.util.Arrays.fill(p, ro, ro + s, Float.NaN);
                lseOut[bh * l + i] = Float.NaN;
                continue;
            }
            float inv = (float) (1 / sum);
            int j = 0;
            for (; j + F.length() <= visible; j += F.length()) FloatVector.fromArray(F, p, ro + j).mul(inv).intoArray(p, ro + j);
            for (; j < visible; j++) p[ro + j] *= inv;
            lseOut[bh * l + i] = (float) (mx + Math.log(sum));
        }
    }

    static Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        float[] qd = data(q), kd = data(k), vd = data(v), md = mask == null ? null : data(mask.to(DType.FLOAT32));
        float[] out = new float[bhs * l * dv], lse = new float[bhs * l];
        Parallel.range(bhs, 1, (lo, hi) -> {
            Sgemm.Scratch scratch = GEMM.localScratch();
            float[] p = ThreadBuffers.get(ThreadBuffers.ATTENTION_SCORES, l * s);
            for (int bh = lo; bh < hi; bh++) {
                probabilities(qd, kd, md, bh, l, s, d, causal, (float) scale, p, lse, null, scratch);
                // out_bh = p · v_bh
                GEMM.gemm(l, dv, s, new Sgemm.Mat(p, 0, s, 1), new Sgemm.Mat(vd, bh * s * dv, dv, 1), out, bh * l * dv, dv, false, scratch);
            }
        });
        return new Tensor[]{tensor(out, b, h, l, dv), tensor(lse, b, h, l)};
    }

    static Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        float[] qd = data(q), kd = data(k), vd = data(v), md = mask == null ? null : data(mask.to(DType.FLOAT32));
        float[] gd = data(g.to(DType.FLOAT32)), od = data(out.to(DType.FLOAT32)), lse = data(logSumExp.to(DType.FLOAT32));
        float[] dq = new float[qd.length], dk = new float[kd.length], dvv = new float[vd.length];
        float sc = (float) scale;
        Parallel.range(bhs, 1, (lo, hi) -> {
            Sgemm.Scratch scratch = GEMM.localScratch();
            float[] p = ThreadBuffers.get(ThreadBuffers.ATTENTION_SCORES, l * s);
            float[] dp = ThreadBuffers.get(ThreadBuffers.ATTENTION_GRADS, l * s);
            for (int bh = lo; bh < hi; bh++) {
                probabilities(qd, kd, md, bh, l, s, d, causal, sc, p, null, lse, scratch);
                int go = bh * l * dv;
                // dv_bh = pᵀ · g_bh;  dp = g_bh · v_bhᵀ
                GEMM.gemm(s, dv, l, new Sgemm.Mat(p, 0, 1, s), new Sgemm.Mat(gd, go, dv, 1), dvv, bh * s * dv, dv, false, scratch);
                GEMM.gemm(l, s, dv, new Sgemm.Mat(gd, go, dv, 1), new Sgemm.Mat(vd, bh * s * dv, 1, dv), dp, 0, s, false, scratch);
                // ds = p * (dp - delta) * scale, delta_i = sum_c g_ic out_ic (the row's sum of p * dp)
                for (int i = 0; i < l; i++) {
                    double delta = 0;
                    for (int c = 0; c < dv; c++) delta += (double) gd[go + i * dv + c] * od[go + i * dv + c];
                    int ro = i * s;
                    float dl = (float) delta;
                    for (int j = 0; j < s; j++) dp[ro + j] = p[ro + j] > 0 ? p[ro + j] * (dp[ro + j] - dl) * sc : 0f;
                }
                // dq_bh = ds · k_bh;  dk_bh = dsᵀ · q_bh
                GEMM.gemm(l, d, s, new Sgemm.Mat(dp, 0, s, 1), new Sgemm.Mat(kd, bh * s * d, d, 1), dq, bh * l * d, d, false, scratch);
                GEMM.gemm(s, d, l, new Sgemm.Mat(dp, 0, 1, s), new Sgemm.Mat(qd, bh * l * d, d, 1), dk, bh * s * d, d, false, scratch);
            }
        });
        return new Tensor[]{tensor(dq, b, h, l, d), tensor(dk, b, h, s, d), tensor(dvv, b, h, s, dv)};
    }
}
