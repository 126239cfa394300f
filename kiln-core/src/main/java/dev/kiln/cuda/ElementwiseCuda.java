package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.UnaryOp;

/**
 * Fill, copy, unary and binary maps and where on CUDA (elementwise.cu); contiguous float maps and the contiguous casts between
 * float32 and the 16-bit floats take vectorised kernels (16-byte accesses).
 */
final class ElementwiseCuda extends CudaFamily {
    private final Kernels.Table fill, copy, transpose, unary, binary, compare, binaryScalar, compareScalar, where, wherePeriodic;
    /** 16-bit contiguous maps and float32 <-> 16-bit casts: defined for those types only; the scalar map for float types. */
    private final Kernels.Table unaryContig, binaryContig, castContig, binaryScalarContig;
    private final Kernels.Single unaryF32Contig, binaryF32Contig;
    /** Contiguous 16-bit kernels with the op compiled in: the activations and their backward codes. */
    private final java.util.Map<UnaryOp, Kernels.Table> activation = new java.util.EnumMap<>(UnaryOp.class);
    private final java.util.Map<BinaryOp, Kernels.Table> activationBackward = new java.util.EnumMap<>(BinaryOp.class);

    ElementwiseCuda(CudaBackend backend) {
        super(backend);
        fill = new Kernels.Table(dev, "elementwise.cu", "fill");
        copy = new Kernels.Table(dev, "elementwise.cu", "copy", true);
        transpose = new Kernels.Table(dev, "elementwise.cu", "transpose", true);
        unary = new Kernels.Table(dev, "elementwise.cu", "unary");
        binary = new Kernels.Table(dev, "elementwise.cu", "binary");
        compare = new Kernels.Table(dev, "elementwise.cu", "compare");
        binaryScalar = new Kernels.Table(dev, "elementwise.cu", "binary_scalar");
        binaryScalarContig = new Kernels.Table(dev, "elementwise.cu", "binary_scalar_contig");
        wherePeriodic = new Kernels.Table(dev, "elementwise.cu", "where_periodic");
        compareScalar = new Kernels.Table(dev, "elementwise.cu", "compare_scalar");
        where = new Kernels.Table(dev, "elementwise.cu", "where");
        unaryF32Contig = new Kernels.Single(dev, "elementwise.cu", "unary_f32_contig");
        binaryF32Contig = new Kernels.Single(dev, "elementwise.cu", "binary_f32_contig");
        unaryContig = new Kernels.Table(dev, "elementwise.cu", "unary_contig");
        binaryContig = new Kernels.Table(dev, "elementwise.cu", "binary_contig");
        castContig = new Kernels.Table(dev, "elementwise.cu", "copy_contig", true);
        for (UnaryOp op : new UnaryOp[]{UnaryOp.GELU, UnaryOp.GELU_TANH, UnaryOp.SILU, UnaryOp.RELU}) {
            String name = op.name().toLowerCase(java.util.Locale.ROOT);
            activation.put(op, new Kernels.Table(dev, "elementwise.cu", "unary_contig_" + name));
            activationBackward.put(BinaryOp.valueOf(op.name() + "_BACKWARD"), new Kernels.Table(dev, "elementwise.cu", "binary_contig_" + name + "_backward"));
        }
    }

    void fill(Tensor out, double value) {
        long n = out.numel();
        if (n == 0) return;
        if (value == 0 && Double.doubleToRawLongBits(value) == 0 && out.isContiguous()) {
            dev.zero(ptr(out), n * out.dtype().byteSize());
            return;
        }
        Launch.args().ptr(ptr(out)).f64(value).i64(n).geo(Geo.of(out.shape(), out)).go(dev, fill.get(out.dtype()), grid(n), BLOCK);
    }

