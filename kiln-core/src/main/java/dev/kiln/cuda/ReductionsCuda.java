package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.ReduceOp;

/** Reductions over dimensions and arg-max/min on CUDA (reductions.cu): row kernels after a permute, column kernels for leading dimensions. */
final class ReductionsCuda extends CudaFamily {
    private final Kernels.Table reduceRows, reduceRowsWarp, reduceCols, argReduceRows;
    private final Kernels.Table reduceRowsPartial, reduceRowsFinish, reduceColsPartial, reduceColsPartialV, reduceColsFinish;
    private final Kernels.Table cumsumLines, cumsumRows, cumsumOffsets;

    ReductionsCuda(CudaBackend backend) {
        super(backend);
        reduceRows = new Kernels.Table(dev, "reductions.cu", "reduce_rows");
        reduceRowsWarp = new Kernels.Table(dev, "reductions.cu", "reduce_rows_warp");
        reduceCols = new Kernels.Table(dev, "reductions.cu", "reduce_cols");
        argReduceRows = new Kernels.Table(dev, "reductions.cu", "argreduce_rows");
        reduceRowsPartial = new Kernels.Table(dev, "reductions.cu", "reduce_rows_partial");
        reduceRowsFinish = new Kernels.Table(dev, "reductions.cu", "reduce_rows_finish");
        reduceColsPartial = new Kernels.Table(dev, "reductions.cu", "reduce_cols_partial");
        reduceColsPartialV = new Kernels.Table(dev, "reductions.cu", "reduce_cols_partial_v");
        reduceColsFinish = new Kernels.Table(dev, "reductions.cu", "reduce_cols_finish");
        cumsumLines = new Kernels.Table(dev, "reductions.cu", "cumsum_lines");
        cumsumRows = new Kernels.Table(dev, "reductions.cu", "cumsum_rows");
        cumsumOffsets = new Kernels.Table(dev, "reductions.cu", "cumsum_offsets");
    }

