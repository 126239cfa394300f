package dev.kiln.cuda;

import dev.kiln.Tensor;

/**
 * The strided geometry a kernel walks, as the {@code Geo} struct of common.cuh: a shape and the strides of up to
 * four operands in it. {@link #of} merges dimensions that are laid out alike in every operand (as the CPU's Rows
 * does) and drops size-1 dimensions, so contiguous operands become rank 0, which the kernels read as "offset =
 * linear index".
 */
final class Geo {
    static final int MAX_RANK = 8;

    int rank;
    final int[] shape = new int[MAX_RANK];
    final int[][] strides = new int[4][MAX_RANK];

    /** Merged geometry of same-shape operands (offsets are folded into their pointers by the caller). */
    static Geo of(int[] shape, Tensor... ops) {
        int k = ops.length;
        int[][] st = new int[k][];
        for (int i = 0; i < k; i++) st[i] = ops[i].strides();
        Geo g = new Geo();
        dev.kiln.Shape.Merged merged = dev.kiln.Shape.merge(shape, st);
        int m = merged.rank();
        int[] ms = merged.shape();
        int[][] mst = merged.strides();
        boolean contiguous = m == 0;
        if (m == 1) {
            contiguous = true;
            for (int i = 0; i < k; i++) contiguous &= mst[i][0] == 1;
        }
        if (contiguous) {
            g.rank = 0;
            return g;
        }
        if (m > MAX_RANK) {
            throw new UnsupportedOperationException("cuda: strided operands of shape " + dev.kiln.Shape.str(shape)
                    + " need " + m + " dimensions after merging; the kernels take at most " + MAX_RANK + " (make one contiguous first)");
        }
        g.rank = m;
        System.arraycopy(ms, 0, g.shape, 0, m);
        for (int i = 0; i < k; i++) System.arraycopy(mst[i], 0, g.strides[i], 0, m);
        return g;
    }

    /** Unmerged geometry (the index kernels need each dimension): shape and each operand's strides as given. */
    static Geo raw(int[] shape, int[]... strides) {
        if (shape.length > MAX_RANK) {
            throw new UnsupportedOperationException("cuda: indexing kernels take tensors of rank at most " + MAX_RANK + ", got " + shape.length);
        }
        Geo g = new Geo();
        g.rank = shape.length;
        System.arraycopy(shape, 0, g.shape, 0, shape.length);
        for (int i = 0; i < strides.length; i++) System.arraycopy(strides[i], 0, g.strides[i], 0, shape.length);
        return g;
    }
}
