package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Indexing family: gather, scatter-add, index-select, index-add. Indices are bounds-checked
 * ([0, size)) with a clear message.
 */
final class IndexingCpu {
    private IndexingCpu() {}

    /** Indices must lie in [0, size): as in PyTorch's gather and index_select, negative ones do not wrap. */
    private static int checkIndex(long v, int size, String op, int dim) {
        if (v < 0 || v >= size) {
            throw new IndexOutOfBoundsException(op + ": index " + v + " is out of bounds for dimension " + dim + " with size " + size);
        }
        return (int) v;
    }

    /** Offsets of every element of a strided tensor in row-major order. */
    private static int[] offsets(Tensor t) {
        int n = (int) t.numel();
        int[] out = new int[n];
        int[] shape = t.shape(), st = t.strides();
        int[] idx = new int[shape.length];
        int off = t.offset();
        for (int i = 0; i < n; i++) {
            out[i] = off;
            for (int d = shape.length - 1; d >= 0; d--) {
                idx[d]++;
                off += st[d];
                if (idx[d] < shape[d]) break;
                off -= st[d] * shape[d];
                idx[d] = 0;
            }
        }
        return out;
    }

    static Tensor gather(Tensor x, int dim, Tensor index) {
        int[] ishape = index.shape();
        Tensor out = newTensor(ishape, x.dtype());
        Object src = arrayOf(x), dst = arrayOf(out);
        long[] ix = (long[]) arrayOf(index);
        int[] io = offsets(index);
        int[] xs = x.strides();
        int size = x.shape()[dim];
        DType t = x.dtype();
        int[] pos = new int[ishape.length];
        for (int i = 0; i < io.length; i++) {
            int off = x.offset();
            for (int d = 0; d < ishape.length; d++) {
                off += (d == dim ? checkIndex(ix[io[i]], size, "gather", dim) : pos[d]) * xs[d];
            }
            HostArrays.set(dst, t, i, HostArrays.get(src, t, off));
            increment(pos, ishape);
        }
        return out;
    }

    private static void increment(int[] pos, int[] shape) {
        for (int d = shape.length - 1; d >= 0; d--) {
            if (++pos[d] < shape[d]) return;
            pos[d] = 0;
        }
    }