    void copy(Tensor dst, Tensor src) {
        long n = dst.numel();
        if (n == 0) return;
        if (!src.device().equals(dst.device())) {
            throw new IllegalArgumentException("copy: expected tensors on one device, got " + dst.device() + " and " + src.device());
        }
        if (dst.dtype() == src.dtype() && dst.isContiguous() && src.isContiguous()) {
            dev.copyDeviceToDevice(ptr(src), ptr(dst), n * dst.dtype().byteSize());
            return;
        }
        if (isCast16(dst.dtype(), src.dtype()) && dst.isContiguous() && src.isContiguous() && aligned16(ptr(dst), ptr(src))) {
            Launch.args().ptr(ptr(dst)).ptr(ptr(src)).i64(n).go(dev, castContig.get(dst.dtype(), src.dtype()), grid((n + 7) / 8), BLOCK);
            return;
        }
        if (dst.isChannelsLast() && java.util.Arrays.equals(dst.strides(), src.strides()) && n <= Integer.MAX_VALUE) {   // one dense layout
            copy(flat(dst), flat(src));
            return;
        }
        long[] bpq = batchedTranspose(dst, src);
        if (bpq != null) {
            // tiles of at most 1024 elements (the kernel's 256 threads x 4): a side below 32 whole, the other stretched
            int p = (int) bpq[1], q = (int) bpq[2];
            int tp = q < 32 ? 32 * (32 / q) : Math.min(p, 32), tq = q < 32 ? q : p < 32 ? 32 * (32 / p) : 32;
            long tiles = (long) ((p + tp - 1) / tp) * ((q + tq - 1) / tq);
            if (tiles <= Integer.MAX_VALUE) {
                Launch.args().ptr(ptr(dst)).ptr(ptr(src)).i64(bpq[0]).i32(p).i32(q).i32(tp).i32(tq)
                        .go(dev, transpose.get(dst.dtype(), src.dtype()), (int) tiles, (int) Math.min(bpq[0], 65535), 1, 256, 0);
                return;
            }
        }
        Launch.args().ptr(ptr(dst)).ptr(ptr(src)).i64(n).geo(Geo.of(dst.shape(), dst, src))
                .go(dev, copy.get(dst.dtype(), src.dtype()), grid(n), BLOCK);
    }

    /**
     * {B, P, Q} when dst and src are both dense and, with dst's dimensions in its memory order, src holds the same
     * (batch, X, Y) elements in the order (batch, Y, X): dst's memory is then (B, P, Q) and src's (B, Q, P), a batched
     * transpose (NCHW <-> channels-last: X = C, Y = H, W or the reverse). Null for any other pair.
     */
    static long[] batchedTranspose(Tensor dst, Tensor src) {
        int[] shape = dst.shape(), ds = dst.strides(), ss = src.strides();
        int m = 0;
        for (int size : shape) if (size > 1) m++;
        if (m < 2) return null;
        Integer[] order = new Integer[m];
        for (int d = 0, k = 0; d < shape.length; d++) if (shape[d] > 1) order[k++] = d;
        java.util.Arrays.sort(order, (a, b) -> Long.compare(ds[b], ds[a]));   // dst's memory order, outermost first
        long[] n = new long[m], t = new long[m];
        long stride = 1;
        for (int k = m - 1; k >= 0; k--) {
            if (ds[order[k]] != stride) return null;   // dst not dense
            n[k] = shape[order[k]];
            t[k] = ss[order[k]];
            stride *= n[k];
        }
        for (int a = 0; a < m - 1; a++) {
            for (int c = a + 1; c < m; c++) {
                if (denseInOrder(n, t, a, c)) {
                    long b = 1, p = 1, q = 1;
                    for (int k = 0; k < a; k++) b *= n[k];
                    for (int k = a; k < c; k++) p *= n[k];
                    for (int k = c; k < m; k++) q *= n[k];
                    return p <= Integer.MAX_VALUE && q <= Integer.MAX_VALUE ? new long[]{b, p, q} : null;
                }
            }
        }
        return null;
    }

