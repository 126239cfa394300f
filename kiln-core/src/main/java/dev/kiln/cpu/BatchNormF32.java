package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.BatchNormParams;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.unsetTensor;

/**
 * Part of the Normalization family: {@link NormalizationCpu}'s batch norm for float32, in vectors of the machine's
 * width over each channel's runs of (N, C, spatial) memory, one channel per task. The same arithmetic as the
 * double-precision path (the reference the CUDA kernels are checked against), except that sums run in float within
 * blocks of {@link #BLOCK} elements and the blocks meet in double: the scalar path, through per-element double
 * accessors, was a third of a small ResNet's CPU training step.
 */
final class BatchNormF32 {
    private BatchNormF32() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Elements summed in float before their sum joins the double total: few enough that float adds lose nothing. */
    private static final int BLOCK = 4096;

    /**
     * Whether the vector path runs: x (the first) and every other given tensor float32 (nulls allowed), and each
     * channel's runs at least two vectors long (a batch norm over (N, C) has runs of one element: the scalar path).
     */
    static boolean applies(Tensor x, Tensor... ts) {
        for (Tensor t : ts) if (t != null && t.dtype() != DType.FLOAT32) return false;
        long planes = Math.max(1, (long) x.shape()[0] * x.shape()[1]);
        return x.dtype() == DType.FLOAT32 && x.numel() / planes >= 2L * L;
    }

    /** A float32 tensor's array and the offset of its first element, through a contiguous copy when it is strided. */
    private record Run(float[] a, int off) {
        static Run of(Tensor t) {
            if (t == null) return null;
            Tensor c = t.isContiguous() ? t : t.detach().contiguousCopy();
            return new Run((float[]) CpuStorage.contiguousArray("batch_norm", c), c.offset());
        }
    }

    /**
     * The sum of (a[i] - shift), or of its squares, over a channel's n runs of len floats (run img from from + img·stride):
     * in float, two vector chains and the tails, within blocks of at most BLOCK elements (runs put together, a longer
     * run cut), the blocks added in double. Blocks of runs, not a sum a run: at 7x7 the per-run lane sums and tails cost
     * more than the adds, and one chain waited on its own latency.
     */
    private static double sum(float[] a, int from, int stride, int n, int len, float shift, boolean squares, float[] lanes) {
        double total = 0;
        FloatVector sv = FloatVector.broadcast(F, shift), zero = FloatVector.zero(F), a0 = zero, a1 = zero;
        float tail = 0;
        int inBlock = 0;
        for (int img = 0; img < n; img++) {
            int at = from + img * stride;
            for (int b = 0; b < len; b += BLOCK) {
                int end = Math.min(len, b + BLOCK), i = b;
                if (inBlock + end - b > BLOCK) {
                    total += Lanes.sum(a0.add(a1), lanes) + tail;
                    a0 = a1 = zero;
                    tail = 0;
                    inBlock = 0;
                }
                for (; i + 2 * L <= end; i += 2 * L) {
                    FloatVector d0 = FloatVector.fromArray(F, a, at + i).sub(sv), d1 = FloatVector.fromArray(F, a, at + i + L).sub(sv);
                    a0 = squares ? d0.fma(d0, a0) : a0.add(d0);
                    a1 = squares ? d1.fma(d1, a1) : a1.add(d1);
                }
                for (; i + L <= end; i += L) {
                    FloatVector d = FloatVector.fromArray(F, a, at + i).sub(sv);
                    a0 = squares ? d.fma(d, a0) : a0.add(d);
                }
                for (; i < end; i++) {
                    float d = a[at + i] - shift;
                    tail += squares ? d * d : d;
                }
                inBlock += end - b;
            }
        }
        return total + Lanes.sum(a0.add(a1), lanes) + tail;
    }

