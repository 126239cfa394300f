package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * Softmax and log-softmax along a dimension on CUDA (softmax.cu): the dimension is moved last; rows of up to 1,024
 * elements take a warp each, up to 8,192 a block of 256 (both with the row in registers, read once), longer ones a
 * block each in two passes, or a block per segment when they are too few to fill the GPU; rows a whole number of
 * 16-byte vectors long (and aligned) move 16 bytes a thread.
 */
final class SoftmaxCuda extends CudaFamily {
    private static final int WARP_ROWS = 1024, WARP_BLOCK = 128, HELD_ROWS = 8192, HELD_BLOCK = 256, SEGMENT = 8192; // SOFTMAX_SEGMENT
    // [vector ? 1 : 0][i]: a warp a row of up to 32 * 2^i elements; vectors from 2^i = 8 (below, entries stay null)
    private final Kernels.Table[][] warpFwd = new Kernels.Table[2][6], warpBwd = new Kernels.Table[2][6];
    private final Kernels.Table[] heldFwd, heldBwd, blockFwd, blockBwd;   // [vector ? 1 : 0]: a block a row
    private final Kernels.Table[] partsFwd, splitFwd, partsBwd, splitBwd;   // [vector ? 1 : 0]: a block a segment

    SoftmaxCuda(CudaBackend backend) {
        super(backend);
        heldFwd = tables("softmax_held_fwd");
        heldBwd = tables("softmax_held_bwd");
        blockFwd = tables("softmax_fwd");
        blockBwd = tables("softmax_bwd");
        partsFwd = tables("softmax_parts_fwd");
        splitFwd = tables("softmax_split_fwd");
        partsBwd = tables("softmax_parts_bwd");
        splitBwd = tables("softmax_split_bwd");
        for (int i = 0; i < 6; i++) {
            warpFwd[0][i] = new Kernels.Table(dev, "softmax.cu", "softmax_warp_fwd_" + (1 << i));
            warpBwd[0][i] = new Kernels.Table(dev, "softmax.cu", "softmax_warp_bwd_" + (1 << i));
            if (i >= 3) {
                warpFwd[1][i] = new Kernels.Table(dev, "softmax.cu", "softmax_warp_fwd_" + (1 << i) + "v");
                warpBwd[1][i] = new Kernels.Table(dev, "softmax.cu", "softmax_warp_bwd_" + (1 << i) + "v");
            }
        }
    }

    /** prefix and prefix_v (16-byte vectors). */
    private Kernels.Table[] tables(String prefix) {
        return new Kernels.Table[]{new Kernels.Table(dev, "softmax.cu", prefix), new Kernels.Table(dev, "softmax.cu", prefix + "_v")};
    }

    /** The kernel for rows of n: a warp's (vectors from 8 elements a lane) or a block's, 16-byte vectors where allowed. */
    private Kernels.Table pick(Kernels.Table[][] warp, Kernels.Table[] held, Kernels.Table[] block, long n, Tensor... xs) {
        boolean vec = rowsOfVectors(n, xs);
        if (n > HELD_ROWS) return block[vec ? 1 : 0];
        if (n > WARP_ROWS) return held[vec ? 1 : 0];
        int i = warpKernel(n);
        return warp[vec && i >= 3 ? 1 : 0][i];
    }

    /** Whether rows of n elements of each x are whole 16-byte vectors, each x 16-byte aligned. */
    private boolean rowsOfVectors(long n, Tensor... xs) {
        if (n * xs[0].dtype().byteSize() % 16 != 0) return false;
        for (Tensor x : xs) if (ptr(x) % 16 != 0) return false;
        return true;
    }

    /** Rows past HELD_ROWS too few to give every SM two blocks: cut into segments, a block each (two launches). */
    private boolean split(long rows, long n) { return n > HELD_ROWS && rows < 2L * dev.multiprocessorCount(); }

    /** Which warp kernel holds a row of n (at most 1,024) elements: E = 2^i elements a lane, the fewest that cover n. */
    private static int warpKernel(long n) {
        int i = 0;
        while (32L << i < n) i++;
        return i;
    }