    /** Whether strides t are those of sizes n laid out densely in the order [0, a), [c, m), [a, c). */
    private static boolean denseInOrder(long[] n, long[] t, int a, int c) {
        int m = n.length;
        long stride = 1;
        for (int k = c - 1; k >= a; k--) { if (t[k] != stride) return false; stride *= n[k]; }
        for (int k = m - 1; k >= c; k--) { if (t[k] != stride) return false; stride *= n[k]; }
        for (int k = a - 1; k >= 0; k--) { if (t[k] != stride) return false; stride *= n[k]; }
        return true;
    }

    /** t's elements as the 1-D run of memory they fill (t dense: contiguous or channels-last). */
    private static Tensor flat(Tensor t) { return new Tensor(t.storage(), new int[]{(int) t.numel()}, new int[]{1}, t.offset()); }

    /** A flat result laid out channels-last as (N, C, H, W) shape. */
    private static Tensor asChannelsLast(Tensor flat, int[] shape) {
        return new Tensor(flat.storage(), shape, Shape.channelsLastStrides(shape), flat.offset());
    }

    /** Whether the maps run flat over channels-last memory: each input channels-last and one of them not also contiguous. */
    private static boolean flatChannelsLast(Tensor a, Tensor b) {
        return a.isChannelsLast() && b.isChannelsLast() && (flatChannelsLast(a) || flatChannelsLast(b));
    }

    private static boolean flatChannelsLast(Tensor t) { return t.prefersChannelsLast() && t.numel() <= Integer.MAX_VALUE; }

    Tensor unary(UnaryOp op, Tensor x) {
        if (flatChannelsLast(x)) return asChannelsLast(unary(op, flat(x)), x.shape());
        Tensor out = newTensor(x.shape(), x.dtype());
        long n = x.numel();
        if (n == 0) return out;
        long o = ptr(out), a = ptr(x);
        if (x.dtype() == DType.FLOAT32 && x.isContiguous() && aligned16(o, a)) {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(a).i64(n).go(dev, unaryF32Contig.get(), grid((n + 3) / 4), BLOCK);
        } else if (is16(x.dtype()) && x.isContiguous() && aligned16(o, a) && activation.containsKey(op)) {
            Launch.args().ptr(o).ptr(a).i64(n).go(dev, activation.get(op).get(x.dtype()), grid((n + 7) / 8), BLOCK);
        } else if (is16(x.dtype()) && x.isContiguous() && aligned16(o, a)) {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(a).i64(n).go(dev, unaryContig.get(x.dtype()), grid((n + 7) / 8), BLOCK);
        } else {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(a).i64(n).geo(Geo.of(x.shape(), x)).go(dev, unary.get(x.dtype()), grid(n), BLOCK);
        }
        return out;
    }

    private static boolean boolResult(BinaryOp op) { return op.isComparison() || op == BinaryOp.AND || op == BinaryOp.OR; }

