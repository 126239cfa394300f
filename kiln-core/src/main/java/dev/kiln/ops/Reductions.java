package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;
import dev.kiln.backend.ReduceOp;

import java.util.Arrays;
import java.util.TreeSet;

import static dev.kiln.Backends.get;

/** Reductions over dimensions (sum, mean, max, min, var, argmax/argmin), running sums (cumsum), and their gradients. */
public final class Reductions {
    private Reductions() {}

    /** Sorted distinct dimensions; null means all. */
    static int[] normDims(Tensor x, int[] dims, String op) {
        if (dims == null) {
            int[] all = new int[x.dim()];
            for (int i = 0; i < all.length; i++) all[i] = i;
            return all;
        }
        TreeSet<Integer> set = new TreeSet<>();
        for (int d : dims) {
            if (!set.add(Shape.dim(d, x.dim(), op))) throw new IllegalArgumentException(op + ": dimension " + d + " repeats");
        }
        return set.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The shape with the reduced dimensions kept as size 1. */
    static int[] keptShape(int[] shape, int[] dims) {
        int[] k = shape.clone();
        for (int d : dims) k[d] = 1;
        return k;
    }

    public static Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim) {
        if (op == ReduceOp.SUM) x = Autocast.cast(AutocastPolicy.SUM, x);
        String name = op.name().toLowerCase();
        int[] ds = normDims(x, dims, name);
        if (op != ReduceOp.SUM) {
            for (int d : ds) {
                if (x.shape()[d] == 0) throw new IllegalArgumentException(name + ": cannot reduce an empty dimension " + d);
            }
        }
        Tensor in = x;
        if (op == ReduceOp.SUM && x.dtype() == DType.BOOL) in = Elementwise.cast(x, DType.INT64);
        Tensor out = reduceSplit(get(x.device()), op, in, ds, keepdim);
        int[] inShape = x.shape();
        int[] kept = keptShape(inShape, ds);
        Tensor src = in;
        return Autograd.record(name, out, g -> {
            Tensor gk = g.reshape(kept);
            return switch (op) {
                case SUM -> new Tensor[]{gk.expand(inShape)};
                case MAX, MIN -> {
                    // the gradient goes to the extreme elements, shared evenly between ties
                    Tensor mask = Elementwise.cast(src.eq(out.reshape(kept)), g.dtype());
                    Tensor count = mask.sum(ds, true);
                    yield new Tensor[]{mask.mul(gk.div(count))};
                }
            };
        }, in);
    }

    /**
     * Reduced dims in front of a kept one and at the end (a conv bias gradient: N, H, W of NCHW) make a backend
     * transpose the whole tensor into a copy. Reducing the contiguous trailing block first, then the rest of the much
     * smaller result, reads the input once. Backend primitives only: this is not a recorded op.
     */
    private static Tensor reduceSplit(Backend be, ReduceOp op, Tensor x, int[] dims, boolean keepdim) {
        int r = x.dim();
        int suffix = r;
        while (suffix > 0 && java.util.Arrays.binarySearch(dims, suffix - 1) >= 0) suffix--;
        if (!x.isContiguous() || x.numel() == 0 || suffix == 0 || suffix == r || dims.length == r - suffix) {
            return be.reduce(op, x, dims, keepdim);
        }
        int kept = suffix;
        Tensor partial = be.reduce(op, x, java.util.stream.IntStream.range(kept, r).toArray(), false);
        Tensor res = be.reduce(op, partial, java.util.Arrays.stream(dims).filter(d -> d < kept).toArray(), false);
        partial.close();
        return keepdim ? new Tensor(res.storage(), keptShape(x.shape(), dims)) : res;
    }

    public static Tensor mean(Tensor x, int[] dims, boolean keepdim) {
        int[] ds = normDims(x, dims, "mean");
        x = Autocast.cast(AutocastPolicy.MEAN, x);
        Tensor xf = x.dtype().isFloating() ? x : Elementwise.cast(x, DType.FLOAT32);
        long n = 1;
        for (int d : ds) n *= x.shape()[d];
        return reduce(ReduceOp.SUM, xf, ds, keepdim).div(Math.max(n, 1));
    }

    public static Tensor var(Tensor x, int[] dims, boolean unbiased, boolean keepdim) {
        int[] ds = normDims(x, dims, "var");
        x = Autocast.cast(AutocastPolicy.VAR, x);
        long n = 1;
        for (int d : ds) n *= x.shape()[d];
        Tensor centred = x.sub(mean(x, ds, true));
        Tensor ss = reduce(ReduceOp.SUM, centred.mul(centred), ds, keepdim);
        return ss.div(Math.max(unbiased ? n - 1 : n, 1));
    }

    public static Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim) {
        String name = max ? "argmax" : "argmin";
        int d = Shape.dim(dim, x.dim(), name);
        if (x.dim() > 0 && x.shape()[d] == 0) throw new IllegalArgumentException(name + ": cannot reduce an empty dimension " + d);
        return get(x.device()).argReduce(max, x, d, keepdim);
    }

    /**
     * Running sums along dim, as PyTorch's cumsum: out[.., j, ..] = x[.., 0, ..] + ... + x[.., j, ..]. Bool and integer
     * inputs sum as int64; floating ones keep their dtype (summed in double on both backends; float32 under autocast).
     */
    public static Tensor cumsum(Tensor x, int dim) {
        x = Autocast.cast(AutocastPolicy.SUM, x);
        int d = Shape.dim(dim, x.dim(), "cumsum");
        Tensor in = x.dtype().isFloating() || x.dtype() == DType.INT64 ? x : Elementwise.cast(x, DType.INT64);
        return cumsum(in, d, false);
    }

    /** The recorded op; the gradient of running sums is the running sums of the gradient from the other end. */
    private static Tensor cumsum(Tensor x, int d, boolean reverse) {
        Tensor out = get(x.device()).cumsum(x, d, reverse);
        return Autograd.record("cumsum", out, g -> new Tensor[]{cumsum(g, d, !reverse)}, x);
    }

    /** Sums g down to target, the shape it was broadcast from. */
    public static Tensor sumTo(Tensor g, int[] target) {
        int[] s = g.shape();
        if (Arrays.equals(s, target)) return g;
        int lead = s.length - target.length;
        if (lead < 0 || Shape.broadcast(s, target) == null) {
            throw new IllegalArgumentException("sumTo: shape " + Shape.str(s) + " does not broadcast from " + Shape.str(target));
        }
        int count = 0;
        int[] dims = new int[s.length];
        for (int i = 0; i < s.length; i++) {
            if (i < lead || (target[i - lead] == 1 && s[i] != 1)) dims[count++] = i;
        }
        Tensor r = count == 0 ? g : reduce(ReduceOp.SUM, g, Arrays.copyOf(dims, count), true);
        return r.reshape(target);
    }
}
