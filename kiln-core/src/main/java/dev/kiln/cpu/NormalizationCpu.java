package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.BatchNormParams;

/**
 * The CPU kernels of the Normalization family: batch norm over dim 1 of (N, C, *), with a residual block's add and
 * ReLU fused in, and its backward; float32 and float64, one channel per task, arithmetic in double (the reference
 * the CUDA kernels are checked against).
 */
final class NormalizationCpu {
    private NormalizationCpu() {}

    /** Elements in double, row-major (a copy: the kernels read each element two or three times). */
    private static double[] values(Tensor t) { return t == null ? null : t.toDoubleArray(); }

    private static Tensor tensor(double[] v, int[] shape, DType t) { return Tensor.of(v, shape).to(t); }

    static Tensor[] batchNorm(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor residual, BatchNormParams p) {
        DTypeChecks.requireFloat("batch_norm", x.dtype());
        int[] s = x.shape();
        int n = s[0], c = s[1], spatial = (int) (x.numel() / Math.max(1, (long) n * c));
        long m = (long) n * spatial;
        double[] xv = values(x), w = values(weight), b = values(bias), res = values(residual), y = new double[xv.length];
        double[] mean = new double[c], invstd = new double[c];
        double[] rm = values(runningMean), rv = values(runningVar);
        Parallel.range(c, 1, (lo, hi) -> {
            for (int ch = lo; ch < hi; ch++) {
                double mu, var;
                if (p.training()) {
                    double sum = 0;
                    for (int img = 0; img < n; img++) for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) sum += xv[at + i];
                    mu = sum / m;
                    double sq = 0;
                    for (int img = 0; img < n; img++) {
                        for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) sq += (xv[at + i] - mu) * (xv[at + i] - mu);
                    }
                    var = sq / m;
                    if (rm != null) rm[ch] = (1 - p.momentum()) * rm[ch] + p.momentum() * mu;
                    if (rv != null) rv[ch] = (1 - p.momentum()) * rv[ch] + p.momentum() * var * m / (m - 1);
                } else {
                    mu = rm[ch];
                    var = rv[ch];
                }
                mean[ch] = mu;
                invstd[ch] = 1 / Math.sqrt(var + p.eps());
                double scale = invstd[ch] * (w == null ? 1 : w[ch]), shift = b == null ? 0 : b[ch];
                for (int img = 0; img < n; img++) {
                    for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) {
                        double v = (xv[at + i] - mu) * scale + shift + (res == null ? 0 : res[at + i]);
                        y[at + i] = p.relu() && !(v > 0) ? 0 : v;
                    }
                }
            }
        });
        if (p.training()) {
            if (runningMean != null) runningMean.copyFrom(tensor(rm, runningMean.shape(), runningMean.dtype()));
            if (runningVar != null) runningVar.copyFrom(tensor(rv, runningVar.shape(), runningVar.dtype()));
        }
        return new Tensor[]{tensor(y, s, x.dtype()), tensor(mean, new int[]{c}, x.dtype()), tensor(invstd, new int[]{c}, x.dtype())};
    }

    static Tensor[] batchNormBackward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor mean, Tensor invstd, BatchNormParams p,
                                      boolean residual, boolean inputGrad, boolean paramGrad) {
        int[] s = x.shape();
        int n = s[0], c = s[1], spatial = (int) (x.numel() / Math.max(1, (long) n * c));
        long m = (long) n * spatial;
        double[] gv = values(g), yv = p.relu() ? values(y) : null, xv = values(x), w = values(weight);
        double[] mu = values(mean), is = values(invstd);
        double[] dz = new double[gv.length], dx = inputGrad ? new double[gv.length] : null, dw = new double[c], db = new double[c];
        Parallel.range(c, 1, (lo, hi) -> {
            for (int ch = lo; ch < hi; ch++) {
                double sdz = 0, sdzx = 0;
                for (int img = 0; img < n; img++) {
                    for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) {
                        double d = yv != null && !(yv[at + i] > 0) ? 0 : gv[at + i];
                        dz[at + i] = d;
                        sdz += d;
                        sdzx += d * (xv[at + i] - mu[ch]) * is[ch];
                    }
                }
                db[ch] = sdz;
                dw[ch] = sdzx;
                if (dx == null) continue;
                double scale = is[ch] * (w == null ? 1 : w[ch]);
                for (int img = 0; img < n; img++) {
                    for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) {
                        double v = dz[at + i];
                        if (p.training()) v = v - sdz / m - (xv[at + i] - mu[ch]) * is[ch] * sdzx / m;
                        dx[at + i] = v * scale;
                    }
                }
            }
        });
        boolean params = paramGrad && weight != null;
        DType pt = weight == null ? x.dtype() : weight.dtype();
        return new Tensor[]{dx == null ? null : tensor(dx, s, x.dtype()), params ? tensor(dw, new int[]{c}, pt) : null,
                params ? tensor(db, new int[]{c}, pt) : null, residual ? tensor(dz, s, x.dtype()) : null};
    }
}