    static Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src) {
        Tensor out = newTensor(shape.clone(), src.dtype());
        ElementwiseCpu.fill(out, 0);
        Object s = arrayOf(src), dst = arrayOf(out);
        long[] ix = (long[]) arrayOf(index);
        int[] io = offsets(index), so = offsets(src);
        int[] ishape = index.shape(), os = Shape.contiguousStrides(shape);
        DType t = src.dtype();
        int[] pos = new int[ishape.length];
        for (int i = 0; i < io.length; i++) {
            int off = 0;
            for (int d = 0; d < ishape.length; d++) {
                off += (d == dim ? checkIndex(ix[io[i]], shape[dim], "scatter_add", dim) : pos[d]) * os[d];
            }
            HostArrays.set(dst, t, off, HostArrays.get(dst, t, off) + HostArrays.get(s, t, so[i]));
            increment(pos, ishape);
        }
        return out;
    }

    /** The int64 indices as a fresh array, each checked against size. */
    private static int[] checkedIndices(Tensor index, int size, String op, int dim) {
        Tensor ic = index.isContiguous() ? index : index.contiguousCopy();
        long[] raw = (long[]) arrayOf(ic);
        int[] out = new int[(int) index.numel()];
        for (int i = 0; i < out.length; i++) out[i] = checkIndex(raw[ic.offset() + i], size, op, dim);
        return out;
    }

    /** Product of the dimensions before (outer) or after (inner) dim: a contiguous tensor is (outer, size, inner). */
    private static int outer(int[] shape, int dim) {
        int n = 1;
        for (int d = 0; d < dim; d++) n *= shape[d];
        return n;
    }

    private static int inner(int[] shape, int dim) {
        int n = 1;
        for (int d = dim + 1; d < shape.length; d++) n *= shape[d];
        return n;
    }

    /** out (outer, k, inner) takes row index[i] of x (outer, size, inner): one arraycopy per row. */
    static Tensor indexSelect(Tensor x, int dim, Tensor index) {
        int[] shape = x.shape();
        int size = shape[dim];
        int[] ix = checkedIndices(index, size, "index_select", dim);
        Tensor xc = x.isContiguous() ? x : x.contiguousCopy();
        shape[dim] = ix.length;
        Tensor out = newTensor(shape, x.dtype());
        Object src = arrayOf(xc), dst = arrayOf(out);
        int outer = outer(shape, dim), inner = inner(shape, dim), base = xc.offset();
        Parallel.range(outer * ix.length, Math.max(1, 4096 / Math.max(inner, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int o = r / ix.length, i = r % ix.length;
                System.arraycopy(src, base + (o * size + ix[i]) * inner, dst, r * inner, inner);
            }
        });
        return out;
    }

    /**
     * Image windows (Backend.cropImages): each output row is one arraycopy of its in-image span (zeros stay around it),
     * mirrored rows are reversed in place after the copy.
     */
    static Tensor cropImages(Tensor x, Tensor boxes, int outH, int outW) {
        int[] s = x.shape();
        int n = s[0], c = s[1], h = s[2], w = s[3];
        Tensor xc = x.isContiguous() ? x : x.contiguousCopy();
        int[] b = (int[]) arrayOf(boxes.isContiguous() ? boxes : boxes.contiguousCopy());
        int bo = boxes.isContiguous() ? boxes.offset() : 0;
        Tensor out = newTensor(new int[]{n, c, outH, outW}, x.dtype());   // zeros
        Object src = arrayOf(xc), dst = arrayOf(out);
        int base = xc.offset();
        Parallel.range(n * c, Math.max(1, 16384 / Math.max(1, outH * outW)), (lo, hi) -> {
            for (int plane = lo; plane < hi; plane++) {
                int img = plane / c, top = b[bo + img * 3], left = b[bo + img * 3 + 1];
                boolean mirror = b[bo + img * 3 + 2] != 0;
                int j0 = Math.max(0, -left), j1 = Math.min(outW, w - left);   // the window's columns inside the image
                for (int i = 0; i < outH; i++) {
                    int y = top + i, d = (plane * outH + i) * outW;
                    if (y < 0 || y >= h) continue;
                    if (j1 > j0) System.arraycopy(src, base + (plane * h + y) * w + left + j0, dst, d + j0, j1 - j0);
                    if (mirror) reverse(dst, d, outW);
                }
            }
        });
        return out;
    }

    private static void reverse(Object a, int from, int len) {
        switch (a) {
            case float[] f -> { for (int i = from, j = from + len - 1; i < j; i++, j--) { float t = f[i]; f[i] = f[j]; f[j] = t; } }
            case double[] f -> { for (int i = from, j = from + len - 1; i < j; i++, j--) { double t = f[i]; f[i] = f[j]; f[j] = t; } }
            case short[] f -> { for (int i = from, j = from + len - 1; i < j; i++, j--) { short t = f[i]; f[i] = f[j]; f[j] = t; } }
            default -> throw new IllegalArgumentException("crop_images: images must be floating point");
        }
    }

    /** out (outer, shape[dim], inner) = 0, then row index[i] += src row i; serial over i since indices may repeat. */
    static Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) {
        int size = shape[dim];
        int[] ix = checkedIndices(index, size, "index_add", dim);
        Tensor out = newTensor(shape.clone(), src.dtype());
        ElementwiseCpu.fill(out, 0);
        Tensor sc = src.isContiguous() ? src : src.contiguousCopy();
        Object s = arrayOf(sc), d = arrayOf(out);
        int outer = outer(shape, dim), inner = inner(shape, dim), base = sc.offset();
        DType t = src.dtype();
        Parallel.range(outer, 1, (lo, hi) -> {
            for (int o = lo; o < hi; o++) {
                for (int i = 0; i < ix.length; i++) {
                    addRow(d, (o * size + ix[i]) * inner, s, base + (o * ix.length + i) * inner, inner, t);
                }
            }
        });
        return out;
    }

    private static void addRow(Object dst, int doff, Object src, int soff, int n, DType t) {
        if (t == DType.FLOAT32) {
            float[] fd = (float[]) dst, fs = (float[]) src;
            for (int j = 0; j < n; j++) fd[doff + j] += fs[soff + j];
        } else if (t == DType.FLOAT64) {
            double[] dd = (double[]) dst, ds = (double[]) src;
            for (int j = 0; j < n; j++) dd[doff + j] += ds[soff + j];
        } else {
            for (int j = 0; j < n; j++) HostArrays.set(dst, t, doff + j, HostArrays.get(dst, t, doff + j) + HostArrays.get(src, t, soff + j));
        }
    }
}