    static Tensor[] forward(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor residual, BatchNormParams p) {
        int[] s = x.shape();
        int n = s[0], c = s[1], spatial = (int) (x.numel() / Math.max(1, (long) n * c));
        long m = (long) n * spatial;
        // every element of the three is written below: no zero fill first
        Tensor y = unsetTensor(s, DType.FLOAT32), mean = unsetTensor(new int[]{c}, DType.FLOAT32), invstd = unsetTensor(new int[]{c}, DType.FLOAT32);
        Run xr = Run.of(x), yr = Run.of(y), res = Run.of(residual), w = Run.of(weight), b = Run.of(bias);
        Run rm = Run.of(runningMean), rv = Run.of(runningVar), mv = Run.of(mean), iv = Run.of(invstd);
        Parallel.range(c, 1, (lo, hi) -> {
            float[] lanes = new float[L];   // Lanes.sum's scratch, one per task
            for (int ch = lo; ch < hi; ch++) {
                double mu, var;
                if (p.training()) {
                    mu = sum(xr.a, xr.off + ch * spatial, c * spatial, n, spatial, 0f, false, lanes) / m;
                    // squares about the float mean, corrected to the exact one: sum (x - mu)^2 = S2 - k (mu - muF)^2
                    float muF = (float) mu;
                    double sq = sum(xr.a, xr.off + ch * spatial, c * spatial, n, spatial, muF, true, lanes);
                    var = Math.max(0, sq / m - (mu - muF) * (mu - muF));
                    if (rm != null) rm.a[rm.off + ch] = (float) ((1 - p.momentum()) * rm.a[rm.off + ch] + p.momentum() * mu);
                    if (rv != null) rv.a[rv.off + ch] = (float) ((1 - p.momentum()) * rv.a[rv.off + ch] + p.momentum() * var * m / (m - 1));
                } else {
                    mu = rm.a[rm.off + ch];
                    var = rv.a[rv.off + ch];
                }
                double is = 1 / Math.sqrt(var + p.eps());
                mv.a[mv.off + ch] = (float) mu;
                iv.a[iv.off + ch] = (float) is;
                float scale = (float) (is * (w == null ? 1 : w.a[w.off + ch])), shift = b == null ? 0 : b.a[b.off + ch], muF = (float) mu;
                for (int img = 0; img < n; img++) {
                    int at = (img * c + ch) * spatial;
                    apply(xr.a, xr.off + at, res == null ? null : res.a, res == null ? 0 : res.off + at, yr.a, yr.off + at, spatial, muF, scale, shift, p.relu());
                }
            }
        });
        return new Tensor[]{y, mean, invstd};
    }

