package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.contiguousArray;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Losses family: softmax cross-entropy per row (forward and its logits gradient) and the
 * mean over the rows not ignored, each one pass where the composite takes a chain of ops.
 */
final class LossesCpu {
    private LossesCpu() {}

    /** In double, in row order. */
    static Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex) {
        DTypeChecks.requireAnyFloat("mean", values.dtype());
        Tensor v = values.isContiguous() ? values : values.detach().contiguousCopy();
        Tensor t = target.isContiguous() ? target : target.detach().contiguousCopy();
        Object va = contiguousArray("mean", v);
        long[] ta = (long[]) contiguousArray("mean", t);
        DType dt = v.dtype();
        double sum = 0;
        long kept = 0;
        for (int i = 0, n = (int) v.numel(); i < n; i++) {
            if (ta[t.offset() + i] == ignoreIndex) continue;
            sum += HostArrays.get(va, dt, v.offset() + i);
            kept++;
        }
        Tensor mean = newTensor(new int[0], dt), count = newTensor(new int[0], dt);
        HostArrays.set(contiguousArray("mean", mean), dt, 0, sum / kept);
        HostArrays.set(contiguousArray("mean", count), dt, 0, kept);
        return new Tensor[]{mean, count};
    }

    /** Computes in double for both dtypes (rows are short; the extra precision costs nothing here). */
    static Tensor[] crossEntropyRows(Tensor logits, Tensor target, double s, long ignoreIndex) {
        DTypeChecks.requireFloat("cross_entropy", logits.dtype());
        Tensor x = logits.isContiguous() ? logits : logits.detach().contiguousCopy();
        Tensor t = target.isContiguous() ? target : target.detach().contiguousCopy();
        int rows = x.shape()[0], c = x.shape()[1];
        Tensor loss = newTensor(new int[]{rows}, x.dtype()), lse = newTensor(new int[]{rows}, x.dtype());
        Object xa = contiguousArray("cross_entropy", x), la = contiguousArray("cross_entropy", loss), sa = contiguousArray("cross_entropy", lse);
        long[] ta = (long[]) contiguousArray("cross_entropy", t);
        int ox = x.offset(), ot = t.offset();
        DType dt = x.dtype();
        Parallel.range(rows, Math.max(1, Parallel.GRAIN / Math.max(c, 1)), (lo, hi) -> {
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
        DTypeChecks.requireFloat("cross_entropy", logits.dtype());
        Tensor x = logits.isContiguous() ? logits : logits.detach().contiguousCopy();
        Tensor t = target.isContiguous() ? target : target.detach().contiguousCopy();
        int rows = x.shape()[0], c = x.shape()[1];
        DType dt = x.dtype();
        Tensor gx = newTensor(x.shape(), dt);
        Object xa = contiguousArray("cross_entropy", x), oa = contiguousArray("cross_entropy", gx);
        Object sa = arrayOf(logSumExp), ga = arrayOf(gradRows);
        long[] ta = (long[]) contiguousArray("cross_entropy", t);
        int ox = x.offset(), ot = t.offset(), os = logSumExp.offset(), ss = logSumExp.strides()[0];
        int og = gradRows.offset(), sg = gradRows.strides()[0];
        DType gt = gradRows.dtype();
        Parallel.range(rows, Math.max(1, Parallel.GRAIN / Math.max(c, 1)), (lo, hi) -> {
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