    private static int[] reducedShape(int[] shape, boolean[] red, boolean keepdim) {
        int[] o = new int[shape.length];
        int k = 0;
        for (int d = 0; d < shape.length; d++) {
            if (!red[d]) o[k++] = shape[d];
            else if (keepdim) o[k++] = 1;
        }
        return java.util.Arrays.copyOf(o, k);
    }

    Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim) {
        int r = x.dim();
        int[] shape = x.shape();
        boolean[] red = new boolean[r];
        for (int d : dims) red[d] = true;
        Tensor out = newTensor(reducedShape(shape, red, keepdim), x.dtype());
        if (x.numel() == 0) {
            backend.fill(out, 0);
            return out;
        }
        long inner = 1;
        for (int d : dims) inner *= shape[d];
        long outer = x.numel() / inner;
        boolean leading = true;
        for (int d = 0; d < r; d++) if (red[d] != (d < dims.length)) leading = false;
        if (leading && dims.length > 0 && x.isContiguous() && outer >= 128) {
            // reducing the leading dimensions of a contiguous array: the column kernels, no transpose
            colReduce(op, ptr(out), x.dtype(), ptr(x), x.dtype(), inner, outer);
            return out;
        }
        int[] perm = new int[r];
        int k = 0;
        for (int d = 0; d < r; d++) if (!red[d]) perm[k++] = d;
        for (int d = 0; d < r; d++) if (red[d]) perm[k++] = d;
        Tensor xp = x.detach().permute(perm);
        Tensor xc = contiguous(xp);
        rowReduce(op, ptr(out), xc, outer, inner);
        drop(xc, xp);
        return out;
    }

    /**
     * out[c] = reduce over r < n of x[r * cols + c], out in outType: t, or any float type where {@link #vectorised}
     * holds (a 16-bit gradient's float32 sums). 16 bytes a thread where rows are whole 16-byte vectors; otherwise a
     * thread a column, in two passes when the columns alone cannot fill the GPU.
     */
    void colReduce(ReduceOp op, long out, DType outType, long x, DType t, long n, long cols) {
        long threadsWanted = dev.multiprocessorCount() * 2048L;
        if (vectorised(t, x, cols)) {
            int v = 16 / t.byteSize();
            long vectors = cols / v;
            int width = (int) Math.min(32, Long.highestOneBit(Math.max(1, 2 * vectors - 1)));   // the power of 2 at or above vectors, to 32
            while (width > 8 && vectors % width != 0) width /= 2;   // 48 vectors (384 bf16 columns): 3 full tiles of 16, not 2 of 32
            int tw = width, lanes = BLOCK / tw;
            long tiles = (vectors + tw - 1) / tw;
            // one wave (the kernel's launch bounds fit 4 blocks an SM), each lane 8 rows or more
            long chunks = Math.min(65535, Math.max(1, Math.min((dev.multiprocessorCount() * 4L + tiles - 1) / tiles, n / (lanes * 8L))));
            twoPass(op, out, outType, n, cols, chunks,
                    (partial, chunk, count) -> Launch.args().i32(op.ordinal()).ptr(partial).ptr(x).i64(n).i64(cols).i64(chunk).i32(tw)
                            .go(dev, reduceColsPartialV.get(t), (int) tiles, (int) count, 1, BLOCK, 0));
            return;
        }
        if (outType != t) throw new IllegalArgumentException("colReduce: " + t + " sums into " + outType + " need rows of whole 16-byte vectors");
        if (cols >= threadsWanted / 4 || n < 64) {
            Launch.args().i32(op.ordinal()).ptr(out).ptr(x).i64(n).i64(cols).go(dev, reduceCols.get(t), grid(cols), BLOCK);
            return;
        }
        long chunks = Math.min(Math.min((n + 31) / 32, 65535), Math.max(1, threadsWanted / cols));
        twoPass(op, out, outType, n, cols, chunks,
                (partial, chunk, count) -> Launch.args().i32(op.ordinal()).ptr(partial).ptr(x).i64(n).i64(cols).i64(chunk)
                        .go(dev, reduceColsPartial.get(t), (int) ((cols + BLOCK - 1) / BLOCK), (int) count, 1, BLOCK, 0));
    }

    /** Whether colReduce moves x's rows 16 bytes a thread: a 32- or 16-bit float, aligned, cols whole vectors. */
    static boolean vectorised(DType t, long x, long cols) {
        return (t == DType.FLOAT32 || t == DType.BFLOAT16 || t == DType.FLOAT16) && x % 16 == 0 && cols % (16 / t.byteSize()) == 0;
    }

    /** Launches the first pass: count chunks of rows, chunk rows each (the last one shorter), into partial. */
    private interface FirstPass { void run(long partial, long chunk, long count); }

    /** The first pass's double partials of chunks of rows (as many chunks as it makes), then the finish into out. */
    private void twoPass(ReduceOp op, long out, DType outType, long n, long cols, long chunksWanted, FirstPass first) {
        long chunk = (n + chunksWanted - 1) / chunksWanted, chunks = (n + chunk - 1) / chunk;
        CudaAllocator.Block partial = dev.allocator().allocate(chunks * cols * 8);
        first.run(partial.address(), chunk, chunks);
        Launch.args().i32(op.ordinal()).ptr(out).ptr(partial.address()).i64(chunks).i64(cols)
                .go(dev, reduceColsFinish.get(outType), (int) ((cols + 31) / 32), 1, 1, 32 * (int) Math.min(32, chunks), 0);
        dev.allocator().free(partial);
    }

    private void rowReduce(ReduceOp op, long out, Tensor xc, long rows, long n) {
        if (rows < dev.multiprocessorCount() * 2L && n >= 16384) {
            // few long rows: split each into chunks over many blocks, then finish each row
            long chunks = Math.min((n + 4095) / 4096, Math.max(1, dev.multiprocessorCount() * 8L / rows));
            long chunk = (n + chunks - 1) / chunks;
            chunks = (n + chunk - 1) / chunk;
            CudaAllocator.Block partial = dev.allocator().allocate(rows * chunks * 8);
            Launch.args().i32(op.ordinal()).ptr(partial.address()).ptr(ptr(xc)).i64(n).i64(chunk)
                    .go(dev, reduceRowsPartial.get(xc.dtype()), (int) chunks, (int) rows, 1, 512, 0);
            Launch.args().i32(op.ordinal()).ptr(out).ptr(partial.address()).i64(rows).i64(chunks)
                    .go(dev, reduceRowsFinish.get(xc.dtype()), Math.max(1, (rows + 7) / 8), BLOCK);
            dev.allocator().free(partial);
            return;
        }
        if (n <= 64) {
            Launch.args().i32(op.ordinal()).ptr(out).ptr(ptr(xc)).i64(rows).i64(n)
                    .go(dev, reduceRowsWarp.get(xc.dtype()), Math.max(1, Math.min((rows + 7) / 8, dev.multiprocessorCount() * 32L)), BLOCK);
        } else {
            int threads = n >= 4096 ? 1024 : BLOCK;
            Launch.args().i32(op.ordinal()).ptr(out).ptr(ptr(xc)).i64(rows).i64(n)
                    .go(dev, reduceRows.get(xc.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), threads);
        }
    }

    Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim) {
        int r = x.dim();
        if (r == 0) {
            Tensor out = newTensor(new int[0], DType.INT64);
            backend.fill(out, 0);
            return out;
        }
        boolean[] red = new boolean[r];
        red[dim] = true;
        Tensor out = newTensor(reducedShape(x.shape(), red, keepdim), DType.INT64);
        int[] perm = new int[r];
        int k = 0;
        for (int d = 0; d < r; d++) if (d != dim) perm[k++] = d;
        perm[k] = dim;
        Tensor xp = x.detach().permute(perm);
        Tensor xc = contiguous(xp);
        long n = x.shape()[dim], rows = x.numel() / Math.max(n, 1);
        if (rows > 0) {
            Launch.args().i32(max ? 1 : 0).ptr(ptr(out)).ptr(ptr(xc)).i64(rows).i64(n)
                    .go(dev, argReduceRows.get(x.dtype()), Math.max(1, Math.min((rows + 7) / 8, dev.multiprocessorCount() * 32L)), BLOCK);
        }
        drop(xc, xp);
        return out;
    }

    /** Elements a block of cumsum_rows scans (reductions.cu's CUMSUM_BLOCK * CUMSUM_ITEMS). */
    private static final int CUMSUM_SEGMENT = 256 * 16;

    /**
     * Running sums along dim (reductions.cu): innermost lines by blocks of CUMSUM_SEGMENT elements, other lines a thread
     * each; lines cut into segments (totals, their prefixes, then the scan) where whole lines would leave the GPU idle.
     */
    Tensor cumsum(Tensor x, int dim, boolean reverse) {
        int[] shape = x.shape();
        DType t = x.dtype();
        Tensor out = newTensor(shape, t);
        if (x.numel() == 0) return out;
        long n = shape.length == 0 ? 1 : shape[dim], inner = 1;
        for (int d = dim + 1; d < shape.length; d++) inner *= shape[d];
        long outer = x.numel() / (n * inner), wanted = dev.multiprocessorCount() * 2048L;   // threads that fill the GPU
        int segs = inner == 1 ? (int) ((n + CUMSUM_SEGMENT - 1) / CUMSUM_SEGMENT)
                : (int) Math.max(1, Math.min((n + 15) / 16, wanted / (outer * inner)));
        long len = (n + segs - 1) / segs, lines = outer * inner;
        Tensor xc = contiguous(x), part = segs == 1 ? null : newTensor(new int[]{Math.toIntExact(lines * segs)}, t == DType.INT64 ? DType.INT64 : DType.FLOAT64);
        long pp = part == null ? 0 : ptr(part);
        for (int mode : part == null ? new int[]{0} : new int[]{1, 0}) {
            if (inner == 1) {
                Launch.args().ptr(ptr(out)).ptr(ptr(xc)).ptr(pp).i64(outer).i64(n).i32(segs).i32(reverse ? 1 : 0).i32(mode)
                        .go(dev, cumsumRows.get(t), Math.min(outer * segs, dev.multiprocessorCount() * 64L), 256);
            } else {
                Launch.args().ptr(ptr(out)).ptr(ptr(xc)).ptr(pp).i64(outer).i64(n).i64(inner).i32(segs).i64(len).i32(reverse ? 1 : 0).i32(mode)
                        .go(dev, cumsumLines.get(t), grid(lines * segs), BLOCK);
            }
            if (mode == 1) Launch.args().ptr(pp).i64(outer).i32(segs).i64(inner).go(dev, cumsumOffsets.get(t), grid(lines), BLOCK);
        }
        if (part != null) part.storage().release();
        drop(xc, x);
        return out;
    }
}
