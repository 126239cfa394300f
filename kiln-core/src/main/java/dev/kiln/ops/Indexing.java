package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;

import static dev.kiln.Backends.get;

/** Ops that read by index: gather, index_select (and so embedding), one_hot, image windows. */
public final class Indexing {
    private Indexing() {}

    public static Tensor gather(Tensor x, int dim, Tensor index) {
        Checks.sameDevice("gather", x, index);
        Checks.dtype("gather", "index", index, DType.INT64);
        int d = Shape.dim(dim, x.dim(), "gather");
        if (index.dim() != x.dim()) {
            throw new IllegalArgumentException("gather: index must have the rank of the input (" + x.dim() + "), got shape " + Shape.str(index.shape()));
        }
        for (int i = 0; i < x.dim(); i++) {
            if (i != d && index.shape()[i] > x.shape()[i]) {
                throw new IllegalArgumentException("gather: index shape " + Shape.str(index.shape()) + " exceeds input shape "
                        + Shape.str(x.shape()) + " in dimension " + i);
            }
        }
        Tensor out = get(x.device()).gather(x, d, index);
        int[] inShape = x.shape();
        return Autograd.record("gather", out, g -> new Tensor[]{scatterAdd(inShape, d, index, g)}, x);
    }

    /** Zeros of {@code shape} with src added where gather would read (differentiable in src). */
    public static Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src) {
        Tensor out = get(src.device()).scatterAdd(shape, dim, index, src);
        return Autograd.record("scatter_add", out, g -> new Tensor[]{gather(g, dim, index)}, src);
    }

    public static Tensor indexSelect(Tensor x, int dim, Tensor index) {
        Checks.sameDevice("index_select", x, index);
        Checks.dtype("index_select", "index", index, DType.INT64);
        if (index.dim() != 1) throw new IllegalArgumentException("index_select: index must be 1-D, got shape " + Shape.str(index.shape()));
        int d = Shape.dim(dim, x.dim(), "index_select");
        Tensor out = get(x.device()).indexSelect(x, d, index);
        int[] inShape = x.shape();
        return Autograd.record("index_select", out, g -> new Tensor[]{indexAdd(inShape, d, index, g)}, x);
    }

    public static Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) {
        Tensor out = get(src.device()).indexAdd(shape, dim, index, src);
        return Autograd.record("index_add", out, g -> new Tensor[]{indexSelect(g, dim, index)}, src);
    }

    /** Rows of weight (V, D) picked by integer ids of any shape: result ids.shape + [D]. */
    public static Tensor embedding(Tensor ids, Tensor weight) {
        Checks.rank("embedding", "weight", weight, 2);
        if (ids.dtype().isFloating() || ids.dtype() == DType.BOOL) {
            throw new IllegalArgumentException("embedding: ids must be integer (int64 or int32), got " + ids.dtype()
                    + " (shape " + Shape.str(ids.shape()) + ")");
        }
        if (ids.dtype() != DType.INT64) ids = ids.to(DType.INT64);
        int[] outShape = java.util.Arrays.copyOf(ids.shape(), ids.dim() + 1);
        outShape[ids.dim()] = weight.shape()[1];
        try {
            return indexSelect(weight, 0, ids.reshape(-1)).reshape(outShape);
        } catch (IndexOutOfBoundsException e) {
            throw new IndexOutOfBoundsException("embedding: an id is out of range for a table of " + weight.shape()[0]
                    + " rows (weight " + Shape.str(weight.shape()) + "): " + e.getMessage());
        }
    }

    /**
     * A window of each image of x (N, C, H, W), for data augmentation (no gradient): out[n, c, i, j] = x[n, c, top + i,
     * left + (mirror ? outW - 1 - j : j)], zero where the window leaves the image; boxes int32 (N, 3) = {top, left,
     * mirror != 0} per image, on x's device.
     */
    public static Tensor cropImages(Tensor x, Tensor boxes, int outH, int outW) {
        Checks.rank("crop_images", "images", x, 4);
        if (!x.dtype().isFloating()) throw new IllegalArgumentException("crop_images: images must be floating point, got " + x.dtype());
        Checks.sameDevice("crop_images", x, boxes);
        Checks.dtype("crop_images", "boxes", boxes, DType.INT32);
        if (boxes.dim() != 2 || boxes.shape()[0] != x.shape()[0] || boxes.shape()[1] != 3) {
            throw new IllegalArgumentException("crop_images: boxes must be (" + x.shape()[0] + ", 3) {top, left, mirror}, got " + Shape.str(boxes.shape()));
        }
        if (outH < 1 || outW < 1) throw new IllegalArgumentException("crop_images: window " + outH + "x" + outW + " must be at least 1x1");
        if (x.requiresGrad()) throw new IllegalArgumentException("crop_images: augments input data and has no gradient; x requires one");
        return get(x.device()).cropImages(x, boxes, outH, outW);
    }

    /** int64 one-hot encoding: ids.shape + [classes]. */
    public static Tensor oneHot(Tensor ids, int classes) {
        if (ids.dtype().isFloating()) throw new IllegalArgumentException("one_hot: expects integer class ids, got " + ids.dtype());
        Tensor range = Tensor.arange(classes, ids.device());
        return Elementwise.cast(ids.to(DType.INT64).unsqueeze(-1).eq(range), DType.INT64);
    }
}
