package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;

import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * Fused attention on the CPU. Float32 takes {@link AttentionF32} (GEMMs per head); float64, and the reference it is
 * tested against, these loops: one query row at a time, its scores a row of S doubles (never the (L, S) matrix). Forward and the query gradient run in parallel over (batch·head, query); the key and
 * value gradients over batch·head, each task owning its slices.
 */
final class AttentionCpu {
    private AttentionCpu() {}

    static boolean supports(DType t) { return t == DType.FLOAT32 || t == DType.FLOAT64; }

    /** Contiguous (B, H, n, e) data as double. */
    private static double[] data(Tensor x) { return x.detach().contiguousCopy().to(DType.FLOAT64).toDoubleArray(); }

    private static Tensor tensor(double[] v, DType t, int... shape) {
        Tensor out = newTensor(shape, DType.FLOAT64);
        System.arraycopy(v, 0, (double[]) CpuStorage.arrayOf(out), 0, v.length);
        return t == DType.FLOAT64 ? out : out.to(t);
    }

    /** Scaled, masked scores of query i against keys [0, s) into row; returns the row's maximum. */
    private static double scores(double[] q, double[] k, double[] mask, int bh, int i, int l, int s, int d, boolean causal, double scale, double[] row) {
        int qo = (bh * l + i) * d;
        double mx = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < s; j++) {
            double v;
            if (causal && j > i) {
                v = Double.NEGATIVE_INFINITY;
            } else {
                int ko = (bh * s + j) * d;
                double dot = 0;
                for (int c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
                v = dot * scale + (mask == null ? 0 : mask[(bh * l + i) * s + j]);
            }
            row[j] = v;
            mx = Math.max(mx, v);
        }
        return mx;
    }

    /** Whether the float32 GEMM path (AttentionF32) takes these operands. */
    private static boolean f32(Tensor... ts) {
        for (Tensor t : ts) if (t.dtype() != DType.FLOAT32) return false;
        return true;
    }

    static Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) {
        if (f32(q, k, v)) return AttentionF32.attention(q, k, v, mask, causal, scale);
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        double[] qd = data(q), kd = data(k), vd = data(v), md = mask == null ? null : data(mask);
        double[] out = new double[bhs * l * dv], lse = new double[bhs * l];
        Parallel.range(bhs * l, Math.max(1, 4096 / Math.max(1, s * d)), (lo, hi) -> {
            double[] row = new double[s];
            for (int r = lo; r < hi; r++) {
                int bh = r / l, i = r % l;
                double mx = scores(qd, kd, md, bh, i, l, s, d, causal, scale, row);
                double sum = 0;
                for (int j = 0; j < s; j++) sum += row[j] = Math.exp(row[j] - mx);
                int oo = r * dv;
                for (int j = 0; j < s; j++) {
                    double p = row[j] / sum;
                    if (p == 0) continue;
                    int vo = (bh * s + j) * dv;
                    for (int c = 0; c < dv; c++) out[oo + c] += p * vd[vo + c];
                }
                if (sum == 0) for (int c = 0; c < dv; c++) out[oo + c] = Double.NaN; // no key visible: NaN, as the composite
                lse[r] = mx + Math.log(sum);
            }
        });
        DType acc = q.dtype().accumulation();
        return new Tensor[]{tensor(out, q.dtype(), b, h, l, dv), tensor(lse, acc, b, h, l)};
    }

    static Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        if (f32(q, k, v)) return AttentionF32.attentionBackward(g, q, k, v, out, logSumExp, mask, causal, scale);
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3), s = k.size(2), dv = v.size(3), bhs = b * h;
        double[] qd = data(q), kd = data(k), vd = data(v), md = mask == null ? null : data(mask);
        double[] gd = data(g), od = data(out), lse = data(logSumExp);
        double[] dq = new double[qd.length], dk = new double[kd.length], dvv = new double[vd.length];
        Parallel.range(bhs, 1, (lo, hi) -> {
            double[] row = new double[s];
            for (int bh = lo; bh < hi; bh++) {
                for (int i = 0; i < l; i++) {
                    int r = bh * l + i, go = r * dv;
                    scores(qd, kd, md, bh, i, l, s, d, causal, scale, row);
                    double delta = 0;
                    for (int c = 0; c < dv; c++) delta += gd[go + c] * od[go + c];
                    for (int j = 0; j < s; j++) {
                        double p = Math.exp(row[j] - lse[r]);
                        if (!(p > 0)) continue;
                        int ko = (bh * s + j) * d, vo = (bh * s + j) * dv;
                        double dp = 0;
                        for (int c = 0; c < dv; c++) {
                            dp += gd[go + c] * vd[vo + c];
                            dvv[vo + c] += p * gd[go + c];
                        }
                        double ds = p * (dp - delta) * scale;
                        for (int c = 0; c < d; c++) {
                            dq[r * d + c] += ds * kd[ko + c];
                            dk[ko + c] += ds * qd[r * d + c];
                        }
                    }
                }
            }
        });
        return new Tensor[]{tensor(dq, q.dtype(), b, h, l, d), tensor(dk, k.dtype(), b, h, s, d), tensor(dvv, v.dtype(), b, h, s, dv)};
    }
}
