package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.ReduceOp;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Reductions family (reduce, argReduce, cumsum): the reduced dimensions are brought innermost
 * (or found outermost) so each output is one pass.
 */
final class ReductionsCpu {
    private ReductionsCpu() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    static Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim) {
        int r = x.dim();
        int[] shape = x.shape();
        boolean[] red = new boolean[r];
        for (int d : dims) red[d] = true;
        int[] outShape = outShape(shape, red, keepdim);
        long inner = 1;
        for (int d : dims) inner *= shape[d];
        int outer = (int) (x.numel() / Math.max(inner, 1));
        DType t = x.dtype();
        Tensor out = newTensor(outShape, t);
        if (x.numel() == 0) {
            ElementwiseCpu.fill(out, 0);
            return out;
        }
        boolean leading = true;
        for (int d = 0; d < r; d++) if (red[d] != (d < dims.length)) leading = false;
        if (t == DType.FLOAT32 && op == ReduceOp.SUM && leading && x.isContiguous() && dims.length > 0) {
            sumLeadingF32((float[]) arrayOf(x), x.offset(), (int) inner, outer, (float[]) arrayOf(out));
            return out;
        }
        // bring reduced dims innermost and make rows contiguous
        int[] perm = new int[r];
        int k = 0;
        for (int d = 0; d < r; d++) if (!red[d]) perm[k++] = d;
        for (int d = 0; d < r; d++) if (red[d]) perm[k++] = d;
        Tensor xp = x.detach().permute(perm);
        if (!xp.isContiguous()) xp = xp.contiguousCopy();
        Object a = arrayOf(xp), o = arrayOf(out);
        int base = xp.offset(), n = (int) inner;
        if (t == DType.FLOAT32) {
            float[] fa = (float[]) a, fo = (float[]) o;
            Parallel.range(outer, Math.max(1, 4096 / Math.max(n, 1)), (lo, hi) -> {
                for (int i = lo; i < hi; i++) fo[i] = rowF32(op, fa, base + i * n, n);
            });
            return out;
        }
        Parallel.range(outer, Math.max(1, 4096 / Math.max(n, 1)), (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double acc = op == ReduceOp.SUM ? 0 : HostArrays.get(a, t, base + i * n);
                for (int j = 0; j < n; j++) {
                    double v = HostArrays.get(a, t, base + i * n + j);
                    acc = switch (op) {
                        case SUM -> acc + v;
                        case MAX -> Double.isNaN(v) || v > acc ? v : acc;
                        case MIN -> Double.isNaN(v) || v < acc ? v : acc;
                    };
                }
                HostArrays.set(o, t, i, acc);
            }
        });
        return out;
    }

    private static int[] outShape(int[] shape, boolean[] red, boolean keepdim) {
        int[] o = new int[shape.length];
        int k = 0;
        for (int d = 0; d < shape.length; d++) {
            if (!red[d]) o[k++] = shape[d];
            else if (keepdim) o[k++] = 1;
        }
        return Arrays.copyOf(o, k);
    }

    private static float rowF32(ReduceOp op, float[] a, int off, int n) {
        int i = 0;
        if (op == ReduceOp.SUM) {
            FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
            for (; i <= n - 2 * F.length(); i += 2 * F.length()) {
                acc0 = acc0.add(FloatVector.fromArray(F, a, off + i));
                acc1 = acc1.add(FloatVector.fromArray(F, a, off + i + F.length()));
            }
            double s = Lanes.sum(acc0.add(acc1));
            for (; i < n; i++) s += a[off + i];
            return (float) s;
        }
        float acc = a[off];
        for (i = 1; i < n; i++) {
            float v = a[off + i];
            if (Float.isNaN(v)) return v;
            acc = op == ReduceOp.MAX ? Math.max(acc, v) : Math.min(acc, v);
        }
        return acc;
    }

    /** out[j] = sum_i x[i * cols + j]: reducing the leading dimensions (bias gradients) without a transpose. */
    private static void sumLeadingF32(float[] x, int off, int rows, int cols, float[] out) {
        Parallel.range(cols, 1024, (lo, hi) -> {
            Arrays.fill(out, lo, hi, 0f);
            for (int i = 0; i < rows; i++) {
                int base = off + i * cols;
                int j = lo;
                for (; j <= hi - F.length(); j += F.length()) {
                    FloatVector.fromArray(F, out, j).add(FloatVector.fromArray(F, x, base + j)).intoArray(out, j);
                }
                for (; j < hi; j++) out[j] += x[base + j];
            }
        });
    }

    static Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim) {
        int r = x.dim();
        if (r == 0) {
            Tensor out = newTensor(new int[0], DType.INT64);
            ((long[]) arrayOf(out))[0] = 0;
            return out;
        }
        boolean[] red = new boolean[r];
        red[dim] = true;
        int[] outShape = outShape(x.shape(), red, keepdim);
        int[] perm = new int[r];
        int k = 0;
        for (int d = 0; d < r; d++) if (d != dim) perm[k++] = d;
        perm[k] = dim;
        Tensor xp = x.detach().permute(perm);
        if (!xp.isContiguous()) xp = xp.contiguousCopy();
        Object a = arrayOf(xp);
        DType t = x.dtype();
        int n = x.shape()[dim], base = xp.offset();
        int outer = (int) (x.numel() / n);
        Tensor out = newTensor(outShape, DType.INT64);
        long[] o = (long[]) arrayOf(out);
        Parallel.range(outer, Math.max(1, 4096 / n), (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                int best = 0;
                double bv = HostArrays.get(a, t, base + i * n);
                for (int j = 1; j < n && !Double.isNaN(bv); j++) {
                    double v = HostArrays.get(a, t, base + i * n + j);
                    if (Double.isNaN(v) || (max ? v > bv : v < bv)) {
                        bv = v;
                        best = j;
                    }
                }
                o[i] = best;
            }
        });
        return out;
    }

    /**
     * Running sums along dim of x viewed as (outer, n, inner), contiguous: each of a task's outer blocks walks j in
     * order (from the end with reverse) with one double (int64: long) sum per inner position, so every read and write is
     * a contiguous run of inner values.
     */
    static Tensor cumsum(Tensor x, int dim, boolean reverse) {
        int[] shape = x.shape();
        DType t = x.dtype();
        Tensor out = newTensor(shape, t);
        if (x.numel() == 0) return out;
        int n = shape.length == 0 ? 1 : shape[dim], inner = 1;
        for (int d = dim + 1; d < shape.length; d++) inner *= shape[d];
        int outer = (int) (x.numel() / ((long) n * inner)), in = inner;
        Tensor xc = x.isContiguous() ? x.detach() : x.detach().contiguousCopy();
        Object a = arrayOf(xc), o = arrayOf(out);
        int base = xc.offset();
        Parallel.range(outer, Math.max(1, 16384 / Math.max(1, n * inner)), (lo, hi) -> {
            if (t == DType.INT64) {
                long[] xa = (long[]) a, oa = (long[]) o, sum = new long[in];
                for (int b = lo; b < hi; b++) {
                    java.util.Arrays.fill(sum, 0);
                    for (int s = 0; s < n; s++) {
                        int at = (b * n + (reverse ? n - 1 - s : s)) * in;
                        for (int i = 0; i < in; i++) oa[at + i] = sum[i] += xa[base + at + i];
                    }
                }
                return;
            }
            double[] sum = new double[in];
            for (int b = lo; b < hi; b++) {
                java.util.Arrays.fill(sum, 0);
                for (int s = 0; s < n; s++) {
                    int at = (b * n + (reverse ? n - 1 - s : s)) * in;
                    switch (t) {
                        case FLOAT32 -> {
                            float[] xa = (float[]) a, oa = (float[]) o;
                            for (int i = 0; i < in; i++) oa[at + i] = (float) (sum[i] += xa[base + at + i]);
                        }
                        case FLOAT64 -> {
                            double[] xa = (double[]) a, oa = (double[]) o;
                            for (int i = 0; i < in; i++) oa[at + i] = sum[i] += xa[base + at + i];
                        }
                        default -> {
                            for (int i = 0; i < in; i++) HostArrays.set(o, t, at + i, sum[i] += HostArrays.get(a, t, base + at + i));
                        }
                    }
                }
            }
        });
        return out;
    }
}
