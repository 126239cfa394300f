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
    private final Kernels.Table fill, copy, unary, binary, compare, binaryScalar, compareScalar, where;
    /** 16-bit contiguous maps and float32 <-> 16-bit casts: defined for those types only. */
    private final Kernels.Table unaryContig, binaryContig, castContig;
    private final Kernels.Single unaryF32Contig, binaryF32Contig;
    /** Contiguous 16-bit kernels with the op compiled in: the activations and their backward codes. */
    private final java.util.Map<UnaryOp, Kernels.Table> activation = new java.util.EnumMap<>(UnaryOp.class);
    private final java.util.Map<BinaryOp, Kernels.Table> activationBackward = new java.util.EnumMap<>(BinaryOp.class);

    ElementwiseCuda(CudaBackend backend) {
        super(backend);
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
        Launch.args().ptr(ptr(dst)).ptr(ptr(src)).i64(n).geo(Geo.of(dst.shape(), dst, src))
                .go(dev, copy.get(dst.dtype(), src.dtype()), grid(n), BLOCK);
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
        Kernels.Fn fn = cmp ? compareScalar.get(a.dtype()) : binaryScalar.get(a.dtype());
        Launch.args().i32(op.ordinal()).ptr(ptr(out)).ptr(ptr(a)).f64(s).i32(scalarFirst ? 1 : 0).i64(n).geo(Geo.of(a.shape(), a))
                .go(dev, fn, grid(n), BLOCK);
        return out;
    }

    Tensor where(Tensor cond, Tensor a, Tensor b) {
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
