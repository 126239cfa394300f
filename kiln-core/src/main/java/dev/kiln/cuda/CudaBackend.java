package dev.kiln.cuda;

import dev.kiln.Settings;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Storage;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.ReduceOp;
import dev.kiln.backend.UnaryOp;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA backend of one device. Every method queues kernels on the device's stream and returns at once; only
 * {@link #toHost} waits. Kernels are the CUDA C files under {@code resources/dev/kiln/cuda/kernels}, compiled by
 * NVRTC for the device on first use; matrix products go to cuBLAS where it is present ({@link Blas}), else to
 * the own tiled kernel. Temporaries (contiguous copies, im2col columns) go back to the allocator as soon as the
 * kernels that read them are queued.
 */
public final class CudaBackend implements Backend {
    private static final CudaBackend[] BACKENDS = new CudaBackend[64];
    private static final int BLOCK = 256;

    private final CudaDevice dev;
    private final Device device;

    private final Kernels.Table fill, copy, unary, binary, compare, binaryScalar, compareScalar, where;
    private final Kernels.Single unaryF32Contig, binaryF32Contig;
    private final Kernels.Table uniform, normal;
    private final Kernels.Table reduceRows, reduceRowsWarp, reduceCols, argReduceRows;
    private final Kernels.Table reduceRowsPartial, reduceRowsFinish, reduceColsPartial, reduceColsFinish;
    private final Kernels.Table gemm, im2col, col2im;
    private final Kernels.Table maxPoolFwd, maxPoolFwdTiled, maxPoolBwd, maxPoolBwdTiled, avgPoolFwd, avgPoolBwd, softmaxFwd, softmaxBwd;
    private final Kernels.Table gather, scatterAdd, indexSelect, indexAdd;
    private final Kernels.Table adamStep, sgdStep, dropout, ceRowsFwd, ceRowsBwd;
    private final Kernels.Table meanKept;
    private final Kernels.Table biasRelu, biasReluV4, biasReluBwd, biasReluBwdV4, biasGradFinish;
    private final Kernels.Single graphReplayTick;

    /** Four u64 words on the device where index kernels record the first bad index (see common.cuh). */
    private volatile CudaAllocator.Block errorWord;
    private volatile boolean indexKernelsQueued;

    private CudaBackend(CudaDevice dev) {
        this.dev = dev;
        this.device = Device.cuda(dev.index());
        fill = new Kernels.Table(dev, "elementwise.cu", "fill");
        copy = new Kernels.Table(dev, "elementwise.cu", "copy", true);
        unary = new Kernels.Table(dev, "elementwise.cu", "unary");
        binary = new Kernels.Table(dev, "elementwise.cu", "binary");
        compare = new Kernels.Table(dev, "elementwise.cu", "compare");
        binaryScalar = new Kernels.Table(dev, "elementwise.cu", "binary_scalar");
        compareScalar = new Kernels.Table(dev, "elementwise.cu", "compare_scalar");
        where = new Kernels.Table(dev, "elementwise.cu", "where");
        unaryF32Contig = new Kernels.Single(dev, "elementwise.cu", "unary_f32_contig");
        binaryF32Contig = new Kernels.Single(dev, "elementwise.cu", "binary_f32_contig");
        uniform = new Kernels.Table(dev, "random.cu", "uniform");
        normal = new Kernels.Table(dev, "random.cu", "normal");
        reduceRows = new Kernels.Table(dev, "reduce.cu", "reduce_rows");
        reduceRowsWarp = new Kernels.Table(dev, "reduce.cu", "reduce_rows_warp");
        reduceCols = new Kernels.Table(dev, "reduce.cu", "reduce_cols");
        argReduceRows = new Kernels.Table(dev, "reduce.cu", "argreduce_rows");
        reduceRowsPartial = new Kernels.Table(dev, "reduce.cu", "reduce_rows_partial");
        reduceRowsFinish = new Kernels.Table(dev, "reduce.cu", "reduce_rows_finish");
        reduceColsPartial = new Kernels.Table(dev, "reduce.cu", "reduce_cols_partial");
        reduceColsFinish = new Kernels.Table(dev, "reduce.cu", "reduce_cols_finish");
        gemm = new Kernels.Table(dev, "matmul.cu", "gemm");
        im2col = new Kernels.Table(dev, "conv.cu", "im2col");
        col2im = new Kernels.Table(dev, "conv.cu", "col2im");
        maxPoolFwd = new Kernels.Table(dev, "pool.cu", "max_pool_fwd");
        maxPoolFwdTiled = new Kernels.Table(dev, "pool.cu", "max_pool_fwd_tiled");
        maxPoolBwd = new Kernels.Table(dev, "pool.cu", "max_pool_bwd");
        maxPoolBwdTiled = new Kernels.Table(dev, "pool.cu", "max_pool_bwd_tiled");
        avgPoolFwd = new Kernels.Table(dev, "pool.cu", "avg_pool_fwd");
        avgPoolBwd = new Kernels.Table(dev, "pool.cu", "avg_pool_bwd");
        softmaxFwd = new Kernels.Table(dev, "softmax.cu", "softmax_fwd");
        softmaxBwd = new Kernels.Table(dev, "softmax.cu", "softmax_bwd");
        gather = new Kernels.Table(dev, "index.cu", "gather");
        scatterAdd = new Kernels.Table(dev, "index.cu", "scatter_add");
        indexSelect = new Kernels.Table(dev, "index.cu", "index_select");
        indexAdd = new Kernels.Table(dev, "index.cu", "index_add");
        adamStep = new Kernels.Table(dev, "optim.cu", "adam_step");
        sgdStep = new Kernels.Table(dev, "optim.cu", "sgd_step");
        dropout = new Kernels.Table(dev, "fused.cu", "dropout");
        ceRowsFwd = new Kernels.Table(dev, "fused.cu", "ce_rows_fwd");
        ceRowsBwd = new Kernels.Table(dev, "fused.cu", "ce_rows_bwd");
        meanKept = new Kernels.Table(dev, "fused.cu", "mean_kept");
        biasRelu = new Kernels.Table(dev, "fused.cu", "bias_relu");
        biasReluV4 = new Kernels.Table(dev, "fused.cu", "bias_relu_v4");
        biasReluBwd = new Kernels.Table(dev, "fused.cu", "bias_relu_bwd");
        biasReluBwdV4 = new Kernels.Table(dev, "fused.cu", "bias_relu_bwd_v4");
        biasGradFinish = new Kernels.Table(dev, "fused.cu", "bias_grad_finish");
        graphReplayTick = new Kernels.Single(dev, "fused.cu", "graph_replay_tick");
    }

    /** Loads the replay-tick kernel (module loading is not allowed inside a capture, so CudaGraph calls this first). */
    void prepareReplayTick() { graphReplayTick.get(); }

    /** Queues {@code *counter += 1}: a graph's first node, or an eager step between replays (see CudaGraph#advance). */
    void replayTick(long counter) { Launch.args().ptr(counter).go(dev, graphReplayTick.get(), 1, 1); }

    /** The backend of device {@code index}; a clear {@link CudaException} when there is no such GPU. */
    public static CudaBackend of(int index) {
        if (index < 0 || index >= BACKENDS.length) throw new CudaException.NoDevice("cuda:" + index + " does not exist");
        CudaBackend b = BACKENDS[index];
        if (b != null) return b;
        synchronized (BACKENDS) {
            if (BACKENDS[index] == null) {
                if (!Cuda.isAvailable()) throw new CudaException.NoDevice("cuda:" + index + " is not available: " + Cuda.unavailableReason());
                BACKENDS[index] = new CudaBackend(CudaDevice.get(index));
            }
            return BACKENDS[index];
        }
    }

    public CudaDevice cudaDevice() { return dev; }

    @Override public Device device() { return device; }

    @Override public Storage allocate(DType dtype, long numel) { return CudaStorage.allocate(dev, dtype, numel); }

    // ------------------------------------------------------------------ helpers

    Tensor newTensor(int[] shape, DType dtype) { return new Tensor(CudaStorage.allocate(dev, dtype, Shape.numel(shape)), shape); }

    /** The device address of t's first element; fails clearly for a tensor of another device. */
    private long ptr(Tensor t) {
        if (!(t.storage() instanceof CudaStorage s) || s.cudaDevice() != dev) {
            throw new IllegalArgumentException("expected a tensor on " + device + ", got one on " + t.device()
                    + " (shape " + Shape.str(t.shape()) + "); move it with .to(" + device + ")");
        }
        return s.address() + (long) t.offset() * t.dtype().byteSize();
    }

    private int grid(long n) { return (int) Math.max(1, Math.min((n + BLOCK - 1) / BLOCK, (long) dev.multiprocessorCount() * 32)); }

    /** A new contiguous copy (in dtype), or t itself when it is already contiguous and of that dtype. */
    private Tensor contiguous(Tensor t, DType dtype) {
        if (t.isContiguous() && t.dtype() == dtype) return t;
        Tensor c = newTensor(t.shape(), dtype);
        copy(c, t);
        return c;
    }

    private Tensor contiguous(Tensor t) { return contiguous(t, t.dtype()); }

    /** For the library glue: t, or a contiguous copy of it (release with {@link #drop}). */
    Tensor contiguousCopy(Tensor t) { return contiguous(t); }

    long ptrOf(Tensor t) { return ptr(t); }

    /** Releases a temporary made by {@link #contiguous} (not the caller's tensor). */
    static void drop(Tensor temp, Tensor original) {
        if (temp != original) temp.storage().release();
    }

    private static boolean aligned16(long... ptrs) {
        long or = 0;
        for (long p : ptrs) or |= p;
        return (or & 15) == 0;
    }

    // ------------------------------------------------------------------ transfers

    private static ValueLayout carrier(DType t) {
        return switch (t) {
            case FLOAT32 -> ValueLayout.JAVA_FLOAT;
            case FLOAT64 -> ValueLayout.JAVA_DOUBLE;
            case INT64 -> ValueLayout.JAVA_LONG;
            case INT32 -> ValueLayout.JAVA_INT;
            case UINT8, BOOL -> ValueLayout.JAVA_BYTE;
            case BFLOAT16, FLOAT16 -> ValueLayout.JAVA_SHORT;
        };
    }

    @Override public Tensor fromHost(Object array, DType dtype, int[] shape) {
        long n = Shape.numel(shape);
        Object expected = HostArrays.allocate(dtype, 0);
        if (array.getClass() != expected.getClass()) {
            throw new IllegalArgumentException("fromHost: a " + array.getClass().getSimpleName() + " cannot hold " + dtype + " values");
        }
        if (HostArrays.length(array) < n) {
            throw new IllegalArgumentException("fromHost: " + HostArrays.length(array) + " values for shape " + Shape.str(shape));
        }
        Tensor out = newTensor(shape, dtype);
        long bytes = n * dtype.byteSize();
        if (bytes == 0) return out;
        long dst = ptr(out);
        ValueLayout layout = carrier(dtype);
        dev.withStaging(bytes, seg -> {
            copyArray(array, seg, layout, (int) n);
            Driver.memcpyHtoDAsync(dst, seg, bytes, dev.stream());
            return null;
        });
        return out;
    }

    private static void copyArray(Object array, MemorySegment seg, ValueLayout layout, int n) {
        switch (array) {
            case float[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfFloat) layout, 0, n);
            case double[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfDouble) layout, 0, n);
            case long[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfLong) layout, 0, n);
            case int[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfInt) layout, 0, n);
            case short[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfShort) layout, 0, n);
            case byte[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfByte) layout, 0, n);
            default -> throw new IllegalArgumentException("fromHost: unsupported array type " + array.getClass());
        }
    }

    @Override public Object toHost(Tensor t) {
        dev.requireNotCapturing("toHost / item() cannot read values");
        int n = Math.toIntExact(t.numel());
        Object out = HostArrays.allocate(t.dtype(), n);
        Tensor c = contiguous(t);
        long bytes = (long) n * t.dtype().byteSize();
        long src = bytes == 0 ? 0 : ptr(c);
        ValueLayout layout = carrier(t.dtype());
        long[] error = dev.withStaging(Math.max(bytes, 32), seg -> {
            MemorySegment stream = dev.stream();
            if (bytes > 0) Driver.memcpyDtoHAsync(seg, src, bytes, stream);
            Driver.streamSynchronize(stream);
            if (bytes > 0) copyBack(seg, out, layout, n);
            return indexKernelsQueued ? readIndexError(seg) : null;
        });
        drop(c, t);
        if (error != null) throw indexError(error);
        return out;
    }

    private static void copyBack(MemorySegment seg, Object array, ValueLayout layout, int n) {
        switch (array) {
            case float[] a -> MemorySegment.copy(seg, (ValueLayout.OfFloat) layout, 0, a, 0, n);
            case double[] a -> MemorySegment.copy(seg, (ValueLayout.OfDouble) layout, 0, a, 0, n);
            case long[] a -> MemorySegment.copy(seg, (ValueLayout.OfLong) layout, 0, a, 0, n);
            case int[] a -> MemorySegment.copy(seg, (ValueLayout.OfInt) layout, 0, a, 0, n);
            case short[] a -> MemorySegment.copy(seg, (ValueLayout.OfShort) layout, 0, a, 0, n);
            case byte[] a -> MemorySegment.copy(seg, (ValueLayout.OfByte) layout, 0, a, 0, n);
            default -> throw new IllegalStateException(array.getClass().toString());
        }
    }

    // ------------------------------------------------------------------ index errors

    private long errorWord() {
        CudaAllocator.Block b = errorWord;
        if (b == null) {
            synchronized (this) {
                if (errorWord == null) {
                    CudaAllocator.Block nb = dev.allocator().allocate(32);
                    dev.zero(nb.address(), 32);
                    errorWord = nb;
                }
                b = errorWord;
            }
        }
        indexKernelsQueued = true;
        return b.address();
    }

    /** After a stream sync: the recorded bad index {value, size, op} (and clears it), or null. */
    private long[] readIndexError(MemorySegment seg) {
        long addr = errorWord.address();
        Driver.memcpyDtoHAsync(seg, addr, 32, dev.stream());
        Driver.streamSynchronize(dev.stream());
        indexKernelsQueued = false;
        if (seg.get(JAVA_LONG, 0) == 0) return null;
        long[] e = {seg.get(JAVA_LONG, 8), seg.get(JAVA_LONG, 16), seg.get(JAVA_LONG, 24)};
        dev.zero(addr, 32);
        return e;
    }

    private static IndexOutOfBoundsException indexError(long[] e) {
        String op = switch ((int) e[2]) {
            case 1 -> "gather";
            case 2 -> "scatter_add";
            case 3 -> "index_select";
            case 5 -> "cross_entropy";
            default -> "index_add";
        };
        return new IndexOutOfBoundsException(op + ": index " + e[0] + " is out of bounds for a dimension of size " + e[1]
                + " (reported by the GPU at the next wait; the op's other elements were computed)");
    }

    // ------------------------------------------------------------------ filling and copying

    @Override public void fill(Tensor out, double value) {
        long n = out.numel();
        if (n == 0) return;
        if (value == 0 && Double.doubleToRawLongBits(value) == 0 && out.isContiguous()) {
            dev.zero(ptr(out), n * out.dtype().byteSize());
            return;
        }
        Launch.args().ptr(ptr(out)).f64(value).i64(n).geo(Geo.of(out.shape(), out)).go(dev, fill.get(out.dtype()), grid(n), BLOCK);
    }

    @Override public void copy(Tensor dst, Tensor src) {
        long n = dst.numel();
        if (n == 0) return;
        if (!src.device().equals(dst.device())) {
            throw new IllegalArgumentException("copy: expected tensors on one device, got " + dst.device() + " and " + src.device());
        }
        if (dst.dtype() == src.dtype() && dst.isContiguous() && src.isContiguous()) {
            dev.copyDeviceToDevice(ptr(src), ptr(dst), n * dst.dtype().byteSize());
            return;
        }
        Launch.args().ptr(ptr(dst)).ptr(ptr(src)).i64(n).geo(Geo.of(dst.shape(), dst, src))
                .go(dev, copy.get(dst.dtype(), src.dtype()), grid(n), BLOCK);
    }

    @Override public void uniform(Tensor out, long seed, double lo, double hi) { random(uniform, out, seed, lo, hi); }

    @Override public void normal(Tensor out, long seed, double mean, double std) { random(normal, out, seed, mean, std); }

    private void random(Kernels.Table k, Tensor out, long seed, double a, double b) {
        if (!out.dtype().isFloating()) throw new IllegalArgumentException("random fill needs a floating tensor, got " + out.dtype());
        if (!out.isContiguous()) throw new IllegalArgumentException("random fill needs a contiguous tensor");
        long n = out.numel();
        if (n == 0) return;
        Launch.args().ptr(ptr(out)).i64(n).i64(seed).f64(a).f64(b).go(dev, k.get(out.dtype()), grid(n), BLOCK);
    }

    // ------------------------------------------------------------------ elementwise

    @Override public Tensor unary(UnaryOp op, Tensor x) {
        Tensor out = newTensor(x.shape(), x.dtype());
        long n = x.numel();
        if (n == 0) return out;
        long o = ptr(out), a = ptr(x);
        if (x.dtype() == DType.FLOAT32 && x.isContiguous() && aligned16(o, a)) {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(a).i64(n).go(dev, unaryF32Contig.get(), grid((n + 3) / 4), BLOCK);
        } else {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(a).i64(n).geo(Geo.of(x.shape(), x)).go(dev, unary.get(x.dtype()), grid(n), BLOCK);
        }
        return out;
    }

    private static boolean boolResult(BinaryOp op) { return op.isComparison() || op == BinaryOp.AND || op == BinaryOp.OR; }

    @Override public Tensor binary(BinaryOp op, Tensor a, Tensor b) {
        boolean cmp = boolResult(op);
        Tensor out = newTensor(a.shape(), cmp ? DType.BOOL : a.dtype());
        long n = a.numel();
        if (n == 0) return out;
        long o = ptr(out), pa = ptr(a), pb = ptr(b);
        if (!cmp && a.dtype() == DType.FLOAT32 && a.isContiguous() && b.isContiguous() && aligned16(o, pa, pb)) {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(pa).ptr(pb).i64(n).go(dev, binaryF32Contig.get(), grid((n + 3) / 4), BLOCK);
            return out;
        }
        Kernels.Fn fn = cmp ? compare.get(a.dtype()) : binary.get(a.dtype());
        Launch.args().i32(op.ordinal()).ptr(o).ptr(pa).ptr(pb).i64(n).geo(Geo.of(a.shape(), a, b)).go(dev, fn, grid(n), BLOCK);
        return out;
    }

    @Override public Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst) {
        boolean cmp = boolResult(op);
        Tensor out = newTensor(a.shape(), cmp ? DType.BOOL : a.dtype());
        long n = a.numel();
        if (n == 0) return out;
        Kernels.Fn fn = cmp ? compareScalar.get(a.dtype()) : binaryScalar.get(a.dtype());
        Launch.args().i32(op.ordinal()).ptr(ptr(out)).ptr(ptr(a)).f64(s).i32(scalarFirst ? 1 : 0).i64(n).geo(Geo.of(a.shape(), a))
                .go(dev, fn, grid(n), BLOCK);
        return out;
    }

    @Override public Tensor where(Tensor cond, Tensor a, Tensor b) {
        Tensor c = cond.dtype() == DType.BOOL ? cond : contiguous(cond, DType.BOOL);
        Tensor out = newTensor(a.shape(), a.dtype());
        long n = a.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(c)).ptr(ptr(a)).ptr(ptr(b)).i64(n).geo(Geo.of(a.shape(), c, a, b))
                    .go(dev, where.get(a.dtype()), grid(n), BLOCK);
        }
        drop(c, cond);
        return out;
    }

    // ------------------------------------------------------------------ reductions

    private static int[] reducedShape(int[] shape, boolean[] red, boolean keepdim) {
        int[] o = new int[shape.length];
        int k = 0;
        for (int d = 0; d < shape.length; d++) {
            if (!red[d]) o[k++] = shape[d];
            else if (keepdim) o[k++] = 1;
        }
        return java.util.Arrays.copyOf(o, k);
    }

    @Override public Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim) {
        int r = x.dim();
        int[] shape = x.shape();
        boolean[] red = new boolean[r];
        for (int d : dims) red[d] = true;
        Tensor out = newTensor(reducedShape(shape, red, keepdim), x.dtype());
        if (x.numel() == 0) {
            fill(out, 0);
            return out;
        }
        long inner = 1;
        for (int d : dims) inner *= shape[d];
        long outer = x.numel() / inner;
        boolean leading = true;
        for (int d = 0; d < r; d++) if (red[d] != (d < dims.length)) leading = false;
        if (leading && dims.length > 0 && x.isContiguous() && outer >= 128) {
            // reducing the leading dimensions of a contiguous array: one thread per output column, no transpose
            colReduce(op, ptr(out), ptr(x), x.dtype(), inner, outer);
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

    /** out[c] = reduce over r < n of x[r * cols + c]; two passes when the columns alone cannot fill the GPU. */
    private void colReduce(ReduceOp op, long out, long x, DType t, long n, long cols) {
        long threadsWanted = dev.multiprocessorCount() * 2048L;
        if (cols >= threadsWanted / 4 || n < 64) {
            Launch.args().i32(op.ordinal()).ptr(out).ptr(x).i64(n).i64(cols).go(dev, reduceCols.get(t), grid(cols), BLOCK);
            return;
        }
        long chunks = Math.min(Math.min((n + 31) / 32, 65535), Math.max(1, threadsWanted / cols));
        long chunk = (n + chunks - 1) / chunks;
        chunks = (n + chunk - 1) / chunk;
        CudaAllocator.Block partial = dev.allocator().allocate(chunks * cols * 8);
        Launch.args().i32(op.ordinal()).ptr(partial.address()).ptr(x).i64(n).i64(cols).i64(chunk)
                .go(dev, reduceColsPartial.get(t), (int) ((cols + BLOCK - 1) / BLOCK), (int) chunks, 1, BLOCK, 0);
        Launch.args().i32(op.ordinal()).ptr(out).ptr(partial.address()).i64(chunks).i64(cols).go(dev, reduceColsFinish.get(t), grid(cols), BLOCK);
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

    @Override public Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim) {
        int r = x.dim();
        if (r == 0) {
            Tensor out = newTensor(new int[0], DType.INT64);
            fill(out, 0);
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

    // ------------------------------------------------------------------ linear algebra

    @Override public Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        Tensor out = newTensor(new int[]{batch, m, n}, a.dtype());
        if ((long) batch * m * n == 0) return out;
        int[] sa = a.strides(), sb = b.strides();
        gemm(a.dtype(), batch, m, n, k, ptr(a), sa[0], sa[1], sa[2], ptr(b), sb[0], sb[1], sb[2],
                ptr(out), (long) m * n, n, false);
        return out;
    }

    /**
     * C[b] (row-major, column stride 1) = A[b] x B[b] (+ C[b] when accumulate), for any element strides of A and B
     * (batch stride 0 for a shared matrix). cuBLAS when it is present and the layout suits it, else the own kernel.
     */
    void gemm(DType t, int batch, long m, long n, long k, long a, long sab, long sam, long sak, long b, long sbb, long sbk, long sbn,
              long c, long scb, long scm, boolean accumulate) {
        if (Blas.tryGemm(this, t, batch, m, n, k, a, sab, sam, sak, b, sbb, sbk, sbn, c, scb, scm, accumulate)) return;
        if (!t.isFloating()) throw new IllegalArgumentException("matmul: expected floating tensors, got " + t);
        for (int b0 = 0; b0 < batch; b0 += 65535) {
            int nb = Math.min(65535, batch - b0);
            Launch.args().ptr(c).ptr(a).ptr(b).gemm(m, n, k, sab, sam, sak, sbb, sbk, sbn, scb, scm, accumulate).i32(b0)
                    .go(dev, gemm.get(t), (int) ((n + 63) / 64), (int) ((m + 63) / 64), nb, 256, 0);
        }
    }

    // ------------------------------------------------------------------ convolution (im2col + GEMM)

    private int[] convP(int[] xShape, int kh, int kw, Conv2dParams p) {
        int h = xShape[2], w = xShape[3];
        return new int[]{xShape[1], h, w, kh, kw, p.strideH(), p.strideW(), p.padH(), p.padW(), p.dilationH(), p.dilationW(),
                p.outH(h, kh), p.outW(w, kw)};
    }

    private Tensor im2col(Tensor xc, int[] cp) {
        int n = xc.shape()[0];
        long rows = (long) cp[0] * cp[3] * cp[4], q = (long) cp[11] * cp[12];
        Tensor cols = newTensor(new int[]{n, (int) rows, (int) q}, xc.dtype());
        long total = n * rows * q;
        if (total > 0) Launch.args().ptr(ptr(cols)).ptr(ptr(xc)).i64(total).ints(cp).go(dev, im2col.get(xc.dtype()), grid(total), BLOCK);
        return cols;
    }

    @Override public Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p, boolean relu) {
        SmallConv small = smallConv(x.shape(), w.shape(), p, x.dtype());
        if (small != null) return small.forward(x, w, bias, relu);
        Tensor y = Dnn.available(x.dtype()) ? Dnn.conv2d(this, x, w, p) : im2colConv2d(x, w, p);
        if (bias != null || relu) biasReluInPlace(y, bias, relu);
        return y;
    }

    @Override public Tensor[] conv2dBackwardWeightAndBias(Tensor g, Tensor y, Tensor x, int[] weightShape, Conv2dParams p,
                                                          boolean relu, boolean biasGrad) {
        SmallConv small = smallConv(x.shape(), weightShape, p, x.dtype());
        // one input channel only: with three, each thread's window is reloaded for every block of output channels
        // and the kernel measured slower than cuDNN's (H200: 0.32 vs ~0.2 ms for CIFAR's first layer at batch 1024)
        if (small != null && (small.c == 1 || smallConvWeightGradAll)) return small.weightAndBiasGrad(g, y, x, relu, biasGrad);
        return Backend.super.conv2dBackwardWeightAndBias(g, y, x, weightShape, p, relu, biasGrad);
    }

    /** Whether the direct kernels for few input channels are on (KILN_SMALL_CONV=0 sends every conv to cuDNN). */
    private static volatile boolean smallConvEnabled = Settings.get().smallConv() != Settings.SmallConv.OFF;

    static void setSmallConvEnabled(boolean on) { smallConvEnabled = on; }

    /** KILN_SMALL_CONV=all: the direct weight gradient for three input channels too (measured slower at batch 1024). */
    private static final boolean smallConvWeightGradAll = Settings.get().smallConv() == Settings.SmallConv.ALL;

    /**
     * A convolution the direct kernels of conv.cu take (conv_small_*): 1 or 3 input channels, a 3x3 or 5x5 kernel,
     * stride 1, no dilation or groups, equal padding on both axes: an image model's first layer, where cuDNN's
     * general algorithms spend most of their time reshaping. One thread per output pixel, every output channel.
     */
    private final class SmallConv {
        final int n, c, h, w, o, k, pad, oh, ow, ob;
        final DType t;

        private SmallConv(int[] xs, int[] ws, Conv2dParams p, DType t) {
            this.n = xs[0];
            this.c = xs[1];
            this.h = xs[2];
            this.w = xs[3];
            this.o = ws[0];
            this.k = ws[2];
            this.pad = p.padH();
            this.oh = p.outH(h, k);
            this.ow = p.outW(w, k);
            this.t = t;
            int v = c * k * k + 1;
            this.ob = v <= 12 ? 4 : v <= 28 ? 2 : 1; // as SMALL_CONV_ALL in conv.cu
        }

        private String variant() { return "c" + c + "k" + k; }

        private long sharedBytes() { return (long) o * (c * k * k + 1) * accBytes(); }

        private int accBytes() { return t == DType.FLOAT64 ? 8 : 4; }

        private Launch geometry(Launch l) { return l.ints(n, h, w, oh, ow, o, pad); }

        Tensor forward(Tensor x, Tensor wt, Tensor bias, boolean relu) {
            Tensor xc = contiguous(x), wc = contiguous(wt), bc = bias == null ? null : contiguous(bias);
            Tensor y = newTensor(new int[]{n, o, oh, ow}, t);
            long pixels = (long) n * oh * ow;
            if (pixels > 0) {
                geometry(Launch.args().ptr(ptr(y)).ptr(ptr(xc)).ptr(ptr(wc)).ptr(bc == null ? 0 : ptr(bc))).i32(relu ? 1 : 0)
                        .go(dev, smallConvKernel("conv_small_fwd_" + variant(), t), (int) grid(pixels), 1, 1, BLOCK, (int) sharedBytes());
            }
            drop(xc, x);
            drop(wc, wt);
            if (bc != null) drop(bc, bias);
            return y;
        }

        Tensor[] weightAndBiasGrad(Tensor g, Tensor y, Tensor x, boolean relu, boolean biasGrad) {
            Tensor gc = contiguous(g), yc = relu ? contiguous(y, g.dtype()) : null, xc = contiguous(x);
            int ckk = c * k * k, groups = o / ob;
            long pixels = (long) n * oh * ow;
            // about sixteen blocks per multiprocessor in all (each thread's sums are many registers, so few threads
            // fit at once; more blocks keep more loads in flight); every block sums its share of the pixels
            int blocks = (int) Math.max(1, Math.min((pixels + BLOCK - 1) / BLOCK, (16L * dev.multiprocessorCount() + groups - 1) / groups));
            Tensor partial = newTensor(new int[]{o * (ckk + 1) * blocks}, t == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32);
            Tensor dw = newTensor(new int[]{o, c, k, k}, t), db = biasGrad ? newTensor(new int[]{o}, t) : null;
            geometry(Launch.args().ptr(ptr(partial)).ptr(ptr(gc)).ptr(relu ? ptr(yc) : ptr(gc)).ptr(ptr(xc))).i32(relu ? 1 : 0)
                    .go(dev, smallConvKernel("conv_small_wgrad_" + variant(), t), blocks, groups, 1, BLOCK, 0);
            Launch.args().ptr(ptr(dw)).ptr(db == null ? 0 : ptr(db)).ptr(ptr(partial)).i32(o).i32(ckk).i32(blocks)
                    .go(dev, smallConvKernel("conv_small_wgrad_finish", t), grid((long) o * (ckk + 1)), BLOCK);
            partial.storage().release();
            drop(gc, g);
            if (yc != null) drop(yc, y);
            drop(xc, x);
            return new Tensor[]{dw, db};
        }
    }

    /** The direct kernels' view of this convolution, or null when they do not take it. */
    private SmallConv smallConv(int[] xs, int[] ws, Conv2dParams p, DType t) {
        if (!smallConvEnabled || !t.isFloating()) return null;
        int c = xs[1], k = ws[2];
        if ((c != 1 && c != 3) || (k != 3 && k != 5) || ws[3] != k || ws[1] != c) return null;
        if (p.groups() != 1 || p.strideH() != 1 || p.strideW() != 1 || p.dilationH() != 1 || p.dilationW() != 1 || p.padH() != p.padW()) return null;
        SmallConv sc = new SmallConv(xs, ws, p, t);
        if (sc.oh < 1 || sc.ow < 1 || sc.o % sc.ob != 0 || sc.sharedBytes() > 48 * 1024) return null;
        if ((long) sc.n * c * sc.h * sc.w >= Integer.MAX_VALUE || (long) sc.n * sc.o * sc.oh * sc.ow >= Integer.MAX_VALUE) return null;
        return sc;
    }

    private final java.util.concurrent.ConcurrentHashMap<String, Kernels.Table> smallConvTables = new java.util.concurrent.ConcurrentHashMap<>();

    private Kernels.Fn smallConvKernel(String prefix, DType t) {
        return smallConvTables.computeIfAbsent(prefix, k -> new Kernels.Table(dev, "conv.cu", k)).get(t);
    }

    /** The convolution without bias through im2col and the own GEMM (no cuDNN, or KILN_CUDNN=0). */
    private Tensor im2colConv2d(Tensor x, Tensor w, Conv2dParams p) {
        Tensor xc = contiguous(x), wc = contiguous(w);
        int n = x.shape()[0], o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int[] cp = convP(x.shape(), kh, kw, p);
        int oh = cp[11], ow = cp[12], cg = cp[0] / g, og = o / g;
        long kg = (long) cg * kh * kw, q = (long) oh * ow, rows = (long) cp[0] * kh * kw;
        Tensor cols = im2col(xc, cp);
        Tensor out = newTensor(new int[]{n, o, oh, ow}, x.dtype());
        int es = x.dtype().byteSize();
        for (int gi = 0; gi < g; gi++) {
            gemm(x.dtype(), n, og, q, kg,
                    ptr(wc) + gi * og * kg * es, 0, kg, 1,
                    ptr(cols) + gi * kg * q * es, rows * q, q, 1,
                    ptr(out) + gi * og * q * es, (long) o * q, q, false);
        }
        drop(xc, x);
        drop(wc, w);
        cols.storage().release();
        return out;
    }

    /** y = relu?(y + bias[channel]) in place over dim 1 of a fresh contiguous (N, C, ...) tensor (bias may be null). */
    private void biasReluInPlace(Tensor y, Tensor bias, boolean relu) {
        Tensor bc = bias == null ? null : contiguous(bias);
        long n = y.numel();
        int[] s = y.shape();
        long inner = n == 0 ? 1 : n / ((long) s[0] * s[1]);
        if (n > 0) {
            boolean v4 = inner % 4 == 0;
            long work = v4 ? n / 4 : n;
            Launch.args().ptr(ptr(y)).ptr(bc == null ? 0 : ptr(bc)).i64(work).i64(inner).i64(s[1]).i32(relu ? 1 : 0)
                    .go(dev, (v4 ? biasReluV4 : biasRelu).get(y.dtype()), grid(work), BLOCK);
        }
        if (bc != null) drop(bc, bias);
    }

    @Override public Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad) {
        requireAnyFloat("bias_relu_backward", g.dtype());
        Tensor gc = contiguous(g), yc = relu ? contiguous(y, g.dtype()) : null;
        int[] s = g.shape();
        int images = s[0], c = s[1];
        long n = g.numel(), inner = n == 0 ? 1 : n / ((long) images * c);
        Tensor dz = relu ? newTensor(s, g.dtype()) : gc, db = null;
        if (biasGrad) db = newTensor(new int[]{c}, g.dtype());
        if (n > 0 && (relu || biasGrad)) {
            // about four blocks per multiprocessor in all, each a channel's share of the images
            int splits = (int) Math.max(1, Math.min(images, (4L * dev.multiprocessorCount() + c - 1) / c));
            DType acc = g.dtype() == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
            Tensor partial = biasGrad ? newTensor(new int[]{c * splits}, acc) : null;
            boolean v4 = inner % 4 == 0;
            Launch.args().ptr(relu ? ptr(dz) : 0).ptr(biasGrad ? ptr(partial) : 0).ptr(ptr(gc)).ptr(relu ? ptr(yc) : ptr(gc))
                    .i64(images).i64(inner).i64(c).i32(relu ? 1 : 0).i32(relu ? 1 : 0)
                    .go(dev, (v4 ? biasReluBwdV4 : biasReluBwd).get(g.dtype()), c, splits, 1, BLOCK, 0);
            if (biasGrad) {
                Launch.args().ptr(ptr(db)).ptr(ptr(partial)).i64(c).i64(splits).go(dev, biasGradFinish.get(g.dtype()), grid(c), BLOCK);
                partial.storage().release();
            }
        } else if (biasGrad) {
            fill(db, 0);
        }
        if (relu) {
            drop(gc, g);
            drop(yc, y);
        }
        return new Tensor[]{dz, db};
    }

    @Override public Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p) {
        if (Dnn.available(gradOut.dtype())) return Dnn.conv2dBackwardInput(this, gradOut, w, inputShape, p);
        Tensor gy = contiguous(gradOut), wc = contiguous(w);
        int n = inputShape[0], o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int[] cp = convP(inputShape, kh, kw, p);
        int cg = cp[0] / g, og = o / g;
        long kg = (long) cg * kh * kw, q = (long) cp[11] * cp[12], rows = (long) cp[0] * kh * kw;
        DType t = gradOut.dtype();
        int es = t.byteSize();
        Tensor cols = newTensor(new int[]{n, (int) rows, (int) q}, t);
        for (int gi = 0; gi < g; gi++) {
            gemm(t, n, kg, q, og,
                    ptr(wc) + gi * og * kg * es, 0, 1, kg,
                    ptr(gy) + gi * og * q * es, (long) o * q, q, 1,
                    ptr(cols) + gi * kg * q * es, rows * q, q, false);
        }
        Tensor gx = newTensor(inputShape.clone(), t);
        long total = Shape.numel(inputShape);
        if (total > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(cols)).i64(total).ints(cp).go(dev, col2im.get(t), grid(total), BLOCK);
        cols.storage().release();
        drop(gy, gradOut);
        drop(wc, w);
        return gx;
    }

    @Override public Tensor conv2dBackwardWeight(Tensor gradOut, Tensor x, int[] weightShape, Conv2dParams p) {
        if (Dnn.available(gradOut.dtype())) return Dnn.conv2dBackwardWeight(this, gradOut, x, weightShape, p);
        Tensor gy = contiguous(gradOut), xc = contiguous(x);
        int n = x.shape()[0], o = weightShape[0], kh = weightShape[2], kw = weightShape[3], g = p.groups();
        int[] cp = convP(x.shape(), kh, kw, p);
        int cg = cp[0] / g, og = o / g;
        long kg = (long) cg * kh * kw, q = (long) cp[11] * cp[12], rows = (long) cp[0] * kh * kw;
        DType t = gradOut.dtype();
        int es = t.byteSize();
        Tensor cols = im2col(xc, cp);
        // per image, then summed over images: gw[g] = sum_n gy[n, g] x cols[n, g]^T
        Tensor perImage = newTensor(new int[]{n, o * (int) kg}, t);
        for (int gi = 0; gi < g; gi++) {
            gemm(t, n, og, kg, q,
                    ptr(gy) + gi * og * q * es, (long) o * q, q, 1,
                    ptr(cols) + gi * kg * q * es, rows * q, 1, q,
                    ptr(perImage) + gi * og * kg * es, (long) o * kg, kg, false);
        }
        Tensor gw = newTensor(weightShape.clone(), t);
        long cols2 = (long) o * kg;
        colReduce(ReduceOp.SUM, ptr(gw), ptr(perImage), t, n, cols2);
        perImage.storage().release();
        cols.storage().release();
        drop(gy, gradOut);
        drop(xc, x);
        return gw;
    }

    // ------------------------------------------------------------------ pooling

    private static int[] poolP(int[] xShape, Pool2dParams p) {
        int h = xShape[2], w = xShape[3];
        return new int[]{h, w, p.outH(h), p.outW(w), p.kernelH(), p.kernelW(), p.strideH(), p.strideW(), p.padH(), p.padW(),
                p.countIncludePad() ? 1 : 0};
    }

    /** Whether the pooling windows tile the input (stride == kernel, no padding): the _tiled kernels' case. */
    private static boolean tiles(Pool2dParams p) {
        return p.strideH() == p.kernelH() && p.strideW() == p.kernelW() && p.padH() == 0 && p.padW() == 0;
    }

    @Override public Tensor[] maxPool2d(Tensor x, Pool2dParams p) {
        Tensor xc = contiguous(x);
        int[] pp = poolP(x.shape(), p);
        int[] os = {x.shape()[0], x.shape()[1], pp[2], pp[3]};
        Tensor out = newTensor(os, x.dtype()), idx = newTensor(os.clone(), DType.INT64);
        long n = Shape.numel(os);
        Kernels.Table k = tiles(p) ? maxPoolFwdTiled : maxPoolFwd;
        if (n > 0) Launch.args().ptr(ptr(out)).ptr(ptr(idx)).ptr(ptr(xc)).i64(n).ints(pp).go(dev, k.get(x.dtype()), grid(n), BLOCK);
        drop(xc, x);
        return new Tensor[]{out, idx};
    }

    @Override public Tensor maxPool2dBackward(Tensor gradOut, Tensor indices, int[] inputShape, Pool2dParams p) {
        requireAnyFloat("max_pool2d backward", gradOut.dtype());
        Tensor gy = contiguous(gradOut), ic = contiguous(indices);
        int[] pp = poolP(inputShape, p);
        Tensor gx = newTensor(inputShape.clone(), gradOut.dtype());
        if (tiles(p)) {
            long n = gy.numel();
            if (pp[2] * p.kernelH() != pp[0] || pp[3] * p.kernelW() != pp[1] || n == 0) fill(gx, 0); // a ragged edge no window covers
            if (n > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).ptr(ptr(ic)).i64(n).ints(pp).go(dev, maxPoolBwdTiled.get(gx.dtype()), grid(n), BLOCK);
        } else {
            long n = gx.numel();
            if (n > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).ptr(ptr(ic)).i64(n).ints(pp).go(dev, maxPoolBwd.get(gx.dtype()), grid(n), BLOCK);
        }
        drop(gy, gradOut);
        drop(ic, indices);
        return gx;
    }

    @Override public Tensor avgPool2d(Tensor x, Pool2dParams p) {
        Tensor xc = contiguous(x);
        int[] pp = poolP(x.shape(), p);
        int[] os = {x.shape()[0], x.shape()[1], pp[2], pp[3]};
        Tensor out = newTensor(os, x.dtype());
        long n = Shape.numel(os);
        if (n > 0) Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(n).ints(pp).go(dev, avgPoolFwd.get(x.dtype()), grid(n), BLOCK);
        drop(xc, x);
        return out;
    }

    @Override public Tensor avgPool2dBackward(Tensor gradOut, int[] inputShape, Pool2dParams p) {
        Tensor gy = contiguous(gradOut);
        int[] pp = poolP(inputShape, p);
        Tensor gx = newTensor(inputShape.clone(), gradOut.dtype());
        long n = Shape.numel(inputShape);
        if (n > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).i64(n).ints(pp).go(dev, avgPoolBwd.get(gradOut.dtype()), grid(n), BLOCK);
        drop(gy, gradOut);
        return gx;
    }

    // ------------------------------------------------------------------ softmax

    private int rowThreads(long n) { return n >= 2048 ? 1024 : n >= 512 ? 512 : n >= 128 ? 128 : 32; }

    @Override public Tensor softmax(Tensor x, int dim, boolean log) {
        if (x.dim() == 0) return softmax(x.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(x.dim(), dim);
        Tensor xp = x.detach().permute(perm);
        Tensor xc = contiguous(xp);
        long n = x.shape()[dim], rows = x.numel() / Math.max(n, 1);
        Tensor y = newTensor(xp.shape(), x.dtype());
        if (rows > 0 && n > 0) {
            Launch.args().ptr(ptr(y)).ptr(ptr(xc)).i64(rows).i64(n).i32(log ? 1 : 0)
                    .go(dev, softmaxFwd.get(x.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(n));
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

    @Override public Tensor softmaxBackward(Tensor gradOut, Tensor y, int dim, boolean log) {
        if (y.dim() == 0) return softmaxBackward(gradOut.detach().reshape(1), y.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(y.dim(), dim);
        Tensor gp = gradOut.detach().permute(perm), yp = y.detach().permute(perm);
        Tensor gc = contiguous(gp), yc = contiguous(yp);
        long n = y.shape()[dim], rows = y.numel() / Math.max(n, 1);
        Tensor gx = newTensor(yp.shape(), y.dtype());
        if (rows > 0 && n > 0) {
            Launch.args().ptr(ptr(gx)).ptr(ptr(gc)).ptr(ptr(yc)).i64(rows).i64(n).i32(log ? 1 : 0)
                    .go(dev, softmaxBwd.get(y.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(n));
        }
        drop(gc, gp);
        drop(yc, yp);
        return permutedBack(gx, perm);
    }

    // ------------------------------------------------------------------ indexing

    /** The dtype the atomic-add kernels compute in: 16-bit floats in float32, bytes in int32. */
    private static DType atomicType(DType t) {
        return switch (t) {
            case FLOAT32, FLOAT64, INT64, INT32 -> t;
            case BFLOAT16, FLOAT16 -> DType.FLOAT32;
            case UINT8, BOOL -> DType.INT32;
        };
    }

    @Override public Tensor gather(Tensor x, int dim, Tensor index) {
        int[] ishape = index.shape();
        Tensor out = newTensor(ishape, x.dtype());
        long n = index.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(x)).ptr(ptr(index)).i32(dim).i64(x.shape()[dim]).i64(n)
                    .geo(Geo.raw(ishape, x.strides(), index.strides())).ptr(errorWord()).go(dev, gather.get(x.dtype()), grid(n), BLOCK);
        }
        return out;
    }

    @Override public Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src) {
        DType t = atomicType(src.dtype());
        Tensor s = t == src.dtype() ? src : contiguous(src, t);
        Tensor out = newTensor(shape.clone(), t);
        fill(out, 0);
        long n = index.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(index)).ptr(ptr(s)).i32(dim).i64(shape[dim]).i64(n)
                    .geo(Geo.raw(index.shape(), Shape.contiguousStrides(shape), index.strides(), s.strides()))
                    .ptr(errorWord()).go(dev, scatterAdd.get(t), grid(n), BLOCK);
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

    @Override public Tensor indexSelect(Tensor x, int dim, Tensor index) {
        Tensor ic = contiguous(index);
        int[] shape = x.shape();
        shape[dim] = (int) index.numel();
        Tensor out = newTensor(shape, x.dtype());
        long n = out.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(x)).ptr(ptr(ic)).i32(dim).i64(x.shape()[dim]).i64(n)
                    .geo(Geo.raw(shape, x.strides())).ptr(errorWord()).go(dev, indexSelect.get(x.dtype()), grid(n), BLOCK);
        }
        drop(ic, index);
        return out;
    }

    @Override public Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) {
        DType t = atomicType(src.dtype());
        Tensor s = t == src.dtype() ? src : contiguous(src, t);
        Tensor ic = contiguous(index);
        Tensor out = newTensor(shape.clone(), t);
        fill(out, 0);
        long n = s.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(ic)).ptr(ptr(s)).i32(dim).i64(shape[dim]).i64(n)
                    .geo(Geo.raw(s.shape(), Shape.contiguousStrides(shape), s.strides()))
                    .ptr(errorWord()).go(dev, indexAdd.get(t), grid(n), BLOCK);
        }
        drop(s, src);
        drop(ic, index);
        return narrowBack(out, src.dtype());
    }

    // ------------------------------------------------------------------ fused kernels (optim.cu, fused.cu)

    private static void requireFloat(String op, DType t) {
        if (t != DType.FLOAT32 && t != DType.FLOAT64) throw new IllegalArgumentException(op + ": fused kernel takes float32 or float64, got " + t);
    }

    private static void requireAnyFloat(String op, DType t) {
        if (!t.isFloating()) throw new IllegalArgumentException(op + ": takes a floating-point tensor, got " + t);
    }

    /** Chunk of a multi-tensor launch, in elements: MT_CHUNK of optim.cu. */
    private static final int LIST_CHUNK = 4096;

    /**
     * The pointers, sizes and chunk prefix sums of a multi-tensor step: operands[op].get(k) is operand op of
     * parameter k (null lists stay null pointers). Checks one float dtype, matching sizes, contiguity and device.
     */
    private record TensorLists(long[][] ptrs, long[] numel, int[] chunkStart, DType dtype) {}

    private TensorLists tensorLists(String op, List<Tensor> params, List<Tensor> a, List<Tensor> b, List<Tensor> c) {
        int n = params.size();
        DType dt = n == 0 ? DType.FLOAT32 : params.get(0).dtype();
        requireFloat(op, dt);
        List<List<Tensor>> operands = Arrays.asList(params, a, b, c);   // c (and b) may be null
        long[][] ptrs = new long[4][];
        long[] numel = new long[n];
        int[] chunkStart = new int[n + 1];
        for (int o = 0; o < 4; o++) {
            List<Tensor> list = operands.get(o);
            if (list == null) continue;
            if (list.size() != n) throw new IllegalArgumentException(op + ": " + n + " parameters but " + list.size() + " tensors in operand " + o);
            ptrs[o] = new long[n];
            for (int k = 0; k < n; k++) {
                Tensor t = list.get(k), p = params.get(k);
                if (t.dtype() != dt || t.numel() != p.numel() || !t.isContiguous()) {
                    throw new IllegalArgumentException(op + ": tensor " + k + " of operand " + o + " is " + t.dtype() + " " + Shape.str(t.shape())
                            + (t.isContiguous() ? "" : " (not contiguous)") + ", expected contiguous " + dt + " " + Shape.str(p.shape()));
                }
                ptrs[o][k] = ptr(t);
            }
        }
        for (int k = 0; k < n; k++) {
            numel[k] = params.get(k).numel();
            chunkStart[k + 1] = Math.toIntExact(chunkStart[k] + (numel[k] + LIST_CHUNK - 1) / LIST_CHUNK);
        }
        return new TensorLists(ptrs, numel, chunkStart, dt);
    }

    /** Blocks for a launch over chunks [from, from + count) of the lists: one per chunk, at most 16 per SM. */
    private int listGrid(TensorLists l, int from, int count) {
        return Math.max(1, Math.min(l.chunkStart()[from + count] - l.chunkStart()[from], dev.multiprocessorCount() * 16));
    }

    @Override public void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, double lr,
                                   double beta1, double beta2, double eps, double weightDecay, boolean decoupled, long step) {
        TensorLists l = tensorLists("adam_step", params, grads, expAvg, expAvgSq);
        double stepSize = lr / (1 - Math.pow(beta1, step)), invSqrtBc2 = 1 / Math.sqrt(1 - Math.pow(beta2, step));
        double decay = decoupled ? 1 - lr * weightDecay : 1, l2 = decoupled ? 0 : weightDecay;
        // inside a capture the step count comes from the graph's replay counter: t = (step - 1) + replays so far
        long replay = dev.replayCounter();
        Kernels.Fn fn = adamStep.get(l.dtype());
        for (int from = 0; from < params.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, params.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count)
                    .f64(beta1).f64(beta2).f64(eps).f64(decay).f64(l2).f64(stepSize).f64(invSqrtBc2)
                    .ptr(replay).f64(lr).f64(step - 1)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }

    @Override public void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBufs, double lr, double momentum,
                                  double dampening, double weightDecay, boolean nesterov, boolean first) {
        TensorLists l = tensorLists("sgd_step", params, grads, momentumBufs, null);
        Kernels.Fn fn = sgdStep.get(l.dtype());
        for (int from = 0; from < params.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, params.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count)
                    .f64(lr).f64(momentum).f64(1 - dampening).f64(weightDecay)
                    .i32(nesterov ? 1 : 0).i32(first ? 1 : 0).i32(momentumBufs != null ? 1 : 0)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }

    @Override public Tensor dropout(Tensor x, double p, long key) {
        requireAnyFloat("dropout", x.dtype());
        Tensor xc = contiguous(x);
        Tensor out = newTensor(x.shape(), x.dtype());
        long n = x.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(n).i64(key).f64(p).f64(1 / (1 - p)).ptr(dev.replayCounter()).go(dev, dropout.get(x.dtype()), grid(n), BLOCK);
        }
        drop(xc, x);
        return out;
    }

    @Override public Tensor[] crossEntropyRows(Tensor logits, Tensor target, double labelSmoothing, long ignoreIndex) {
        requireFloat("cross_entropy", logits.dtype());
        Tensor xc = contiguous(logits), tc = contiguous(target);
        int rows = logits.shape()[0], c = logits.shape()[1];
        Tensor loss = newTensor(new int[]{rows}, logits.dtype()), lse = newTensor(new int[]{rows}, logits.dtype());
        if (rows > 0) {
            Launch.args().ptr(ptr(loss)).ptr(ptr(lse)).ptr(ptr(xc)).ptr(ptr(tc)).i64(rows).i64(c).f64(labelSmoothing).i64(ignoreIndex)
                    .ptr(errorWord()).go(dev, ceRowsFwd.get(logits.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(c));
        }
        drop(xc, logits);
        drop(tc, target);
        return new Tensor[]{loss, lse};
    }

    @Override public Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex) {
        requireAnyFloat("mean", values.dtype());
        Tensor vc = contiguous(values), tc = contiguous(target);
        Tensor mean = newTensor(new int[0], values.dtype()), count = newTensor(new int[0], values.dtype());
        long n = values.numel();
        Launch.args().ptr(ptr(mean)).ptr(ptr(count)).ptr(ptr(vc)).ptr(ptr(tc)).i64(n).i64(ignoreIndex)
                .go(dev, meanKept.get(values.dtype()), 1, rowThreads(n));
        drop(vc, values);
        drop(tc, target);
        return new Tensor[]{mean, count};
    }

    @Override public Tensor crossEntropyRowsBackward(Tensor logits, Tensor target, Tensor logSumExp, Tensor gradRows,
                                                     double labelSmoothing, long ignoreIndex) {
        requireFloat("cross_entropy", logits.dtype());
        Tensor xc = contiguous(logits), tc = contiguous(target), lc = contiguous(logSumExp);
        Tensor g = gradRows.dtype() == logits.dtype() ? gradRows : contiguous(gradRows, logits.dtype());
        int rows = logits.shape()[0], c = logits.shape()[1];
        Tensor gx = newTensor(logits.shape(), logits.dtype());
        long n = (long) rows * c;
        if (n > 0) {
            Launch.args().ptr(ptr(gx)).ptr(ptr(xc)).ptr(ptr(tc)).ptr(ptr(lc)).ptr(ptr(g)).i64(g.strides()[0]).i64(rows).i64(c)
                    .f64(labelSmoothing).i64(ignoreIndex).go(dev, ceRowsBwd.get(logits.dtype()), grid(n), BLOCK);
        }
        drop(xc, logits);
        drop(tc, target);
        drop(lc, logSumExp);
        drop(g, gradRows);
        return gx;
    }
}
