package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.BatchNormParams;

import static dev.kiln.cpu.CpuStorage.newTensor;
import static dev.kiln.cpu.CpuStorage.unsetTensor;

/**
 * The CPU kernels of the Normalization family: batch norm over dim 1 of (N, C, *), with a residual block's add and
 * ReLU fused in, and its backward; float32 and float64 in place on their arrays, one channel per task, the sums in
 * double (the reference the CUDA kernels are checked against). Float32 with runs of at least two vectors per channel
 * takes {@link BatchNormF32}'s vector loops.
 */
final class NormalizationCpu {
    private NormalizationCpu() {}

    private static FloatValues values(Tensor t) { return FloatValues.of(t, "batch_norm"); }

    /** (N, C, spatial) of x. */
    private static int[] geometry(Tensor x) {
        int[] s = x.shape();
        return new int[]{s[0], s[1], (int) (x.numel() / Math.max(1, (long) s[0] * s[1]))};
    }

    /** batchesTracked (an int64 scalar, or null) counts the batch in training. */
    static Tensor[] batchNorm(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked,
                              Tensor residual, BatchNormParams p) {
        DTypeChecks.requireFloat("batch_norm", x.dtype());
        if (p.training() && batchesTracked != null) ((long[]) CpuStorage.arrayOf(batchesTracked))[batchesTracked.offset()]++;
        if (BatchNormF32.applies(x, weight, bias, runningMean, runningVar, residual)) {
            return BatchNormF32.forward(x, weight, bias, runningMean, runningVar, residual, p);
        }
        int[] g = geometry(x);
        int n = g[0], c = g[1], spatial = g[2];
        long m = (long) n * spatial;
        DType pt = runningMean != null ? runningMean.dtype() : weight != null ? weight.dtype() : x.dtype();
        Tensor y = newTensor(x.shape(), x.dtype()), mean = newTensor(new int[]{c}, pt), invstd = newTensor(new int[]{c}, pt);
        FloatValues xv = values(x), yv = values(y), w = values(weight), b = values(bias), res = values(residual);
        FloatValues rm = values(runningMean), rv = values(runningVar), mv = values(mean), iv = values(invstd);
        Parallel.range(c, 1, (lo, hi) -> {
            for (int ch = lo; ch < hi; ch++) {
                double mu, var;
                if (p.training()) {
                    double sum = 0;
                    for (int img = 0; img < n; img++) for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) sum += xv.get(at + i);
                    mu = sum / m;
                    double sq = 0;
                    for (int img = 0; img < n; img++) {
                        for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) sq += (xv.get(at + i) - mu) * (xv.get(at + i) - mu);
                    }
                    var = sq / m;
                    if (rm != null) rm.set(ch, (1 - p.momentum()) * rm.get(ch) + p.momentum() * mu);
                    if (rv != null) rv.set(ch, (1 - p.momentum()) * rv.get(ch) + p.momentum() * var * m / (m - 1));
                } else {
                    mu = rm.get(ch);
                    var = rv.get(ch);
                }
                double is = 1 / Math.sqrt(var + p.eps());
                mv.set(ch, mu);
                iv.set(ch, is);
                double scale = is * (w == null ? 1 : w.get(ch)), shift = b == null ? 0 : b.get(ch);
                for (int img = 0; img < n; img++) {
                    for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) {
                        double v = (xv.get(at + i) - mu) * scale + shift + (res == null ? 0 : res.get(at + i));
                        yv.set(at + i, p.relu() && v <= 0 ? 0 : v);
                    }
                }
            }
        });
        return new Tensor[]{y, mean, invstd};
    }

    static Tensor[] batchNormBackward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor mean, Tensor invstd, BatchNormParams p,
                                      boolean residual, boolean inputGrad, Tensor dweight, Tensor dbias) {
        if (BatchNormF32.applies(x, weight, mean, invstd, dweight, dbias)) {
            return BatchNormF32.backward(g, y, x, weight, mean, invstd, p, residual, inputGrad, dweight, dbias);
        }
        int[] geo = geometry(x);
        int n = geo[0], c = geo[1], spatial = geo[2];
        long m = (long) n * spatial;
        boolean params = dweight != null && weight != null;
        Tensor dx = inputGrad ? newTensor(x.shape(), x.dtype()) : null, dres = residual ? newTensor(x.shape(), x.dtype()) : null;
        Tensor dw = params ? dweight : null, db = params ? dbias : null;
        FloatValues gv = values(g.dtype() == x.dtype() ? g : g.to(x.dtype())), yv = p.relu() ? values(y) : null, xv = values(x);
        FloatValues w = values(weight), mu = values(mean), is = values(invstd);
        FloatValues dxv = values(dx), drv = values(dres), dwv = values(dw), dbv = values(db);
        Parallel.range(c, 1, (lo, hi) -> {
            for (int ch = lo; ch < hi; ch++) {
                double mc = mu.get(ch), ic = is.get(ch), sdz = 0, sdzx = 0;
                for (int img = 0; img < n; img++) {
                    for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) {
                        double d = yv != null && !(yv.get(at + i) > 0) ? 0 : gv.get(at + i);
                        if (drv != null) drv.set(at + i, d);
                        sdz += d;
                        sdzx += d * (xv.get(at + i) - mc) * ic;
                    }
                }
                if (dwv != null) {
                    dwv.set(ch, sdzx);
                    dbv.set(ch, sdz);
                }
                if (dxv == null) continue;
                double scale = ic * (w == null ? 1 : w.get(ch)), a = sdz / m, bb = sdzx / m;
                for (int img = 0; img < n; img++) {
                    for (int i = 0, at = (img * c + ch) * spatial; i < spatial; i++) {
                        double d = yv != null && !(yv.get(at + i) > 0) ? 0 : gv.get(at + i);
                        if (p.training()) d = d - a - (xv.get(at + i) - mc) * ic * bb;
                        dxv.set(at + i, d * scale);
                    }
                }
            }
        });
        return new Tensor[]{dx, dw, db, dres};
    }

    // ---- layer norm: rows of n, one row per task step; the column sums of the backward per task, then added

    static Tensor[] layerNorm(Tensor x, Tensor weight, Tensor bias, int n, double eps) {
        DTypeChecks.requireFloat("layer_norm", x.dtype());
        int rows = (int) (x.numel() / n);
        Tensor y = unsetTensor(x.shape(), x.dtype()), mean = unsetTensor(new int[]{rows}, x.dtype()), invstd = unsetTensor(new int[]{rows}, x.dtype());
        FloatValues xv = values(x), yv = values(y), w = values(weight), b = values(bias), mv = values(mean), iv = values(invstd);
        if (xv instanceof FloatValues.Floats xf && n >= LayerNormF32.MIN_ROW && floats(w, b)) {
            LayerNormF32.forward(xf, (FloatValues.Floats) w, (FloatValues.Floats) b, (FloatValues.Floats) yv, (FloatValues.Floats) mv,
                    (FloatValues.Floats) iv, rows, n, eps);
            return new Tensor[]{y, mean, invstd};
        }
        Parallel.range(rows, Math.max(1, 4096 / n), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int at = r * n;
                double sum = 0;
                for (int i = 0; i < n; i++) sum += xv.get(at + i);
                double mu = sum / n, sq = 0;
                for (int i = 0; i < n; i++) sq += (xv.get(at + i) - mu) * (xv.get(at + i) - mu);
                double is = 1 / Math.sqrt(sq / n + eps);
                mv.set(r, mu);
                iv.set(r, is);
                for (int i = 0; i < n; i++) {
                    double v = (xv.get(at + i) - mu) * is;
                    if (w != null) v *= w.get(i);
                    if (b != null) v += b.get(i);
                    yv.set(at + i, v);
                }
            }
        });
        return new Tensor[]{y, mean, invstd};
    }

    static Tensor layerNormBackward(Tensor g, Tensor x, Tensor weight, Tensor mean, Tensor invstd, int n, boolean inputGrad, Tensor addend,
                                    Tensor dweight, Tensor dbias) {
        boolean paramGrad = dbias != null;
        int rows = (int) (x.numel() / n);
        Tensor dx = inputGrad ? unsetTensor(x.shape(), x.dtype()) : null;
        FloatValues gv = values(g.dtype() == x.dtype() ? g : g.to(x.dtype())), xv = values(x), w = values(weight), mv = values(mean),
                iv = values(invstd), dxv = values(dx), av = inputGrad && addend != null ? values(addend) : null;
        int tasks = Math.max(1, Math.min(rows, Parallel.THREADS * 4));
        double[][] dw = new double[tasks][], db = new double[tasks][];
        boolean f32 = xv instanceof FloatValues.Floats && n >= LayerNormF32.MIN_ROW && floats(gv, w, mv, iv, dxv, av);
        Parallel.range(tasks, 1, (tlo, thi) -> {
            for (int t = tlo; t < thi; t++) {
                if (f32) {
                    float[] pw = paramGrad ? new float[n] : null, pb = paramGrad ? new float[n] : null;
                    LayerNormF32.backward((FloatValues.Floats) gv, (FloatValues.Floats) xv, (FloatValues.Floats) w, (FloatValues.Floats) mv,
                            (FloatValues.Floats) iv, (FloatValues.Floats) av, (FloatValues.Floats) dxv,
                            (int) ((long) rows * t / tasks), (int) ((long) rows * (t + 1) / tasks), n, pw, pb);
                    dw[t] = widen(pw);
                    db[t] = widen(pb);
                    continue;
                }
                double[] pw = paramGrad ? new double[n] : null, pb = paramGrad ? new double[n] : null;
                for (int r = (int) ((long) rows * t / tasks), end = (int) ((long) rows * (t + 1) / tasks); r < end; r++) {
                    int at = r * n;
                    double mu = mv.get(r), is = iv.get(r), sdy = 0, sdyx = 0;
                    for (int i = 0; i < n; i++) {
                        double gi = gv.get(at + i), xhat = (xv.get(at + i) - mu) * is, dy = w == null ? gi : gi * w.get(i);
                        sdy += dy;
                        sdyx += dy * xhat;
                        if (pw != null) {
                            pw[i] += gi * xhat;
                            pb[i] += gi;
                        }
                    }
                    if (dxv == null) continue;
                    double mdy = sdy / n, mdyx = sdyx / n;
                    for (int i = 0; i < n; i++) {
                        double gi = gv.get(at + i), xhat = (xv.get(at + i) - mu) * is, dy = w == null ? gi : gi * w.get(i);
                        dxv.set(at + i, is * (dy - mdy - xhat * mdyx) + (av == null ? 0 : av.get(at + i)));
                    }
                }
                dw[t] = pw;
                db[t] = pb;
            }
        });
        if (paramGrad) {
            double[] sw = new double[n], sb = new double[n];
            for (int t = 0; t < tasks; t++) {
                for (int i = 0; i < n; i++) {
                    sw[i] += dw[t][i];
                    sb[i] += db[t][i];
                }
            }
            if (weight != null) ElementwiseCpu.copy(dweight, Tensor.of(sw, n));
            ElementwiseCpu.copy(dbias, Tensor.of(sb, n));
        }
        return dx;
    }

    /** Whether every one given is float32 or null. */
    private static boolean floats(FloatValues... vs) {
        for (FloatValues v : vs) if (v != null && !(v instanceof FloatValues.Floats)) return false;
        return true;
    }

    private static double[] widen(float[] v) {
        if (v == null) return null;
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }
}
