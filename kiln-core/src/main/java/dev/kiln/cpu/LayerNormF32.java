package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Normalization family: layer norm's float32 rows in vector lanes, forward and backward ({@link
 * NormalizationCpu}'s double loops, one element at a time, are the reference and take float64). The loops over
 * elements read each value through an interface in double: a GPT's 16384 x 384 rows took 4.8 ms on 16 cores against
 * PyTorch's 0.3. Row sums are added in float lanes, then the lanes in lane order in double ({@link Lanes}), so one
 * input gives one result whatever the JIT tier.
 */
final class LayerNormF32 {
    private LayerNormF32() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** Rows of at least this many floats take the vector loops. */
    static final int MIN_ROW = 2 * F.length();

    /** y = (x - mean) · invstd · w + b over rows of n (w, b null for none), writing each row's mean and invstd. */
    static void forward(FloatValues.Floats x, FloatValues.Floats w, FloatValues.Floats b, FloatValues.Floats y,
                        FloatValues.Floats mean, FloatValues.Floats invstd, int rows, int n, double eps) {
        int bound = F.loopBound(n);
        Parallel.range(rows, Math.max(1, 4096 / n), (lo, hi) -> {
            float[] xa = x.a(), ya = y.a();
            for (int r = lo; r < hi; r++) {
                int at = x.off() + r * n, yt = y.off() + r * n, i;
                FloatVector s = FloatVector.zero(F);
                for (i = 0; i < bound; i += F.length()) s = s.add(FloatVector.fromArray(F, xa, at + i));
                double sum = Lanes.sum(s);
                for (; i < n; i++) sum += xa[at + i];
                float mu = (float) (sum / n);
                FloatVector vm = FloatVector.broadcast(F, mu), q = FloatVector.zero(F);
                for (i = 0; i < bound; i += F.length()) {
                    FloatVector d = FloatVector.fromArray(F, xa, at + i).sub(vm);
                    q = d.fma(d, q);
                }
                double sq = Lanes.sum(q);
                for (; i < n; i++) sq += (double) (xa[at + i] - mu) * (xa[at + i] - mu);
                float is = (float) (1 / Math.sqrt(sq / n + eps));
                mean.a()[mean.off() + r] = mu;
                invstd.a()[invstd.off() + r] = is;
                FloatVector vis = FloatVector.broadcast(F, is);
                for (i = 0; i < bound; i += F.length()) {
                    FloatVector v = FloatVector.fromArray(F, xa, at + i).sub(vm).mul(vis);
                    if (w != null) v = v.mul(FloatVector.fromArray(F, w.a(), w.off() + i));
                    if (b != null) v = v.add(FloatVector.fromArray(F, b.a(), b.off() + i));
                    v.intoArray(ya, yt + i);
                }
                for (; i < n; i++) {
                    float v = (xa[at + i] - mu) * is;
                    if (w != null) v *= w.a()[w.off() + i];
                    if (b != null) v += b.a()[b.off() + i];
                    ya[yt + i] = v;
                }
            }
        });
    }

    /**
     * The backward over rows [lo, hi): dx = invstd · (dy - mean(dy) - x̂ · mean(dy · x̂)) + addend with dy = g · w (dx
     * null: none), and into pw, pb (null: none) the rows' g · x̂ and g added per column.
     */
    static void backward(FloatValues.Floats g, FloatValues.Floats x, FloatValues.Floats w, FloatValues.Floats mean,
                         FloatValues.Floats invstd, FloatValues.Floats addend, FloatValues.Floats dx, int lo, int hi, int n,
                         float[] pw, float[] pb) {
        int bound = F.loopBound(n);
        float[] ga = g.a(), xa = x.a();
        for (int r = lo; r < hi; r++) {
            int gt = g.off() + r * n, xt = x.off() + r * n, i;
            float mu = mean.a()[mean.off() + r], is = invstd.a()[invstd.off() + r];
            FloatVector vm = FloatVector.broadcast(F, mu), vis = FloatVector.broadcast(F, is), sdy = FloatVector.zero(F), sdyx = sdy;
            for (i = 0; i < bound; i += F.length()) {
                FloatVector gi = FloatVector.fromArray(F, ga, gt + i), xh = FloatVector.fromArray(F, xa, xt + i).sub(vm).mul(vis);
                FloatVector dy = w == null ? gi : gi.mul(FloatVector.fromArray(F, w.a(), w.off() + i));
                sdy = sdy.add(dy);
                sdyx = dy.fma(xh, sdyx);
                if (pw != null) {
                    gi.fma(xh, FloatVector.fromArray(F, pw, i)).intoArray(pw, i);
                    gi.add(FloatVector.fromArray(F, pb, i)).intoArray(pb, i);
                }
            }
            double sumDy = Lanes.sum(sdy), sumDyx = Lanes.sum(sdyx);
            for (; i < n; i++) {
                float gi = ga[gt + i], xh = (xa[xt + i] - mu) * is, dy = w == null ? gi : gi * w.a()[w.off() + i];
                sumDy += dy;
                sumDyx += (double) dy * xh;
                if (pw != null) {
                    pw[i] += gi * xh;
                    pb[i] += gi;
                }
            }
            if (dx == null) continue;
            float mdy = (float) (sumDy / n), mdyx = (float) (sumDyx / n);
            FloatVector vmdy = FloatVector.broadcast(F, mdy), vmdyx = FloatVector.broadcast(F, mdyx);
            float[] da = dx.a();
            int dt = dx.off() + r * n, at = addend == null ? 0 : addend.off() + r * n;
            for (i = 0; i < bound; i += F.length()) {
                FloatVector gi = FloatVector.fromArray(F, ga, gt + i), xh = FloatVector.fromArray(F, xa, xt + i).sub(vm).mul(vis);
                FloatVector dy = w == null ? gi : gi.mul(FloatVector.fromArray(F, w.a(), w.off() + i));
                FloatVector d = dy.sub(vmdy).sub(xh.mul(vmdyx)).mul(vis);
                if (addend != null) d = d.add(FloatVector.fromArray(F, addend.a(), at + i));
                d.intoArray(da, dt + i);
            }
            for (; i < n; i++) {
                float gi = ga[gt + i], xh = (xa[xt + i] - mu) * is, dy = w == null ? gi : gi * w.a()[w.off() + i];
                float d = (dy - mdy - xh * mdyx) * is;
                da[dt + i] = addend == null ? d : d + addend.a()[at + i];
            }
        }
    }
}
