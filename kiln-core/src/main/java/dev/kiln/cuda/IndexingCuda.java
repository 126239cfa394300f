package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * Gather, scatter-add, index-select, index-add and image windows on CUDA (indexing.cu); a bad index is recorded in the
 * backend error word.
 */
final class IndexingCuda extends CudaFamily {
    private final Kernels.Table gather, scatterAdd, indexSelect, indexAdd, cropImages;

    IndexingCuda(CudaBackend backend) {
        super(backend);
        gather = new Kernels.Table(dev, "indexing.cu", "gather");
        scatterAdd = new Kernels.Table(dev, "indexing.cu", "scatter_add");
        indexSelect = new Kernels.Table(dev, "indexing.cu", "index_select");
        indexAdd = new Kernels.Table(dev, "indexing.cu", "index_add");
        cropImages = new Kernels.Table(dev, "indexing.cu", "crop_images");
    }

    Tensor cropImages(Tensor x, Tensor boxes, int outH, int outW) {
        int[] s = x.shape();
        Tensor xc = contiguous(x, x.dtype()), bc = contiguous(boxes, DType.INT32);
        Tensor out = newTensor(new int[]{s[0], s[1], outH, outW}, x.dtype());
        long planes = (long) s[0] * s[1], n = planes * outH * outW;
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).ptr(ptr(bc)).i64(planes).i64(s[1]).i64(s[2]).i64(s[3]).i64(outH).i64(outW)
                    .go(dev, cropImages.get(x.dtype()), grid(n), BLOCK);
        }
        drop(xc, x);
        drop(bc, boxes);
        return out;
    }

    /** The dtype the atomic-add kernels compute in: 16-bit floats in float32, bytes in int32. */
    private static DType atomicType(DType t) {
        return switch (t) {
            case FLOAT32, FLOAT64, INT64, INT32 -> t;
            case BFLOAT16, FLOAT16 -> DType.FLOAT32;
            case UINT8, BOOL -> DType.INT32;
        };
    }

    Tensor gather(Tensor x, int dim, Tensor index) {
        int[] ishape = index.shape();
        Tensor out = newTensor(ishape, x.dtype());
        long n = index.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(x)).ptr(ptr(index)).i32(dim).i64(x.shape()[dim]).i64(n)
                    .geo(Geo.raw(ishape, x.strides(), index.strides())).ptr(backend.errorWord()).go(dev, gather.get(x.dtype()), grid(n), BLOCK);
        }
        return out;
    }

    Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src) {
        Cuda.requireNotDeterministic("scatter_add (gather's gradient)");
        DType t = atomicType(src.dtype());
        Tensor s = t == src.dtype() ? src : contiguous(src, t);
        Tensor out = newTensor(shape.clone(), t);
        backend.fill(out, 0);
        long n = index.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(index)).ptr(ptr(s)).i32(dim).i64(shape[dim]).i64(n)
                    .geo(Geo.raw(index.shape(), Shape.contiguousStrides(shape), index.strides(), s.strides()))
                    .ptr(backend.errorWord()).go(dev, scatterAdd.get(t), grid(n), BLOCK);
        }
        drop(s, src);
        return narrowBack(out, src.dtype());
    }

    private Tensor narrowBack(Tensor out, DType t) {
        if (out.dtype() == t) return out;
        Tensor r = contiguous(out, t);
        out.storage().release();
        return r;
    }

    Tensor indexSelect(Tensor x, int dim, Tensor index) {
        Tensor ic = contiguous(index);
        int[] shape = x.shape();
        shape[dim] = (int) index.numel();
        Tensor out = newTensor(shape, x.dtype());
        long n = out.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(x)).ptr(ptr(ic)).i32(dim).i64(x.shape()[dim]).i64(n)
                    .geo(Geo.raw(shape, x.strides())).ptr(backend.errorWord()).go(dev, indexSelect.get(x.dtype()), grid(n), BLOCK);
        }
        drop(ic, index);
        return out;
    }

    Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) {
        Cuda.requireNotDeterministic("index_add (an embedding's or index_select's gradient)");
        DType t = atomicType(src.dtype());
        Tensor s = t == src.dtype() ? src : contiguous(src, t);
        Tensor ic = contiguous(index);
        Tensor out = newTensor(shape.clone(), t);
        backend.fill(out, 0);
        long n = s.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(ic)).ptr(ptr(s)).i32(dim).i64(shape[dim]).i64(n)
                    .geo(Geo.raw(s.shape(), Shape.contiguousStrides(shape), s.strides()))
                    .ptr(backend.errorWord()).go(dev, indexAdd.get(t), grid(n), BLOCK);
        }
        drop(s, src);
        drop(ic, index);
        return narrowBack(out, src.dtype());
    }
}
