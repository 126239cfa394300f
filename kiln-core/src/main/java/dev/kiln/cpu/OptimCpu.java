package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.List;

/**
 * The fused kernels of the CPU backend (see {@link dev.kiln.backend.Backend}'s fused section): optimizer steps,
 * dropout and softmax cross-entropy, each one pass over memory instead of a chain of elementwise ops that each
 * allocate a new array. float32 runs in float (as the chain of float32 ops does), float64 in double.
 */
final class FusedKernels {
    private FusedKernels() {}

    private static final int GRAIN = 1 << 15;

    /** The backing array of a contiguous float32/float64 tensor (elements from t.offset()). */
    private static Object array(String op, Tensor t) {
        if (!t.isContiguous()) throw new IllegalArgumentException(op + ": expected contiguous tensors, got strides of shape " + Shape.str(t.shape()));
        return ((CpuStorage) t.storage()).array();
    }

    private static void requireFloat(String op, DType t) {
        if (t != DType.FLOAT32 && t != DType.FLOAT64) throw new IllegalArgumentException(op + ": fused kernel takes float32 or float64, got " + t);
    }

    // ---------------------------------------------------------------- optimizer steps

    static void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, double lr, double beta1,
                         double beta2, double eps, double wd, boolean decoupled, long step) {
        double stepSize = lr / (1 - Math.pow(beta1, step)), invSqrtBc2 = 1 / Math.sqrt(1 - Math.pow(beta2, step));
        double decay = decoupled ? 1 - lr * wd : 1, l2 = decoupled ? 0 : wd;
        for (int k = 0; k < params.size(); k++) {
            Tensor p = params.get(k);
            requireFloat("adam_step", p.dtype());
            int n = (int) p.numel();
            int op = p.offset(), og = grads.get(k).offset(), om = expAvg.get(k).offset(), ov = expAvgSq.get(k).offset();
            Object pa = array("adam_step", p), ga = array("adam_step", grads.get(k));
            Object ma = array("adam_step", expAvg.get(k)), va = array("adam_step", expAvgSq.get(k));
            switch (p.dtype()) {
                case FLOAT32 -> Parallel.range(n, GRAIN, (lo, hi) -> adamF32((float[]) pa, op, (float[]) ga, og, (float[]) ma, om, (float[]) va, ov,
                        lo, hi, (float) beta1, (float) beta2, (float) eps, (float) decay, (float) l2, (float) stepSize, (float) invSqrtBc2));
                case FLOAT64 -> Parallel.range(n, GRAIN, (lo, hi) -> adamF64((double[]) pa, op, (double[]) ga, og, (double[]) ma, om, (double[]) va, ov,
                        lo, hi, beta1, beta2, eps, decay, l2, stepSize, invSqrtBc2));
                case BFLOAT16, FLOAT16, INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
            }
        }
    }

    private static void adamF32(float[] p, int op, float[] grad, int og, float[] m, int om, float[] v, int ov, int lo, int hi,
                                float b1, float b2, float eps, float decay, float l2, float stepSize, float invSqrtBc2) {
        float a1 = 1 - b1, a2 = 1 - b2;
        for (int i = lo; i < hi; i++) {
            float x = p[op + i];
            float g = grad[og + i] + l2 * x;
            float mi = b1 * m[om + i] + a1 * g;
            float vi = b2 * v[ov + i] + a2 * g * g;
            m[om + i] = mi;
            v[ov + i] = vi;
            p[op + i] = x * decay - stepSize * mi / ((float) Math.sqrt(vi) * invSqrtBc2 + eps);
        }
    }

    private static void adamF64(double[] p, int op, double[] grad, int og, double[] m, int om, double[] v, int ov, int lo, int hi,
                                double b1, double b2, double eps, double decay, double l2, double stepSize, double invSqrtBc2) {
        double a1 = 1 - b1, a2 = 1 - b2;
        for (int i = lo; i < hi; i++) {
            double x = p[op + i];
            double g = grad[og + i] + l2 * x;
            double mi = b1 * m[om + i] + a1 * g;
            double vi = b2 * v[ov + i] + a2 * g * g;
            m[om + i] = mi;
            v[ov + i] = vi;
            p[op + i] = x * decay - stepSize * mi / (Math.sqrt(vi) * invSqrtBc2 + eps);
        }
    }

    static void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> bufs, double lr, double momentum, double dampening,
                        double wd, boolean nesterov, boolean first) {
        for (int k = 0; k < params.size(); k++) {
            Tensor p = params.get(k);
            requireFloat("sgd_step", p.dtype());
            int n = (int) p.numel();
            int op = p.offset(), og = grads.get(k).offset(), ob = bufs == null ? 0 : bufs.get(k).offset();
            Object pa = array("sgd_step", p), ga = array("sgd_step", grads.get(k)), ba = bufs == null ? null : array("sgd_step", bufs.get(k));
            switch (p.dtype()) {
                case FLOAT32 -> Parallel.range(n, GRAIN, (lo, hi) -> sgdF32((float[]) pa, op, (float[]) ga, og, (float[]) ba, ob, lo, hi,
                        (float) lr, (float) momentum, (float) (1 - dampening), (float) wd, nesterov, first));
                case FLOAT64 -> Parallel.range(n, GRAIN, (lo, hi) -> sgdF64((double[]) pa, op, (double[]) ga, og, (double[]) ba, ob, lo, hi,
                        lr, momentum, 1 - dampening, wd, nesterov, first));
                case BFLOAT16, FLOAT16, INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
            }
        }
    }

    private static void sgdF32(float[] p, int op, float[] grad, int og, float[] buf, int ob, int lo, int hi,
                               float lr, float momentum, float damp, float wd, boolean nesterov, boolean first) {
        for (int i = lo; i < hi; i++) {
            float g = grad[og + i] + wd * p[op + i];
            if (buf != null) {
                float b = first ? g : momentum * buf[ob + i] + damp * g;
                buf[ob + i] = b;
                g = nesterov ? g + momentum * b : b;
            }
            p[op + i] -= lr * g;
        }
    }

    private static void sgdF64(double[] p, int op, double[] grad, int og, double[] buf, int ob, int lo, int hi,
                               double lr, double momentum, double damp, double wd, boolean nesterov, boolean first) {
        for (int i = lo; i < hi; i++) {
            double g = grad[og + i] + wd * p[op + i];
            if (buf != null) {
                double b = first ? g : momentum * buf[ob + i] + damp * g;
                buf[ob + i] = b;
                g = nesterov ? g + momentum * b : b;
            }
            p[op + i] -= lr * g;
        }
    }

    // ---------------------------------------------------------------- dropout

    static Tensor dropout(Tensor x, double p, long key) {
        requireAnyFloat("dropout", x.dtype());
        Tensor xc = x.isContiguous() ? x : x.detach().contiguousCopy();
        Tensor out = ElementKernels.newTensor(x.shape(), x.dtype());
        Object xa = array("dropout", xc), oa = array("dropout", out);
        int n = (int) x.numel(), ox = xc.offset();
        double scale = 1 / (1 - p);
        switch (x.dtype()) {
            case FLOAT32 -> {
                float[] xs = (float[]) xa, os = (float[]) oa;
                float s = (float) scale;
                // x * (keep ? s : 0), not (keep ? x * s : 0): the composite's product, NaN and all
                Parallel.range(n, GRAIN, (lo, hi) -> dropoutF32(xs, ox, os, lo, hi, key, p, s));
            }
            case FLOAT64 -> {
                double[] xs = (double[]) xa, os = (double[]) oa;
                Parallel.range(n, GRAIN, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) os[i] = xs[ox + i] * (Generator.uniformAt(key, i) >= p ? scale : 0.0);
                });
            }
            case BFLOAT16, FLOAT16 -> {
                // the scale rounded to the type, the product rounded once: what the composite's ops give
                DType t = x.dtype();
                float s = (float) HostArrays.get(roundTrip(t, scale), t, 0);
                Parallel.range(n, GRAIN, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) {
                        float v = (float) HostArrays.get(xa, t, ox + i);
                        HostArrays.set(oa, t, i, v * (Generator.uniformAt(key, i) >= p ? s : 0f));
                    }
                });
            }
            case INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
        }
        return out;
    }

    /** A one-element array of dtype t holding v rounded to t. */
    private static Object roundTrip(DType t, double v) {
        Object a = HostArrays.allocate(t, 1);
        HostArrays.set(a, t, 0, v);
        return a;
    }

    private static void requireAnyFloat(String op, DType t) {
        if (!t.isFloating()) throw new IllegalArgumentException(op + ": fused kernel takes a floating-point tensor, got " + t);
    }

    // ---------------------------------------------------------------- bias + ReLU epilogue

    /** y = y > 0 ? y : 0 in place (NaN becomes 0, as UnaryOp.RELU's scalar rule); y contiguous, fresh. */
    static void reluInPlace(Tensor y) {
        Object a = array("relu", y);
        int n = (int) y.numel(), o = y.offset();
        switch (y.dtype()) {
            case FLOAT32 -> {
                float[] v = (float[]) a;
                Parallel.range(n, GRAIN, (lo, hi) -> {
                    int i = o + lo, end = o + hi;
                    FloatVector zero = FloatVector.zero(FP);
                    for (; i <= end - FP.length(); i += FP.length()) {
                        FloatVector x = FloatVector.fromArray(FP, v, i);
                        x.blend(zero, x.compare(VectorOperators.GT, 0f).not()).intoArray(v, i); // NaN -> 0 as the scalar rule
                    }
                    for (; i < end; i++) v[i] = v[i] > 0 ? v[i] : 0f;
                });
            }
            case FLOAT64 -> {
                double[] v = (double[]) a;
                Parallel.range(n, GRAIN, (lo, hi) -> {
                    for (int i = o + lo; i < o + hi; i++) v[i] = v[i] > 0 ? v[i] : 0.0;
                });
            }
            default -> {
                DType t = y.dtype();
                Parallel.range(n, GRAIN, (lo, hi) -> {
                    for (int i = o + lo; i < o + hi; i++) if (!(HostArrays.get(a, t, i) > 0)) HostArrays.set(a, t, i, 0);
                });
            }
        }
    }

    /**
     * {dz, db} for y = relu?(z + b) over dim 1 of (N, C, ...): dz = relu ? (y > 0 ? g : 0) : g, db[c] = sum of dz
     * over every dim but 1, accumulated in double, one channel per task (so the order is fixed).
     */
    static Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad) {
        requireAnyFloat("bias_relu_backward", g.dtype());
        Tensor gc = g.isContiguous() ? g : g.detach().contiguousCopy();
        Tensor yc = !relu ? null : y.isContiguous() ? y : y.detach().contiguousCopy();
        int[] shape = g.shape();
        int images = shape[0], c = shape[1];
        int inner = images * c == 0 ? 0 : (int) (g.numel() / ((long) images * c));
        DType t = g.dtype();
        Tensor dz = relu ? ElementKernels.newTensor(shape, t) : gc;
        Object ga = array("bias_relu_backward", gc), da = array("bias_relu_backward", dz);
        Object ya = relu ? array("bias_relu_backward", yc) : null;
        int og = gc.offset(), oy = relu ? yc.offset() : 0, od = dz.offset();
        // rows (n, ch) in memory order across the threads, each row's sum kept; then per channel in image order
        double[] rowSums = new double[images * c];
        Parallel.range(images * c, Math.max(1, GRAIN / Math.max(inner, 1)), (lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                rowSums[row] = t == DType.FLOAT32
                        ? biasReluRowF32((float[]) ga, og, (float[]) ya, oy, (float[]) da, od, row * inner, inner, relu)
                        : biasReluRow(ga, og, ya, oy, da, od, t, row * inner, inner, relu);
            }
        });
        double[] sums = new double[c];
        for (int ch = 0; ch < c; ch++) {
            for (int n = 0; n < images; n++) sums[ch] += rowSums[n * c + ch];
        }
        Tensor db = null;
        if (biasGrad) {
            db = ElementKernels.newTensor(new int[]{c}, t);
            Object ba = array("bias_relu_backward", db);
            for (int ch = 0; ch < c; ch++) HostArrays.set(ba, t, ch, sums[ch]);
        }
        return new Tensor[]{dz, db};
    }

    /** One row of biasReluBackward in float32: dz written when relu, the row's sum of dz returned (lane partials). */
    private static double biasReluRowF32(float[] gs, int og, float[] ys, int oy, float[] ds, int od, int from, int inner, boolean relu) {
        FloatVector zero = FloatVector.zero(FP), part = zero;
        int k = from, end = from + inner;
        for (; k <= end - FP.length(); k += FP.length()) {
            FloatVector v = FloatVector.fromArray(FP, gs, og + k);
            if (relu) {
                v = v.blend(zero, FloatVector.fromArray(FP, ys, oy + k).compare(VectorOperators.GT, 0f).not());
                v.intoArray(ds, od + k);
            }
            part = part.add(v);
        }
        float tail = 0;
        for (; k < end; k++) {
            float v = gs[og + k];
            if (relu) {
                v = ys[oy + k] > 0 ? v : 0f;
                ds[od + k] = v;
            }
            tail += v;
        }
        return part.reduceLanes(VectorOperators.ADD) + tail;
    }

    /** The same row for any float dtype, in double. */
    private static double biasReluRow(Object ga, int og, Object ya, int oy, Object da, int od, DType t, int from, int inner, boolean relu) {
        double acc = 0;
        for (int k = from; k < from + inner; k++) {
            double v = HostArrays.get(ga, t, og + k);
            if (relu) {
                if (!(HostArrays.get(ya, t, oy + k) > 0)) v = 0;
                HostArrays.set(da, t, od + k, v);
            }
            acc += v;
        }
        return acc;
    }

    private static final VectorSpecies<Long> L = LongVector.SPECIES_512;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Float> FP = FloatVector.SPECIES_PREFERRED;
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /**
     * Generator.uniformAt in 8 lanes at once (splitmix64 vectorises with 64-bit lane multiplies). uniform >= p is
     * compared exactly as the integer m >= ceil(p * 2^24), m being the 24 bits the uniform is made of.
     */
    private static void dropoutF32(float[] xs, int ox, float[] os, int lo, int hi, long key, double p, float s) {
        long threshold = (long) Math.ceil(p * 0x1.0p24);
        LongVector lane = LongVector.zero(L).addIndex(1);
        FloatVector scale = FloatVector.broadcast(F8, s), zero = FloatVector.zero(F8);
        int i = lo;
        for (; i <= hi - 8; i += 8) {
            LongVector z = lane.add(i + 1).mul(GOLDEN).add(key);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 30)).mul(0xBF58476D1CE4E5B9L);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 27)).mul(0x94D049BB133111EBL);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 31)).lanewise(VectorOperators.LSHR, 40);
            VectorMask<Float> keep = z.compare(VectorOperators.GE, threshold).cast(F8);
            FloatVector.fromArray(F8, xs, ox + i).mul(zero.blend(scale, keep)).intoArray(os, i);
        }
        for (; i < hi; i++) os[i] = xs[ox + i] * (Generator.uniformAt(key, i) >= p ? s : 0f);
    }

    // ---------------------------------------------------------------- softmax cross-entropy

    /** In double, in row order. */
    static Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex) {
        requireAnyFloat("mean", values.dtype());
        Tensor v = values.isContiguous() ? values : values.detach().contiguousCopy();
        Tensor t = target.isContiguous() ? target : target.detach().contiguousCopy();
        Object va = array("mean", v);
        long[] ta = (long[]) array("mean", t);
        DType dt = v.dtype();
        double sum = 0;
        long kept = 0;
        for (int i = 0, n = (int) v.numel(); i < n; i++) {
            if (ta[t.offset() + i] == ignoreIndex) continue;
            sum += HostArrays.get(va, dt, v.offset() + i);
            kept++;
        }
        Tensor mean = ElementKernels.newTensor(new int[0], dt), count = ElementKernels.newTensor(new int[0], dt);
        HostArrays.set(array("mean", mean), dt, 0, sum / kept);
        HostArrays.set(array("mean", count), dt, 0, kept);
        return new Tensor[]{mean, count};
    }

    /** Computes in double for both dtypes (rows are short; the extra precision costs nothing here). */
    static Tensor[] crossEntropyRows(Tensor logits, Tensor target, double s, long ignoreIndex) {
        requireFloat("cross_entropy", logits.dtype());
        Tensor x = logits.isContiguous() ? logits : logits.detach().contiguousCopy();
        Tensor t = target.isContiguous() ? target : target.detach().contiguousCopy();
        int rows = x.shape()[0], c = x.shape()[1];
        Tensor loss = ElementKernels.newTensor(new int[]{rows}, x.dtype()), lse = ElementKernels.newTensor(new int[]{rows}, x.dtype());
        Object xa = array("cross_entropy", x), la = array("cross_entropy", loss), sa = array("cross_entropy", lse);
        long[] ta = (long[]) array("cross_entropy", t);
        int ox = x.offset(), ot = t.offset();
        DType dt = x.dtype();
        Parallel.range(rows, Math.max(1, GRAIN / Math.max(c, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                long cls = ta[ot + r];
                if (cls == ignoreIndex) {
                    set(la, dt, r, 0);
                    set(sa, dt, r, 0);
                    continue;
                }
                if (cls < 0 || cls >= c) {
                    throw new IndexOutOfBoundsException("cross_entropy: target class out of range for " + c + " classes (valid: 0.."
                            + (c - 1) + " or ignore_index " + ignoreIndex + "): index " + cls + " in row " + r);
                }
                int base = ox + r * c;
                double max = Double.NEGATIVE_INFINITY, sumX = 0;
                for (int j = 0; j < c; j++) {
                    double v = get(xa, dt, base + j);
                    max = Math.max(max, v);
                    sumX += v;
                }
                double sumExp = 0;
                for (int j = 0; j < c; j++) sumExp += Math.exp(get(xa, dt, base + j) - max);
                double l = max + Math.log(sumExp);
                double nll = l - get(xa, dt, base + (int) cls);
                set(la, dt, r, (1 - s) * nll + (s / c) * (c * l - sumX));
                set(sa, dt, r, l);
            }
        });
        return new Tensor[]{loss, lse};
    }

    static Tensor crossEntropyRowsBackward(Tensor logits, Tensor target, Tensor logSumExp, Tensor gradRows, double s, long ignoreIndex) {
        requireFloat("cross_entropy", logits.dtype());
        Tensor x = logits.isContiguous() ? logits : logits.detach().contiguousCopy();
        Tensor t = target.isContiguous() ? target : target.detach().contiguousCopy();
        int rows = x.shape()[0], c = x.shape()[1];
        DType dt = x.dtype();
        Tensor gx = ElementKernels.newTensor(x.shape(), dt);
        Object xa = array("cross_entropy", x), oa = array("cross_entropy", gx);
        Object sa = ((CpuStorage) logSumExp.storage()).array(), ga = ((CpuStorage) gradRows.storage()).array();
        long[] ta = (long[]) array("cross_entropy", t);
        int ox = x.offset(), ot = t.offset(), os = logSumExp.offset(), ss = logSumExp.strides()[0];
        int og = gradRows.offset(), sg = gradRows.strides()[0];
        DType gt = gradRows.dtype();
        Parallel.range(rows, Math.max(1, GRAIN / Math.max(c, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                long cls = ta[ot + r];
                int base = r * c;
                if (cls == ignoreIndex) {
                    for (int j = 0; j < c; j++) set(oa, dt, base + j, 0);
                    continue;
                }
                double l = get(sa, dt, os + r * ss), g = get(ga, gt, og + r * sg);
                for (int j = 0; j < c; j++) {
                    double onehot = j == cls ? 1 - s : 0;
                    set(oa, dt, base + j, (Math.exp(get(xa, dt, ox + base + j) - l) - onehot - s / c) * g);
                }
            }
        });
        return gx;
    }

    private static double get(Object a, DType t, int i) { return t == DType.FLOAT32 ? ((float[]) a)[i] : ((double[]) a)[i]; }

    private static void set(Object a, DType t, int i, double v) {
        if (t == DType.FLOAT32) ((float[]) a)[i] = (float) v;
        else ((double[]) a)[i] = v;
    }
}