    /** Launches fn with the pointers in a, then (rows, n, log), as pick chose: a warp a row, or a block a row. */
    private void launch(Kernels.Fn fn, Launch a, long rows, long n, boolean log) {
        if (n <= WARP_ROWS) {
            long perBlock = WARP_BLOCK / 32;   // at most 16 blocks an SM: the kernels stride over the rest
            a.i64(rows).i32((int) n).i32(log ? 1 : 0).go(dev, fn, (int) Math.min((rows + perBlock - 1) / perBlock, dev.multiprocessorCount() * 16L),
                    1, 1, WARP_BLOCK, 0);
        } else if (n <= HELD_ROWS) {
            a.i64(rows).i32((int) n).i32(log ? 1 : 0).go(dev, fn, (int) Math.min(rows, dev.multiprocessorCount() * 16L), 1, 1, HELD_BLOCK, 0);
        } else {
            a.i64(rows).i64(n).i32(log ? 1 : 0).go(dev, fn, Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(n));
        }
    }

    Tensor softmax(Tensor x, int dim, boolean log) {
        if (x.dim() == 0) return softmax(x.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(x.dim(), dim);
        Tensor xp = x.detach().permute(perm);
        Tensor xc = contiguous(xp);
        long n = x.shape()[dim], rows = x.numel() / Math.max(n, 1);
        Tensor y = newTensor(xp.shape(), x.dtype());
        if (rows > 0 && n > 0 && split(rows, n)) {
            int v = rowsOfVectors(n, y, xc) ? 1 : 0, segs = (int) ((n + SEGMENT - 1) / SEGMENT);
            Tensor pm = newTensor(new int[]{(int) rows * segs}, x.dtype().accumulation()), ps = newTensor(pm.shape(), pm.dtype());
            Launch.args().ptr(ptr(pm)).ptr(ptr(ps)).ptr(ptr(xc)).i64(n).go(dev, partsFwd[v].get(x.dtype()), segs, (int) rows, 1, HELD_BLOCK, 0);
            Launch.args().ptr(ptr(y)).ptr(ptr(xc)).ptr(ptr(pm)).ptr(ptr(ps)).i64(n).i32(log ? 1 : 0)
                    .go(dev, splitFwd[v].get(x.dtype()), segs, (int) rows, 1, HELD_BLOCK, 0);
            pm.storage().release();
            ps.storage().release();
        } else if (rows > 0 && n > 0) {
            launch(pick(warpFwd, heldFwd, blockFwd, n, y, xc).get(x.dtype()), Launch.args().ptr(ptr(y)).ptr(ptr(xc)), rows, n, log);
        }
        drop(xc, xp);
        return permutedBack(y, perm);
    }

    /** y laid out in permuted order, as a contiguous tensor in the original order. */
    private Tensor permutedBack(Tensor y, int[] perm) {
        Tensor v = y.permute(Shape.inversePermutation(perm));
        if (v.isContiguous()) return new Tensor(y.storage(), v.shape());
        Tensor out = contiguous(v);
        y.storage().release();
        return out;
    }

    Tensor softmaxBackward(Tensor gradOut, Tensor y, int dim, boolean log) {
        if (y.dim() == 0) return softmaxBackward(gradOut.detach().reshape(1), y.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(y.dim(), dim);
        Tensor gp = gradOut.detach().permute(perm), yp = y.detach().permute(perm);
        Tensor gc = contiguous(gp), yc = contiguous(yp);
        long n = y.shape()[dim], rows = y.numel() / Math.max(n, 1);
        Tensor gx = newTensor(yp.shape(), y.dtype());
        if (rows > 0 && n > 0 && split(rows, n)) {
            int v = rowsOfVectors(n, gx, gc, yc) ? 1 : 0, segs = (int) ((n + SEGMENT - 1) / SEGMENT);
            Tensor ps = newTensor(new int[]{(int) rows * segs}, y.dtype().accumulation());
            Launch.args().ptr(ptr(ps)).ptr(ptr(gc)).ptr(ptr(yc)).i64(n).i32(log ? 1 : 0).go(dev, partsBwd[v].get(y.dtype()), segs, (int) rows, 1, HELD_BLOCK, 0);
            Launch.args().ptr(ptr(gx)).ptr(ptr(gc)).ptr(ptr(yc)).ptr(ptr(ps)).i64(n).i32(log ? 1 : 0)
                    .go(dev, splitBwd[v].get(y.dtype()), segs, (int) rows, 1, HELD_BLOCK, 0);
            ps.storage().release();
        } else if (rows > 0 && n > 0) {
            launch(pick(warpBwd, heldBwd, blockBwd, n, gx, gc, yc).get(y.dtype()), Launch.args().ptr(ptr(gx)).ptr(ptr(gc)).ptr(ptr(yc)), rows, n, log);
        }
        drop(gc, gp);
        drop(yc, yp);
        return permutedBack(gx, perm);
    }
}
