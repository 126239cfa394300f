package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/** CPU gather / scatter-add / index-select / index-add; indices are bounds-checked ([0, size)) with a clear message. */
final class IndexKernels {
    private IndexKernels() {}

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
        Tensor out = ElementKernels.newTensor(ishape, x.dtype());
        Object src = ElementKernels.arr(x), dst = ElementKernels.arr(out);
        long[] ix = (long[]) ElementKernels.arr(index);
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
        Tensor out = ElementKernels.newTensor(shape.clone(), src.dtype());
        ElementKernels.fill(out, 0);
        Object s = ElementKernels.arr(src), dst = ElementKernels.arr(out);
        long[] ix = (long[]) ElementKernels.arr(index);
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

    static Tensor indexSelect(Tensor x, int dim, Tensor index) {
        int[] shape = x.shape();
        int k = (int) index.numel();
        long[] ix = (long[]) ElementKernels.arr(index.detach().contiguous());
        int ioff = index.isContiguous() ? index.offset() : 0;
        shape[dim] = k;
        Tensor out = ElementKernels.newTensor(shape, x.dtype());
        for (int i = 0; i < k; i++) {
            int src = checkIndex(ix[ioff + i], x.shape()[dim], "index_select", dim);
            ElementKernels.copy(out.narrow(dim, i, 1), x.detach().narrow(dim, src, 1));
        }
        return out;
    }

    static Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) {
        Tensor out = ElementKernels.newTensor(shape.clone(), src.dtype());
        ElementKernels.fill(out, 0);
        int k = (int) index.numel();
        Tensor ic = index.detach().contiguous();
        long[] ix = (long[]) ElementKernels.arr(ic);
        for (int i = 0; i < k; i++) {
            int dst = checkIndex(ix[ic.offset() + i], shape[dim], "index_add", dim);
            Tensor d = out.narrow(dim, dst, 1);
            ElementKernels.copy(d, ElementKernels.binary(dev.kiln.backend.BinaryOp.ADD, d, src.detach().narrow(dim, i, 1)));
        }
        return out;
    }
}
