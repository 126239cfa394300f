package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * The CUDA kernels of the Sorting family (kernels/sorting.cu): the sorted dimension brought innermost, then a bitonic
 * sort of (key, index) pairs per row: in shared memory for rows of up to 2048, by tiles and merge steps beyond; the
 * first k of a longer row (k up to 2048) by a radix select and one block's sort of those k.
 */
final class SortingCuda extends CudaFamily {
    /** Elements a block sorts in shared memory (sorting.cu's SORT_TILE). */
    private static final int TILE = 2048;
    private final Kernels.Table small, select, load, tiles, merge;
    private final Kernels.Single store;

    SortingCuda(CudaBackend backend) {
        super(backend);
        small = new Kernels.Table(dev, "sorting.cu", "argsort_small");
        select = new Kernels.Table(dev, "sorting.cu", "argsort_select");
        load = new Kernels.Table(dev, "sorting.cu", "argsort_load");
        tiles = new Kernels.Table(dev, "sorting.cu", "argsort_tiles");
        merge = new Kernels.Table(dev, "sorting.cu", "argsort_merge");
        store = new Kernels.Single(dev, "sorting.cu", "argsort_store");
    }

    private static int pow2(long n) { return (int) Math.max(1, Long.highestOneBit(n - 1) << 1); }

    Tensor argsort(Tensor x, int dim, boolean descending, int k) {
        int r = x.dim();
        int[] shape = x.shape(), perm = r == 0 ? new int[0] : Shape.moveToEnd(r, dim), permuted = new int[r];
        for (int d = 0; d < r; d++) permuted[d] = shape[perm[d]];
        if (r > 0) permuted[r - 1] = k;
        int n = r == 0 ? 1 : shape[dim];
        if (x.numel() == 0 || k == 0) {
            int[] empty = shape.clone();
            if (r > 0) empty[dim] = k;
            return newTensor(empty, DType.INT64);
        }
        Tensor out = newTensor(permuted, DType.INT64);
        if (n > 1 << 30) throw new IllegalArgumentException("argsort on CUDA: a dimension of " + n + " elements (at most 2^30)");
        long rows = x.numel() / n;
        int p = pow2(n), desc = descending ? 1 : 0;
        DType t = x.dtype();
        Tensor xp = r == 0 ? x.detach() : x.detach().permute(perm), xc = contiguous(xp);
        if (p <= TILE) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(rows).i32(n).i32(p).i32(desc).i32(k)
                    .go(dev, small.get(t), Math.min(rows, dev.multiprocessorCount() * 16L), Math.max(32, p / 2));
        } else if (k <= TILE) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(rows).i32(n).i32(k).i32(desc)
                    .go(dev, select.get(t), Math.min(rows, dev.multiprocessorCount() * 16L), 1024);
        } else {
            // a double key (int64 for int64) and an int index for each of the rows' P places
            int c = Math.toIntExact(rows * p);
            Tensor keys = newTensor(new int[]{c}, t == DType.INT64 ? DType.INT64 : DType.FLOAT64), idx = newTensor(new int[]{c}, DType.INT32);
            long kp = ptr(keys), ip = ptr(idx), tileCount = rows * p / TILE;
            Launch.args().ptr(kp).ptr(ip).ptr(ptr(xc)).i64(rows).i32(n).i32(p).go(dev, load.get(t), grid(rows * p), BLOCK);
            sortTiles(t, kp, ip, tileCount, n, p, desc, 0);
            for (int size = 2 * TILE; size <= p; size <<= 1) {
                for (int j = size / 2; j >= TILE; j >>= 1) {
                    Launch.args().ptr(kp).ptr(ip).i64(rows).i32(n).i32(p).i32(desc).i32(size).i32(j).go(dev, merge.get(t), grid(rows * p / 2), BLOCK);
                }
                sortTiles(t, kp, ip, tileCount, n, p, desc, size);
            }
            Launch.args().ptr(ptr(out)).ptr(ip).i64(rows).i32(k).i32(p).go(dev, store.get(), grid(rows * k), BLOCK);
            keys.storage().release();
            idx.storage().release();
        }
        drop(xc, xp);
        if (r == 0 || dim == r - 1) return out;
        Tensor back = contiguous(out.permute(Shape.inversePermutation(perm)));
        out.storage().release();
        return back;
    }

    /** argsort_tiles over tileCount tiles: size 0 sorts each, else finishes that merge size. */
    private void sortTiles(DType t, long keys, long idx, long tileCount, int n, int p, int desc, int size) {
        Launch.args().ptr(keys).ptr(idx).i64(tileCount).i32(n).i32(p).i32(desc).i32(size)
                .go(dev, tiles.get(t), Math.min(tileCount, dev.multiprocessorCount() * 16L), 1024);
    }
}
