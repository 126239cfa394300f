package dev.kiln.ops;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Ops that change how memory is viewed (no copy) or assemble tensors: reshape, transpose, slices, expand, cat. */
public final class Views {
    private Views() {}

    private static Tensor viewOf(Tensor t, int[] shape, int[] strides, int offset) {
        return new Tensor(t.storage(), shape, strides, offset);
    }

    // ---------------------------------------------------------------- reshape

    public static Tensor reshape(Tensor t, int[] requested) {
        int[] shape = inferShape(t, requested);
        int[] oldShape = t.shape();
        if (Arrays.equals(shape, oldShape)) return t;
        Tensor base = t.isContiguous() ? t : contiguousRaw(t);
        Tensor out = viewOf(base, shape, Shape.contiguousStrides(shape), base.offset());
        return Autograd.record("reshape", out, g -> new Tensor[]{g.reshape(oldShape)}, t);
    }

    private static int[] inferShape(Tensor t, int[] requested) {
        int[] shape = requested.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == -1) {
                if (infer >= 0) throw new IllegalArgumentException("reshape: only one dimension can be -1, got " + Shape.str(requested));
                infer = i;
            } else if (shape[i] < 0) {
                throw new IllegalArgumentException("reshape: invalid dimension " + shape[i] + " in " + Shape.str(requested));
            } else {
                known *= shape[i];
            }
        }
        long n = t.numel();
        if (infer >= 0) {
            if (known == 0 || n % known != 0) {
                throw new IllegalArgumentException("reshape: shape " + Shape.str(requested) + " is invalid for input of size " + n);
            }
            shape[infer] = (int) (n / known);
        } else if (known != n) {
            throw new IllegalArgumentException("reshape: shape " + Shape.str(requested) + " is invalid for input of shape "
                    + Shape.str(t.shape()) + " (" + n + " elements)");
        }
        return shape;
    }

    public static Tensor flatten(Tensor t, int start, int end) {
        int r = t.dim();
        if (r == 0) return t.reshape(1);
        int s = Shape.dim(start, r, "flatten"), e = Shape.dim(end, r, "flatten");
        if (s > e) throw new IllegalArgumentException("flatten: start dim " + start + " is after end dim " + end);
        int[] shape = t.shape();
        int[] out = new int[r - (e - s)];
        int k = 0;
        for (int i = 0; i < s; i++) out[k++] = shape[i];
        int m = 1;
        for (int i = s; i <= e; i++) m *= shape[i];
        out[k++] = m;
        for (int i = e + 1; i < r; i++) out[k++] = shape[i];
        return reshape(t, out);
    }

    // ---------------------------------------------------------------- transpose, permute

    public static Tensor transpose(Tensor t, int d0, int d1) {
        int r = t.dim();
        int a = Shape.dim(d0, r, "transpose"), b = Shape.dim(d1, r, "transpose");
        if (a == b) return t;
        int[] p = new int[r];
        for (int i = 0; i < r; i++) p[i] = i;
        p[a] = b;
        p[b] = a;
        return permute(t, p);
    }

    public static Tensor permute(Tensor t, int[] dims) {
        int r = t.dim();
        if (dims.length != r) {
            throw new IllegalArgumentException("permute: got " + dims.length + " dims for a tensor of rank " + r);
        }
        int[] shape = t.shape(), strides = t.strides();
        int[] ns = new int[r], nst = new int[r], inverse = new int[r];
        boolean[] seen = new boolean[r];
        for (int i = 0; i < r; i++) {
            int d = Shape.dim(dims[i], r, "permute");
            if (seen[d]) throw new IllegalArgumentException("permute: dimension " + d + " repeats in " + Arrays.toString(dims));
            seen[d] = true;
            ns[i] = shape[d];
            nst[i] = strides[d];
            inverse[d] = i;
        }
        Tensor out = viewOf(t, ns, nst, t.offset());
        return Autograd.record("permute", out, g -> new Tensor[]{g.permute(inverse)}, t);
    }

    // ---------------------------------------------------------------- slicing

    public static Tensor narrow(Tensor t, int dim, int start, int length) { return slice(t, dim, start, start + length, 1); }

    public static Tensor slice(Tensor t, int dim, int start, int end, int step) {
        int d = Shape.dim(dim, t.dim(), "slice");
        int size = t.shape()[d];
        if (step < 1) throw new IllegalArgumentException("slice: step must be >= 1, got " + step);
        if (start < 0) start += size;
        if (end < 0) end += size;
        end = Math.min(end, size);
        if (start < 0 || start > size || end < start) {
            throw new IllegalArgumentException("slice: range [" + start + ", " + end + ") is out of bounds for dimension " + d
                    + " of size " + size + " (shape " + Shape.str(t.shape()) + ")");
        }
        Tensor out = sliceRaw(t, d, start, end, step);
        int s0 = start;
        int[] inShape = t.shape();
        return Autograd.record("slice", out, g -> {
            Tensor full = Tensor.zeros(inShape, g.dtype(), g.device());
            Backends.get(g.device()).copy(sliceRaw(full, d, s0, s0 + (g.shape()[d] - 1) * step + 1, step), g);
            return new Tensor[]{full};
        }, t);
    }

    /** The slice view without autograd. */
    public static Tensor sliceRaw(Tensor t, int d, int start, int end, int step) {
        int[] shape = t.shape(), strides = t.strides();
        int len = Math.max(0, (end - start + step - 1) / step);
        int offset = t.offset() + start * strides[d];
        shape[d] = len;
        strides[d] = strides[d] * step;
        return viewOf(t, shape, strides, offset);
    }

    public static Tensor select(Tensor t, int dim, int index) {
        int d = Shape.dim(dim, t.dim(), "select");
        int size = t.shape()[d];
        int i = index < 0 ? index + size : index;
        if (i < 0 || i >= size) {
            throw new IllegalArgumentException("select: index " + index + " is out of bounds for dimension " + d + " of size " + size);
        }
        return slice(t, d, i, i + 1, 1).squeeze(d);
    }

    // ---------------------------------------------------------------- expand, squeeze

    public static Tensor expand(Tensor t, int[] shape) {
        Tensor out = expandRaw(t, shape);
        if (out == t) return t;
        int[] inShape = t.shape();
        return Autograd.record("expand", out, g -> new Tensor[]{g.sumTo(inShape)}, t);
    }

    /** A stride-0 view of t broadcast to shape, without autograd (the op layer's broadcasting). */
    public static Tensor expandRaw(Tensor t, int[] shape) {
        int[] s = t.shape(), st = t.strides();
        if (Arrays.equals(s, shape)) return t;
        int n = shape.length, lead = n - s.length;
        if (lead < 0) {
            throw new IllegalArgumentException("expand: cannot expand shape " + Shape.str(s) + " to fewer dimensions " + Shape.str(shape));
        }
        int[] ns = new int[n];
        for (int i = 0; i < n; i++) {
            int target = shape[i] == -1 && i >= lead ? s[i - lead] : shape[i];
            if (i < lead) {
                ns[i] = 0;
            } else if (s[i - lead] == target) {
                ns[i] = st[i - lead];
            } else if (s[i - lead] == 1) {
                ns[i] = 0;
            } else {
                throw new IllegalArgumentException("expand: shape " + Shape.str(s) + " cannot be expanded to " + Shape.str(shape));
            }
        }
        int[] out = shape.clone();
        for (int i = lead; i < n; i++) if (out[i] == -1) out[i] = s[i - lead];
        return viewOf(t, out, ns, t.offset());
    }

    public static Tensor squeeze(Tensor t, int dim) {
        int d = Shape.dim(dim, t.dim(), "squeeze");
        if (t.shape()[d] != 1) return t;
        int[] s = t.shape(), st = t.strides();
        int[] ns = new int[s.length - 1], nst = new int[s.length - 1];
        for (int i = 0, k = 0; i < s.length; i++) {
            if (i == d) continue;
            ns[k] = s[i];
            nst[k++] = st[i];
        }
        Tensor out = viewOf(t, ns, nst, t.offset());
        int[] inShape = t.shape();
        return Autograd.record("squeeze", out, g -> new Tensor[]{g.reshape(inShape)}, t);
    }

    public static Tensor squeezeAll(Tensor t) {
        List<Integer> keep = new ArrayList<>();
        for (int i = 0; i < t.dim(); i++) if (t.shape()[i] != 1) keep.add(t.shape()[i]);
        return reshape(t, keep.stream().mapToInt(Integer::intValue).toArray());
    }

    public static Tensor unsqueeze(Tensor t, int dim) {
        int r = t.dim();
        int d = dim < 0 ? dim + r + 1 : dim;
        if (d < 0 || d > r) throw new IllegalArgumentException("unsqueeze: dimension " + dim + " out of range for rank " + r);
        int[] s = t.shape(), st = t.strides();
        int[] ns = new int[r + 1], nst = new int[r + 1];
        for (int i = 0, k = 0; i <= r; i++) {
            if (i == d) {
                ns[i] = 1;
                nst[i] = d < r ? st[d] * s[d] : 1;
            } else {
                ns[i] = s[k];
                nst[i] = st[k++];
            }
        }
        Tensor out = viewOf(t, ns, nst, t.offset());
        int[] inShape = t.shape();
        return Autograd.record("unsqueeze", out, g -> new Tensor[]{g.reshape(inShape)}, t);
    }

    // ---------------------------------------------------------------- copies

    public static Tensor contiguous(Tensor t) {
        Tensor out = contiguousRaw(t);
        return Autograd.record("contiguous", out, g -> new Tensor[]{g}, t);
    }

    /**
     * PyTorch's constant pad: pad holds (before, after) pairs from the last dimension backwards; a negative amount
     * crops. value fills what is added. Composed of narrow and cat, so the gradient is theirs.
     */
    public static Tensor pad(Tensor t, int[] pad, double value) {
        if (pad.length % 2 != 0 || pad.length / 2 > t.dim()) {
            throw new IllegalArgumentException("pad: expected (before, after) pairs for at most " + t.dim() + " dimensions, got " + Arrays.toString(pad));
        }
        Tensor out = t;
        for (int i = 0; i < pad.length / 2; i++) {
            int d = t.dim() - 1 - i, before = pad[2 * i], after = pad[2 * i + 1], size = out.size(d);
            if (size + Math.min(before, 0) + Math.min(after, 0) < 0) {
                throw new IllegalArgumentException("pad: cropping " + Arrays.toString(pad) + " leaves dimension " + d + " of " + Shape.str(t.shape()) + " below 0");
            }
            if (before < 0 || after < 0) out = narrow(out, d, -Math.min(before, 0), size + Math.min(before, 0) + Math.min(after, 0));
            List<Tensor> parts = new java.util.ArrayList<>(3);
            for (int side = 0; side < 2; side++) {
                int amount = side == 0 ? before : after;
                if (amount <= 0) continue;
                int[] shape = out.shape();
                shape[d] = amount;
                parts.add(side == 0 ? 0 : parts.size(), Tensor.full(shape, value, out.dtype(), out.device()));
            }
            if (!parts.isEmpty()) {
                parts.add(before > 0 ? 1 : 0, out);
                out = cat(parts, d);
            }
        }
        return out;
    }

    /** Nearest-neighbour upsampling of (N, C, H, W) by whole factors: each pixel repeated scaleH x scaleW times. */
    public static Tensor upsampleNearest(Tensor t, int scaleH, int scaleW) {
        if (t.dim() != 4) throw new IllegalArgumentException("upsample_nearest2d: expected (N, C, H, W), got " + Shape.str(t.shape()));
        if (scaleH < 1 || scaleW < 1) throw new IllegalArgumentException("upsample_nearest2d: scale factors must be >= 1, got " + scaleH + "x" + scaleW);
        int n = t.size(0), c = t.size(1), h = t.size(2), w = t.size(3);
        return reshape(expand(reshape(t, new int[]{n, c, h, 1, w, 1}), new int[]{n, c, h, scaleH, w, scaleW}), new int[]{n, c, h * scaleH, w * scaleW});
    }

    /**
     * t's values in dtype, laid out channels-last (one copy that casts too); the gradient comes back in t's dtype and
     * layout, contiguous or channels-last (so a parameter's gradient keeps the parameter's layout).
     */
    public static Tensor toChannelsLast(Tensor t, DType dtype) {
        int[] shape = t.shape();
        Tensor out = new Tensor(Backends.get(t.device()).allocate(dtype, t.numel()), shape, Shape.channelsLastStrides(shape), 0);
        Backends.get(t.device()).copy(out, t);
        DType source = t.dtype();
        boolean sourceCl = t.prefersChannelsLast();   // the gradient goes back in the source's layout (a cast's backward)
        return Autograd.record("to_channels_last", out, g -> {
            if (g.dtype() == source && (sourceCl ? g.isChannelsLast() : g.isContiguous())) return new Tensor[]{g};
            Tensor back = sourceCl ? new Tensor(Backends.get(g.device()).allocate(source, g.numel()), shape, Shape.channelsLastStrides(shape), 0)
                    : Tensor.empty(shape, source, g.device());
            Backends.get(g.device()).copy(back, g);
            return new Tensor[]{back};
        }, t);
    }

    static Tensor contiguousRaw(Tensor t) {
        Tensor out = Tensor.empty(t.shape(), t.dtype(), t.device());
        Backends.get(t.device()).copy(out, t);
        return out;
    }

    public static Tensor toDevice(Tensor t, Device device) {
        Object host = Backends.get(t.device()).toHost(t);
        Tensor out = Backends.get(device).fromHost(host, t.dtype(), t.shape());
        Device source = t.device();
        return Autograd.record("to_" + device, out, g -> new Tensor[]{g.to(source)}, t);
    }

    public static Tensor cat(List<Tensor> tensors, int dim) {
        if (tensors.isEmpty()) throw new IllegalArgumentException("cat: expected a non-empty list of tensors");
        Tensor first = tensors.getFirst();
        int r = first.dim();
        int d = Shape.dim(dim, r, "cat");
        DType type = first.dtype();
        int total = 0;
        for (int k = 0; k < tensors.size(); k++) {
            Tensor t = tensors.get(k);
            Checks.sameDevice("cat", first, t);
            if (t.dim() != r) {
                throw new IllegalArgumentException("cat: tensor " + k + " has rank " + t.dim() + ", expected " + r
                        + " (shapes " + Shape.str(first.shape()) + " and " + Shape.str(t.shape()) + ")");
            }
            for (int i = 0; i < r; i++) {
                if (i != d && t.shape()[i] != first.shape()[i]) {
                    throw new IllegalArgumentException("cat: sizes must match except in dimension " + d + ", got shapes "
                            + Shape.str(first.shape()) + " and " + Shape.str(t.shape()) + " (tensor " + k + ")");
                }
            }
            type = DType.promote(type, t.dtype());
            total += t.shape()[d];
        }
        int[] shape = first.shape();
        shape[d] = total;
        Tensor out = Tensor.empty(shape, type, first.device());
        int[] offsets = new int[tensors.size()];
        int off = 0;
        for (int k = 0; k < tensors.size(); k++) {
            Tensor t = tensors.get(k);
            offsets[k] = off;
            Backends.get(out.device()).copy(sliceRaw(out, d, off, off + t.shape()[d], 1), t);
            off += t.shape()[d];
        }
        Tensor[] inputs = tensors.toArray(new Tensor[0]);
        return Autograd.record("cat", out, g -> {
            Tensor[] gs = new Tensor[inputs.length];
            for (int k = 0; k < inputs.length; k++) {
                Tensor gk = g.narrow(d, offsets[k], inputs[k].shape()[d]);
                gs[k] = inputs[k].dtype() == g.dtype() ? gk : gk.to(inputs[k].dtype());
            }
            return gs;
        }, inputs);
    }

    public static Tensor stack(List<Tensor> tensors, int dim) {
        if (tensors.isEmpty()) throw new IllegalArgumentException("stack: expected a non-empty list of tensors");
        int[] s0 = tensors.getFirst().shape();
        List<Tensor> parts = new ArrayList<>();
        for (int k = 0; k < tensors.size(); k++) {
            Tensor t = tensors.get(k);
            if (!Arrays.equals(t.shape(), s0)) {
                throw new IllegalArgumentException("stack: all tensors must have one shape, got " + Shape.str(s0)
                        + " and " + Shape.str(t.shape()) + " (tensor " + k + ")");
            }
            parts.add(t.unsqueeze(dim < 0 ? dim + s0.length + 1 : dim));
        }
        return cat(parts, dim < 0 ? dim + s0.length + 1 : dim);
    }
}