    Tensor binary(BinaryOp op, Tensor a, Tensor b) {
        if (flatChannelsLast(a, b)) return asChannelsLast(binary(op, flat(a), flat(b)), a.shape());
        boolean cmp = boolResult(op);
        Tensor out = newTensor(a.shape(), cmp ? DType.BOOL : a.dtype());
        long n = a.numel();
        if (n == 0) return out;
        long o = ptr(out), pa = ptr(a), pb = ptr(b);
        if (!cmp && a.dtype() == DType.FLOAT32 && a.isContiguous() && b.isContiguous() && aligned16(o, pa, pb)) {
            Launch.args().i32(op.ordinal()).ptr(o).ptr(pa).ptr(pb).i64(n).go(dev, binaryF32Contig.get(), grid((n + 3) / 4), BLOCK);
            return out;
        }
        if (!cmp && is16(a.dtype()) && a.isContiguous() && b.isContiguous() && aligned16(o, pa, pb)) {
            Kernels.Table fixed = activationBackward.get(op);
            if (fixed != null) Launch.args().ptr(o).ptr(pa).ptr(pb).i64(n).go(dev, fixed.get(a.dtype()), grid((n + 7) / 8), BLOCK);
            else Launch.args().i32(op.ordinal()).ptr(o).ptr(pa).ptr(pb).i64(n).go(dev, binaryContig.get(a.dtype()), grid((n + 7) / 8), BLOCK);
            return out;
        }
        Kernels.Fn fn = cmp ? compare.get(a.dtype()) : binary.get(a.dtype());
        Launch.args().i32(op.ordinal()).ptr(o).ptr(pa).ptr(pb).i64(n).geo(Geo.of(a.shape(), a, b)).go(dev, fn, grid(n), BLOCK);
        return out;
    }

    Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst) {
        if (flatChannelsLast(a)) return asChannelsLast(binaryScalar(op, flat(a), s, scalarFirst), a.shape());
        boolean cmp = boolResult(op);
        Tensor out = newTensor(a.shape(), cmp ? DType.BOOL : a.dtype());
        long n = a.numel();
        if (n == 0) return out;
        if (!cmp && a.dtype().isFloating() && a.isContiguous() && aligned16(ptr(out), ptr(a))) {
            Launch.args().i32(op.ordinal()).ptr(ptr(out)).ptr(ptr(a)).f64(s).i32(scalarFirst ? 1 : 0).i64(n)
                    .go(dev, binaryScalarContig.get(a.dtype()), grid((n * a.dtype().byteSize() + 15) / 16), BLOCK);
            return out;
        }
        Kernels.Fn fn = cmp ? compareScalar.get(a.dtype()) : binaryScalar.get(a.dtype());
        Launch.args().i32(op.ordinal()).ptr(ptr(out)).ptr(ptr(a)).f64(s).i32(scalarFirst ? 1 : 0).i64(n).geo(Geo.of(a.shape(), a))
                .go(dev, fn, grid(n), BLOCK);
        return out;
    }

    Tensor where(Tensor cond, Tensor a, Tensor b) {
        Tensor c = cond.dtype() == DType.BOOL ? cond : contiguous(cond, DType.BOOL);
        Tensor out = newTensor(a.shape(), a.dtype());
        long n = a.numel();
        long pc = period(c), pa = period(a), pb = period(b);
        if (n > 0 && pc > 0 && pa > 0 && pb > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(c)).ptr(ptr(a)).ptr(ptr(b)).i64(n).i64(pc).i64(pa).i64(pb)
                    .go(dev, wherePeriodic.get(a.dtype()), grid(n), BLOCK);
        } else if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(c)).ptr(ptr(a)).ptr(ptr(b)).i64(n).geo(Geo.of(a.shape(), c, a, b))
                    .go(dev, where.get(a.dtype()), grid(n), BLOCK);
        }
        drop(c, cond);
        return out;
    }

    /**
     * The period with which x's elements repeat in row-major order, when x is a contiguous block of trailing dims
     * broadcast over the leading ones (stride 0): the block's size (numel for a contiguous x, 1 for a scalar); 0 otherwise.
     */
    private static long period(Tensor x) {
        int[] shape = x.shape(), st = x.strides();
        long block = 1;
        int d = shape.length - 1;
        for (; d >= 0 && (shape[d] == 1 || st[d] == block); d--) block *= shape[d];   // the contiguous trailing block
        for (; d >= 0; d--) if (shape[d] != 1 && st[d] != 0) return 0;            // broadcast above it, or not periodic
        return block;
    }

    private static boolean is16(DType t) { return t == DType.BFLOAT16 || t == DType.FLOAT16; }

    private static boolean isCast16(DType dst, DType src) {
        return dst == DType.FLOAT32 && is16(src) || src == DType.FLOAT32 && is16(dst);
    }

    private static boolean aligned16(long... ptrs) {
        long or = 0;
        for (long p : ptrs) or |= p;
        return (or & 15) == 0;
    }
}
