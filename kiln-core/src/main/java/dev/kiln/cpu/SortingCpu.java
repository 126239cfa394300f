package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;

import java.util.function.IntBinaryOperator;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernel of the Sorting family: each line of x along dim (x viewed as (outer, n, inner)) sorted as indices by
 * a merge sort, which is stable, and its first k written; keys compare as numbers (-0 equals 0) with NaN above all, exactly as int64.
 */
final class SortingCpu {
    private SortingCpu() {}

    static Tensor argsort(Tensor x, int dim, boolean descending, int k) {
        int[] shape = x.shape(), outShape = shape.clone();
        if (shape.length > 0) outShape[dim] = k;
        Tensor out = newTensor(outShape, DType.INT64);
        if (out.numel() == 0) return out;
        int n = shape.length == 0 ? 1 : shape[dim], inner = 1;
        for (int d = dim + 1; d < shape.length; d++) inner *= shape[d];
        int lines = (int) (x.numel() / n), in = inner;
        Tensor xc = x.isContiguous() ? x.detach() : x.detach().contiguousCopy();
        Object a = arrayOf(xc);
        int base = xc.offset();
        DType t = x.dtype();
        long[] o = (long[]) arrayOf(out);
        Parallel.range(lines, Math.max(1, 16384 / n), (lo, hi) -> {
            int[] order = new int[n], scratch = new int[n];
            long[] lk = t == DType.INT64 ? new long[n] : null;
            double[] dk = lk == null ? new double[n] : null;
            IntBinaryOperator cmp = lk != null
                    ? (p, q) -> descending ? Long.compare(lk[q], lk[p]) : Long.compare(lk[p], lk[q])
                    : (p, q) -> descending ? compare(dk[q], dk[p]) : compare(dk[p], dk[q]);
            for (int line = lo; line < hi; line++) {
                int at = (line / in) * n * in + line % in;
                for (int j = 0; j < n; j++) {
                    if (lk != null) lk[j] = ((long[]) a)[base + at + j * in];
                    else dk[j] = HostArrays.get(a, t, base + at + j * in);
                    order[j] = j;
                }
                mergeSort(order, scratch, n, cmp);
                int to = (line / in) * k * in + line % in;
                for (int j = 0; j < k; j++) o[to + j * in] = order[j];
            }
        });
        return out;
    }

    /** Numbers by value (-0 equals 0), NaN above every number and equal to NaN. */
    static int compare(double p, double q) {
        if (p < q) return -1;
        if (p > q) return 1;
        boolean np = p != p, nq = q != q;
        return np == nq ? 0 : np ? 1 : -1;
    }

    /** Bottom-up merge sort of a[0, n) by cmp; equal elements keep their order. */
    private static void mergeSort(int[] a, int[] tmp, int n, IntBinaryOperator cmp) {
        int[] src = a, dst = tmp;
        for (int w = 1; w < n; w *= 2) {
            for (int lo = 0; lo < n; lo += 2 * w) {
                int mid = Math.min(lo + w, n), hi = Math.min(lo + 2 * w, n), i = lo, j = mid, k = lo;
                while (i < mid && j < hi) dst[k++] = cmp.applyAsInt(src[j], src[i]) < 0 ? src[j++] : src[i++];
                while (i < mid) dst[k++] = src[i++];
                while (j < hi) dst[k++] = src[j++];
            }
            int[] s = src;
            src = dst;
            dst = s;
        }
        if (src != a) System.arraycopy(src, 0, a, 0, n);
    }
}
