package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * The CUDA kernels of the Sorting family (kernels/sorting.cu): the sorted dimension brought innermost, then rows of up
 * to 2048 by a bitonic network per row in shared memory, the first k (up to 2048) of longer rows by a radix
 * select, and everything else by one radix sort of the whole array (the key's 8-bit digits, then the row number's).
 */
final class SortingCuda extends CudaFamily {
    /** Elements a block sorts in shared memory (sorting.cu's SORT_TILE). */
    private static final int TILE = 2048;
    /** Elements a radix pass's block takes (sorting.cu's RADIX_TILE) and threads it runs. */
    private static final int RADIX_TILE = 2048, RADIX_THREADS = 256;
    private final Kernels.Table small, select, keys;
    private final Kernels.Single counts32, counts64, starts, first32, first64, key32, key64, row, store;

    SortingCuda(CudaBackend backend) {
        super(backend);
        small = new Kernels.Table(dev, "sorting.cu", "argsort_small");
        select = new Kernels.Table(dev, "sorting.cu", "argsort_select");
        keys = new Kernels.Table(dev, "sorting.cu", "argsort_keys");
        counts32 = new Kernels.Single(dev, "sorting.cu", "radix_counts_k32");
        counts64 = new Kernels.Single(dev, "sorting.cu", "radix_counts_k64");
        starts = new Kernels.Single(dev, "sorting.cu", "radix_starts");
        first32 = new Kernels.Single(dev, "sorting.cu", "radix_first_k32");
        first64 = new Kernels.Single(dev, "sorting.cu", "radix_first_k64");
        key32 = new Kernels.Single(dev, "sorting.cu", "radix_key_k32");
        key64 = new Kernels.Single(dev, "sorting.cu", "radix_key_k64");
        row = new Kernels.Single(dev, "sorting.cu", "radix_row");
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
        // rows that fit a block: the network beat the radix passes at every size measured (8,192 x 1,024: 0.61 against
        // 1.10 ms on an H200; bench/results/2026-12-02-h200-session22.md)
        if (p <= TILE) {
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
        int keyPasses = t.byteSize(), rowPasses = (64 - Long.numberOfLeadingZeros(rows - 1) + 7) / 8, passes = keyPasses + rowPasses;
        DType kt = wide ? DType.INT64 : DType.INT32;
        Tensor[] key = {newTensor(new int[]{count}, kt), newTensor(new int[]{count}, kt)};
        Tensor[] pos = {newTensor(new int[]{count}, DType.INT32), newTensor(new int[]{count}, DType.INT32)};
        // each pass's digit counts, then its tile counter; each tile's look-back status
        Tensor meta = newTensor(new int[]{passes * 257}, DType.INT32), status = newTensor(new int[]{tiles * 256}, DType.INT64);
        long counts = ptr(meta), tileCounters = counts + 4L * passes * 256;
        dev.zero(counts, 4L * passes * 257);
        dev.zero(ptr(status), 8L * tiles * 256);
        Launch.args().ptr(ptr(key[0])).ptr(ptr(x)).i64(count).i32(desc).go(dev, keys.get(t), grid(count), BLOCK);
        Launch.args().ptr(ptr(key[0])).i32(count).i32(n).i32(keyPasses).i32(rowPasses).ptr(counts)
                .go(dev, (wide ? counts64 : counts32).get(), Math.min(tiles, dev.multiprocessorCount() * 4L), RADIX_THREADS);
        Launch.args().ptr(counts).go(dev, starts.get(), passes, 256);
        int cur = 0;
        for (int i = 0; i < passes; i++, cur ^= 1) {
            long start = counts + 4L * 256 * i, tileCounter = tileCounters + 4L * i, st = ptr(status);
            if (i == 0) {
                Launch.args().ptr(ptr(key[0])).ptr(ptr(key[1])).ptr(ptr(pos[1])).i32(count).i32(0).i32(0).ptr(start).ptr(st).ptr(tileCounter)
                        .go(dev, (wide ? first64 : first32).get(), tiles, RADIX_THREADS);
            } else if (i < keyPasses) {
                Launch.args().ptr(ptr(key[cur])).ptr(ptr(pos[cur])).ptr(ptr(key[cur ^ 1])).ptr(ptr(pos[cur ^ 1])).i32(count).i32(8 * i).i32(i)
                        .ptr(start).ptr(st).ptr(tileCounter).go(dev, (wide ? key64 : key32).get(), tiles, RADIX_THREADS);
            } else {
                Launch.args().ptr(ptr(pos[cur])).ptr(ptr(pos[cur ^ 1])).i32(count).i32(n).i32(8 * (i - keyPasses)).i32(i)
                        .ptr(start).ptr(st).ptr(tileCounter).go(dev, row.get(), tiles, RADIX_THREADS);
            }
        }
        Launch.args().ptr(ptr(out)).ptr(ptr(pos[cur])).i64(rows).i32(n).i32(k).go(dev, store.get(), grid(rows * k), BLOCK);
        for (Tensor temp : new Tensor[]{key[0], key[1], pos[0], pos[1], meta, status}) temp.storage().release();
    }
}
