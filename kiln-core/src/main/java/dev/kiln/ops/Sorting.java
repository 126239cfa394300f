package dev.kiln.ops;

import dev.kiln.Shape;
import dev.kiln.Tensor;

import static dev.kiln.Backends.get;

/**
 * Sorting along a dimension. The backends sort indices ({@code argsort}, all of them or the first k); sort and topk
 * gather the values through them, so their gradients are gather's (each value's gradient goes back to the element it
 * came from). The order is PyTorch's stable sort: equal values keep their order, NaN is greater than every number.
 */
public final class Sorting {
    private Sorting() {}

    /** The int64 indices that sort x along dim (ascending, or descending). */
    public static Tensor argsort(Tensor x, int dim, boolean descending) {
        int d = Shape.dim(dim, x.dim(), "argsort");
        return get(x.device()).argsort(x, d, descending, x.dim() == 0 ? 1 : x.shape()[d]);
    }

    /** x sorted along dim, with the indices the values came from. */
    public static Tensor.Sorted sort(Tensor x, int dim, boolean descending) {
        int d = Shape.dim(dim, x.dim(), "sort");
        return gathered(x, d, argsort(x, d, descending));
    }

    /**
     * The k largest (or smallest) values along dim, in order, with their indices; among equal values the first ones
     * (NaN counts as the largest).
     */
    public static Tensor.Sorted topk(Tensor x, int k, int dim, boolean largest) {
        int d = Shape.dim(dim, x.dim(), "topk");
        int n = x.dim() == 0 ? 1 : x.shape()[d];
        if (x.dim() == 0 && k != 1) throw new IllegalArgumentException("topk: k = " + k + " of a scalar (only k = 1)");
        if (k < 0 || k > n) throw new IllegalArgumentException("topk: k = " + k + " out of range for dimension " + d + " of size " + n);
        return gathered(x, d, get(x.device()).argsort(x, d, largest, k));
    }

    private static Tensor.Sorted gathered(Tensor x, int d, Tensor index) {
        if (x.dim() == 0) return new Tensor.Sorted(Indexing.gather(x.reshape(1), 0, index.reshape(1)).reshape(), index);
        return new Tensor.Sorted(Indexing.gather(x, d, index), index);
    }
}