    /** y = relu?((x - mu) * scale + shift + res) over one run; NaN kept under the ReLU, as UnaryOp.RELU. */
    private static void apply(float[] x, int xo, float[] res, int ro, float[] y, int yo, int len, float mu, float scale, float shift, boolean relu) {
        FloatVector muV = FloatVector.broadcast(F, mu), scaleV = FloatVector.broadcast(F, scale), shiftV = FloatVector.broadcast(F, shift);
        FloatVector zero = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector v = FloatVector.fromArray(F, x, xo + i).sub(muV).fma(scaleV, shiftV);
            if (res != null) v = v.add(FloatVector.fromArray(F, res, ro + i));
            if (relu) v = v.max(zero);
            v.intoArray(y, yo + i);
        }
        for (; i < len; i++) {
            float v = (x[xo + i] - mu) * scale + shift + (res == null ? 0 : res[ro + i]);
            y[yo + i] = relu && v <= 0 ? 0 : v;
        }
    }

    static Tensor[] backward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor mean, Tensor invstd, BatchNormParams p,
                             boolean residual, boolean inputGrad, Tensor dweight, Tensor dbias) {
        int[] s = x.shape();
        int n = s[0], c = s[1], spatial = (int) (x.numel() / Math.max(1, (long) n * c));
        long m = (long) n * spatial;
        boolean params = dweight != null && weight != null;
        Tensor dx = inputGrad ? unsetTensor(s, DType.FLOAT32) : null, dres = residual ? unsetTensor(s, DType.FLOAT32) : null;   // all written
        Run gr = Run.of(g.dtype() == DType.FLOAT32 ? g : g.to(DType.FLOAT32)), yr = p.relu() ? Run.of(y) : null, xr = Run.of(x);
        Run w = Run.of(weight), mu = Run.of(mean), is = Run.of(invstd), dxr = Run.of(dx), drr = Run.of(dres);
        Run dw = params ? Run.of(dweight) : null, db = params ? Run.of(dbias) : null;
        Parallel.range(c, 1, (lo, hi) -> {
            double[] sums = new double[2];   // one per task, not per run
            float[] lanes = new float[L];
            for (int ch = lo; ch < hi; ch++) {
                float mc = mu.a[mu.off + ch], ic = is.a[is.off + ch];
                int first = ch * spatial;   // the channel's run in image 0
                gradSums(gr.a, gr.off + first, yr == null ? null : yr.a, yr == null ? 0 : yr.off + first, xr.a, xr.off + first,
                        drr == null ? null : drr.a, drr == null ? 0 : drr.off + first, c * spatial, n, spatial, mc, sums, lanes);
                double sdz = sums[0], sdzx = sums[1] * ic;
                if (dw != null) {
                    dw.a[dw.off + ch] = (float) sdzx;
                    db.a[db.off + ch] = (float) sdz;
                }
                if (dxr == null) continue;
                double scale = ic * (w == null ? 1 : w.a[w.off + ch]);
                // dx = scale * (dz - sdz / m - (x - mc) * ic * sdzx / m) = k0 * dz + k1 + k2 * (x - mc)
                float k0 = (float) scale, k1 = p.training() ? (float) (-scale * sdz / m) : 0f, k2 = p.training() ? (float) (-scale * ic * sdzx / m) : 0f;
                for (int img = 0; img < n; img++) {
                    int at = (img * c + ch) * spatial;
                    inputGrad(gr.a, gr.off + at, yr == null ? null : yr.a, yr == null ? 0 : yr.off + at, xr.a, xr.off + at, dxr.a, dxr.off + at,
                            spatial, mc, k0, k1, k2);
                }
            }
        });
        return new Tensor[]{dx, dw == null ? null : dweight, db == null ? null : dbias, dres};
    }

    /**
     * sums = {sum dz, sum dz * (x - mc)} over a channel's n runs of len floats (run img at offset + img·stride in each
     * array), dz = relu ? g * [y > 0] : g, written to dres when given; blocked as {@link #sum}.
     */
    private static void gradSums(float[] g, int go, float[] y, int yo, float[] x, int xo, float[] dres, int ro, int stride, int n, int len,
                                 float mc, double[] sums, float[] lanes) {
        FloatVector mcV = FloatVector.broadcast(F, mc), zero = FloatVector.zero(F), a0 = zero, a1 = zero;
        double sdz = 0, sdzx = 0;
        float t0 = 0, t1 = 0;
        int inBlock = 0;
        for (int img = 0; img < n; img++) {
            int d0 = img * stride;
            for (int b = 0; b < len; b += BLOCK) {
                int end = Math.min(len, b + BLOCK), i = b;
                if (inBlock + end - b > BLOCK) {
                    sdz += Lanes.sum(a0, lanes) + t0;
                    sdzx += Lanes.sum(a1, lanes) + t1;
                    a0 = a1 = zero;
                    t0 = t1 = 0;
                    inBlock = 0;
                }
                for (; i + L <= end; i += L) {
                    FloatVector d = FloatVector.fromArray(F, g, go + d0 + i);
                    if (y != null) d = zero.blend(d, FloatVector.fromArray(F, y, yo + d0 + i).compare(VectorOperators.GT, 0f));
                    if (dres != null) d.intoArray(dres, ro + d0 + i);
                    a0 = a0.add(d);
                    a1 = d.fma(FloatVector.fromArray(F, x, xo + d0 + i).sub(mcV), a1);
                }
                for (; i < end; i++) {
                    float d = y != null && !(y[yo + d0 + i] > 0) ? 0 : g[go + d0 + i];
                    if (dres != null) dres[ro + d0 + i] = d;
                    t0 += d;
                    t1 += d * (x[xo + d0 + i] - mc);
                }
                inBlock += end - b;
            }
        }
        sums[0] = sdz + Lanes.sum(a0, lanes) + t0;
        sums[1] = sdzx + Lanes.sum(a1, lanes) + t1;
    }

    /** dx = k0 * dz + k1 + k2 * (x - mc) over one run (k1 = k2 = 0 in eval). */
    private static void inputGrad(float[] g, int go, float[] y, int yo, float[] x, int xo, float[] dx, int dxo, int len, float mc,
                                  float k0, float k1, float k2) {
        FloatVector mcV = FloatVector.broadcast(F, mc), k0V = FloatVector.broadcast(F, k0), k1V = FloatVector.broadcast(F, k1);
        FloatVector k2V = FloatVector.broadcast(F, k2), zero = FloatVector.zero(F);
        int i = 0;
        for (; i + L <= len; i += L) {
            FloatVector d = FloatVector.fromArray(F, g, go + i);
            if (y != null) {
                VectorMask<Float> on = FloatVector.fromArray(F, y, yo + i).compare(VectorOperators.GT, 0f);
                d = zero.blend(d, on);
            }
            FloatVector.fromArray(F, x, xo + i).sub(mcV).fma(k2V, d.fma(k0V, k1V)).intoArray(dx, dxo + i);
        }
        for (; i < len; i++) {
            float d = y != null && !(y[yo + i] > 0) ? 0 : g[go + i];
            dx[dxo + i] = d * k0 + k1 + (x[xo + i] - mc) * k2;
        }
    }
}
