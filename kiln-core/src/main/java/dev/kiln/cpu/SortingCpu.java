package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;

import java.util.function.IntBinaryOperator;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernel of the Sorting family: each line of x along dim (x viewed as (outer, n, inner)) in order, its first
 * k indices written. Dtypes whose values leave low key bits free sort one long per element (key over index: a strict
 * order, so a primitive sort is exact, and a heap finds the first k); float64 and int64 take a stable merge sort of
 * indices; keys compare as numbers (-0 equals 0) with NaN above all, exactly as int64.
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
        int free = indexBits(t);
        if (n <= 1L << free) {
            // one long per element: the key's bits above `free` (what tells the dtype's values apart) over the index, so
            // a primitive sort (or, for k below n, a heap of the k smallest) gives exactly the stable order
            long low = (1L << free) - 1;
            Parallel.range(lines, Math.max(1, 16384 / n), (lo, hi) -> {
                long[] packed = new long[n], heap = k < n ? new long[k] : null;
                for (int line = lo; line < hi; line++) {
                    int at = (line / in) * n * in + line % in, to = (line / in) * k * in + line % in;
                    for (int j = 0; j < n; j++) packed[j] = orderedKey(HostArrays.get(a, t, base + at + j * in), descending) & ~low | j;
                    long[] first = heap == null ? packed : smallest(packed, n, heap);
                    java.util.Arrays.sort(first, 0, k);
                    for (int j = 0; j < k; j++) o[to + j * in] = first[j] & low;
                }
            });
            return out;
        }
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

    /**
     * Low bits of {@link #orderedKey} that no two of a dtype's values differ in (the double of a float has 29 zero
     * mantissa bits, of a bf16 or f16 42, of an int 22, of a byte 44), free to carry the index; 0 for float64 and int64.
     */
    static int indexBits(DType t) {
        return switch (t) {
            case FLOAT32 -> 29;
            case BFLOAT16, FLOAT16 -> 42;
            case INT32 -> 22;
            case UINT8, BOOL -> 44;
            case FLOAT64, INT64 -> 0;
        };
    }

    /**
     * v's place in the order as a signed long: numbers by value (-0 as 0), NaN above all; descending reverses it. The
     * bits below {@link #indexBits} are the same for every value that shares the bits above (all zeros or all ones).
     */
    static long orderedKey(double v, boolean descending) {
        long u;
        if (v != v) {
            u = -1L;
        } else {
            long b = Double.doubleToRawLongBits(v == 0 ? 0.0 : v);
            u = b < 0 ? ~b : b | Long.MIN_VALUE;   // unsigned order of the values
        }
        return (descending ? ~u : u) ^ Long.MIN_VALUE;   // to signed order
    }

    /** The k smallest of v[0, n) into heap (a max-heap while filling), unsorted. */
    private static long[] smallest(long[] v, int n, long[] heap) {
        int k = heap.length;
        for (int j = 0; j < n; j++) {
            if (j < k) {
                int c = j;   // sift up
                heap[c] = v[j];
                while (c > 0 && heap[(c - 1) / 2] < heap[c]) {
                    long s = heap[c];
                    heap[c] = heap[(c - 1) / 2];
                    heap[c = (c - 1) / 2] = s;
                }
            } else if (k > 0 && v[j] < heap[0]) {
                int c = 0;   // replace the largest, sift down
                heap[0] = v[j];
                while (true) {
                    int l = 2 * c + 1, m = c;
                    if (l < k && heap[l] > heap[m]) m = l;
                    if (l + 1 < k && heap[l + 1] > heap[m]) m = l + 1;
                    if (m == c) break;
                    long s = heap[c];
                    heap[c] = heap[m];
                    heap[c = m] = s;
                }
            }
        }
        return heap;
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
