package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * The CUDA kernels of the Sorting family (kernels/sorting.cu): the sorted dimension brought innermost, then short rows
 * of a small array by a bitonic network per row in shared memory, the first k (up to 2048) of longer rows by a radix
 * select, and everything else by one radix sort of the whole array (the key's 8-bit digits, then the row number's).
 */
final class SortingCuda extends CudaFamily {
    /** Elements a block sorts in shared memory (sorting.cu's SORT_TILE). */
    private static final int TILE = 2048;
    /** Elements a radix pass's block takes (sorting.cu's RADIX_TILE) and threads it runs. */
    private static final int RADIX_TILE = 2048, RADIX_THREADS = 256;
    /** Arrays of short rows up to this many elements (padded) sort by the bitonic network, larger ones by radix passes. */
    private static final long SMALL_MAX = Long.getLong("kiln.sort.small.max", 1 << 20);
    private final Kernels.Table small, select, keys;
    private final Kernels.Single hist32, hist64, scatter32, scatter64, scan, store;

    SortingCuda(CudaBackend backend) {
        super(backend);
        small = new Kernels.Table(dev, "sorting.cu", "argsort_small");
        select = new Kernels.Table(dev, "sorting.cu", "argsort_select");
        keys = new Kernels.Table(dev, "sorting.cu", "argsort_keys");
        hist32 = new Kernels.Single(dev, "sorting.cu", "radix_hist_k32");
        hist64 = new Kernels.Single(dev, "sorting.cu", "radix_hist_k64");
        scatter32 = new Kernels.Single(dev, "sorting.cu", "radix_scatter_k32");
        scatter64 = new Kernels.Single(dev, "sorting.cu", "radix_scatter_k64");
        scan = new Kernels.Single(dev, "sorting.cu", "radix_scan");
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
        // positions in the whole array are 32-bit unsigned numbers in the radix passes
        if (x.numel() > Integer.MAX_VALUE) throw new IllegalArgumentException("argsort on CUDA: " + x.numel() + " elements (at most 2^31 - 1)");
        Tensor out = newTensor(permuted, DType.INT64);
        long rows = x.numel() / n;
        int p = pow2(n), desc = descending ? 1 : 0;
        DType t = x.dtype();
        Tensor xp = r == 0 ? x.detach() : x.detach().permute(perm), xc = contiguous(xp);
        if (p <= TILE && rows * p <= SMALL_MAX) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(rows).i32(n).i32(p).i32(desc).i32(k)
                    .go(dev, small.get(t), Math.min(rows, dev.multiprocessorCount() * 16L), Math.max(32, p / 2));
        } else if (k <= TILE && n > TILE) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(rows).i32(n).i32(k).i32(desc)
                    .go(dev, select.get(t), Math.min(rows, dev.multiprocessorCount() * 16L), 1024);
        } else {
            radixSort(out, xc, rows, n, k, desc);
        }
        drop(xc, xp);
        if (r == 0 || dim == r - 1) return out;
        Tensor back = contiguous(out.permute(Shape.inversePermutation(perm)));
        out.storage().release();
        return back;
    }

    /**
     * Sorts the contiguous (rows, n) array x whole: one pass per 8 bits of the key, least significant first, then one
     * per 8 bits of the row number, each pass stable; out gets each row's first k indices.
     */
    private void radixSort(Tensor out, Tensor x, long rows, int n, int k, int desc) {
        DType t = x.dtype();
        boolean wide = t.byteSize() > 4;
        int count = (int) x.numel(), tiles = (count + RADIX_TILE - 1) / RADIX_TILE;
        DType kt = wide ? DType.INT64 : DType.INT32;
        Tensor[] key = {newTensor(new int[]{count}, kt), newTensor(new int[]{count}, kt)};
        Tensor[] pos = {newTensor(new int[]{count}, DType.INT32), newTensor(new int[]{count}, DType.INT32)};
        Tensor hist = newTensor(new int[]{256 * tiles}, DType.INT32), total = newTensor(new int[]{256}, DType.INT32);
        Launch.args().ptr(ptr(key[0])).ptr(ptr(x)).i64(count).i32(desc).go(dev, keys.get(t), grid(count), BLOCK);
        int cur = 0;
        for (int shift = 0; shift < 8 * t.byteSize(); shift += 8, cur ^= 1) {
            pass(wide, ptr(key[cur]), shift == 0 ? 0 : ptr(pos[cur]), ptr(key[cur ^ 1]), ptr(pos[cur ^ 1]), count, n, shift, hist, total, tiles);
        }
        int rowBits = 64 - Long.numberOfLeadingZeros(rows - 1);
        for (int shift = 0; shift < rowBits; shift += 8, cur ^= 1) {
            pass(false, 0, ptr(pos[cur]), 0, ptr(pos[cur ^ 1]), count, n, shift, hist, total, tiles);
        }
        Launch.args().ptr(ptr(out)).ptr(ptr(pos[cur])).i64(rows).i32(n).i32(k).go(dev, store.get(), grid(rows * k), BLOCK);
        for (Tensor temp : new Tensor[]{key[0], key[1], pos[0], pos[1], hist, total}) temp.storage().release();
    }

    /** One stable pass on the digit at shift: of the keys, or (keys 0) of each position's row. */
    private void pass(boolean wide, long key, long pos, long keyOut, long posOut, int count, int n, int shift, Tensor hist, Tensor total, int tiles) {
        Launch.args().ptr(key).ptr(pos).i64(count).i32(n).i32(shift).ptr(ptr(hist)).i32(tiles)
                .go(dev, (wide ? hist64 : hist32).get(), tiles, RADIX_THREADS);
        Launch.args().ptr(ptr(hist)).i32(tiles).ptr(ptr(total)).go(dev, scan.get(), 256, RADIX_THREADS);
        Launch.args().ptr(key).ptr(pos).ptr(keyOut).ptr(posOut).i64(count).i32(n).i32(shift).ptr(ptr(hist)).ptr(ptr(total)).i32(tiles)
                .go(dev, (wide ? scatter64 : scatter32).get(), tiles, RADIX_THREADS);
    }
}
