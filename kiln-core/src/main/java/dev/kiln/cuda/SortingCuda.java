package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;

/**
 * The CUDA kernels of the Sorting family (kernels/sorting.cu): the sorted dimension brought innermost, then a bitonic
 * sort of (key, index) pairs per row: in shared memory for rows of up to 2048; by tiles and merge steps beyond; and for
 * the first k of a long row (k up to 1024), by keeping each sorted tile's first k until one block holds them all.
 */
final class SortingCuda extends CudaFamily {
    /** Elements a block sorts in shared memory (sorting.cu's SORT_TILE). */
    private static final int TILE = 2048;
    private final Kernels.Table small, load, tiles, merge, keep, pairs;
    private final Kernels.Single store;

    SortingCuda(CudaBackend backend) {
        super(backend);
        small = new Kernels.Table(dev, "sorting.cu", "argsort_small");
        load = new Kernels.Table(dev, "sorting.cu", "argsort_load");
        tiles = new Kernels.Table(dev, "sorting.cu", "argsort_tiles");
        merge = new Kernels.Table(dev, "sorting.cu", "argsort_merge");
        keep = new Kernels.Table(dev, "sorting.cu", "argsort_keep");
        pairs = new Kernels.Table(dev, "sorting.cu", "argsort_pairs");
        store = new Kernels.Single(dev, "sorting.cu", "argsort_store");
    }

    private static int pow2(long n) { return (int) Math.max(1, Long.highestOneBit(n - 1) << 1); }

    Tensor argsort(Tensor x, int dim, boolean descending, int k) {
        int r = x.dim();
        int[] shape = x.shape(), perm = new int[r], permuted = new int[r];
        for (int d = 0, j = 0; d < r; d++) if (d != dim) perm[j++] = d;
        if (r > 0) perm[r - 1] = dim;
        for (int d = 0; d < r; d++) permuted[d] = shape[perm[d]];
        if (r > 0) permuted[r - 1] = k;
        Tensor out = newTensor(permuted, DType.INT64);
        int n = r == 0 ? 1 : shape[dim];
        if (out.numel() == 0) return out;
        if (n > 1 << 30) throw new IllegalArgumentException("argsort on CUDA: a dimension of " + n + " elements (at most 2^30)");
        long rows = x.numel() / n;
        int p = pow2(n), desc = descending ? 1 : 0;
        DType t = x.dtype();
        Tensor xp = r == 0 ? x.detach() : x.detach().permute(perm), xc = contiguous(xp);
        if (p <= TILE) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(rows).i32(n).i32(p).i32(desc).i32(k)
                    .go(dev, small.get(t), Math.min(rows, dev.multiprocessorCount() * 16L), Math.max(32, p / 2));
        } else {
            Tensor[] s = scratch(t, rows * p);
            Launch.args().ptr(ptr(s[0])).ptr(ptr(s[1])).ptr(ptr(xc)).i64(rows).i32(n).i32(p).go(dev, load.get(t), grid(rows * p), BLOCK);
            if (k <= TILE / 2) {
                // each tile's first k are the candidates, until one block holds a row's
                while (true) {
                    sortTiles(t, s, rows * p / TILE, n, p, desc, 0, true);
                    int p2 = pow2((long) (p / TILE) * k);
                    Tensor[] s2 = scratch(t, rows * p2);
                    Launch.args().ptr(ptr(s2[0])).ptr(ptr(s2[1])).ptr(ptr(s[0])).ptr(ptr(s[1])).i64(rows).i32(p).i32(k).i32(p2)
                            .go(dev, keep.get(t), grid(rows * p2), BLOCK);
                    release(s);
                    s = s2;
                    p = p2;
                    if (p <= TILE) break;
                }
                Launch.args().ptr(ptr(out)).ptr(ptr(s[0])).ptr(ptr(s[1])).i64(rows).i32(n).i32(p).i32(desc).i32(k)
                        .go(dev, pairs.get(t), Math.min(rows, dev.multiprocessorCount() * 16L), Math.max(32, p / 2));
            } else {
                sortTiles(t, s, rows * p / TILE, n, p, desc, 0, false);
                for (int size = 2 * TILE; size <= p; size <<= 1) {
                    for (int j = size / 2; j >= TILE; j >>= 1) {
                        Launch.args().ptr(ptr(s[0])).ptr(ptr(s[1])).i64(rows).i32(n).i32(p).i32(desc).i32(size).i32(j)
                                .go(dev, merge.get(t), grid(rows * p / 2), BLOCK);
                    }
                    sortTiles(t, s, rows * p / TILE, n, p, desc, size, false);
                }
                Launch.args().ptr(ptr(out)).ptr(ptr(s[1])).i64(rows).i32(k).i32(p).go(dev, store.get(), grid(rows * k), BLOCK);
            }
            release(s);
        }
        drop(xc, xp);
        if (r == 0 || dim == r - 1) return out;
        int[] inverse = new int[r];
        for (int d = 0; d < r; d++) inverse[perm[d]] = d;
        Tensor back = contiguous(out.permute(inverse));
        out.storage().release();
        return back;
    }

    /** A double key (int64 for int64) and an int index for each of count places. */
    private Tensor[] scratch(DType t, long count) {
        int c = Math.toIntExact(count);
        return new Tensor[]{newTensor(new int[]{c}, t == DType.INT64 ? DType.INT64 : DType.FLOAT64), newTensor(new int[]{c}, DType.INT32)};
    }

    private static void release(Tensor[] s) {
        for (Tensor x : s) x.storage().release();
    }

    /** argsort_tiles over tileCount tiles: size 0 sorts each, else finishes that merge size; each: every tile in the order asked for. */
    private void sortTiles(DType t, Tensor[] s, long tileCount, int n, int p, int desc, int size, boolean each) {
        Launch.args().ptr(ptr(s[0])).ptr(ptr(s[1])).i64(tileCount).i32(n).i32(p).i32(desc).i32(size).i32(each ? 1 : 0)
                .go(dev, tiles.get(t), Math.min(tileCount, dev.multiprocessorCount() * 16L), 1024);
    }
}
