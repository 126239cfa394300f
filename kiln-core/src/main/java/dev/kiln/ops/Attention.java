package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Settings;
import dev.kiln.Shape;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;
import dev.kiln.backend.UnaryOp;

import java.util.Arrays;

import static dev.kiln.Backends.get;

/**
 * Scaled dot-product attention. Where the backend has a fused kernel for the dtype and head size (flash-style: the
 * (L, S) scores exist one tile at a time, so memory grows linearly with the sequence) it runs that forward and
 * backward; otherwise, and whenever the mask itself needs a gradient, the composite of matmul, softmax and masked_fill
 * that the fused kernels are tested against ({@link #composite}). On CUDA, float64 attention also takes the composite
 * while the scores are small ({@code kiln.attention.compose.mb}): there cuBLAS and the softmax kernels beat the fused
 * kernel's thread-per-row loop; 16-bit and float32 attention always run fused, on tensor cores
 * (bench/results/2026-11-30-h200-attn.md).
 */
public final class Attention {
    private Attention() {}

    /** q (..., L, d), k (..., S, d), v (..., S, dv) -> (..., L, dv). Causal hides key j from query i when j > i. */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, boolean causal) {
        return scaledDotProductAttention(q, k, v, null, causal);
    }

    /**
     * As PyTorch's {@code scaled_dot_product_attention}: mask (null for none) broadcasts to (..., L, S) and is either
     * bool, true where a query may attend to a key, or floating, added to the scores. A query row that may attend to
     * no key gives NaN, as PyTorch's math path does.
     */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal) {
        check(q, k, v);
        q = Autocast.cast(AutocastPolicy.ATTENTION, q);
        k = Autocast.cast(AutocastPolicy.ATTENTION, k);
        v = Autocast.cast(AutocastPolicy.ATTENTION, v);
        int[] batch = Shape.broadcast(Arrays.copyOf(q.shape(), q.dim() - 2), Arrays.copyOf(k.shape(), k.dim() - 2));
        int[] scoreShape = batch == null ? null : Arrays.copyOf(batch, batch.length + 2);
        if (scoreShape != null) {
            scoreShape[batch.length] = q.size(-2);
            scoreShape[batch.length + 1] = k.size(-2);
        }
        if (mask != null) checkMask(mask, scoreShape);
        double scale = 1 / Math.sqrt(q.size(-1));
        Backend be = get(q.device());
        boolean fused = scoreShape != null && q.dtype() == k.dtype() && q.dtype() == v.dtype()
                && (mask == null || !mask.requiresGrad()) && be.supportsAttention(q.dtype(), q.size(-1), v.size(-1))
                && !(q.device().isCuda() && q.dtype() == DType.FLOAT64 && Shape.numel(scoreShape) * 8 <= Settings.get().attentionComposeMb() << 20);
        return fused ? fused(be, q, k, v, mask, causal, scale, batch) : composite(q, k, v, mask, causal);
    }

    /** The reference: the (L, S) scores in full, from differentiable ops. */
    static Tensor composite(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal) {
        int d = q.size(-1);
        Tensor scores = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(d));
        if (causal) scores = scores.maskedFill(futureMask(q.size(-2), k.size(-2), 0, q.device()), Double.NEGATIVE_INFINITY);
        if (mask != null) {
            scores = mask.dtype() == DType.BOOL ? scores.maskedFill(Elementwise.unary(UnaryOp.NOT, mask), Double.NEGATIVE_INFINITY) : scores.add(mask);
        }
        return Softmax.softmax(scores, -1).matmul(v);
    }

    /** q, k, v brought to (B, H, len, d) views (merging leading dims), the mask to an additive (B, H, L, S) view. */
    private static Tensor fused(Backend be, Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale, int[] batch) {
        int l = q.size(-2), s = k.size(-2), d = q.size(-1), dv = v.size(-1);
        int h = batch.length == 0 ? 1 : batch[batch.length - 1];
        int b = (int) (Shape.numel(batch) / Math.max(h, 1));
        Tensor q4 = to4(q, batch, b, h, l, d), k4 = to4(k, batch, b, h, s, d), v4 = to4(v, batch, b, h, s, dv);
        Tensor m4 = null;
        if (mask != null) {
            DType acc = q.dtype().accumulation();
            Tensor additive = mask.dtype() == DType.BOOL
                    ? Tensor.zeros(mask.shape(), acc, mask.device()).maskedFill(Elementwise.unary(UnaryOp.NOT, mask), Double.NEGATIVE_INFINITY)
                    : Elementwise.cast(mask.detach(), acc);
            int[] full = Arrays.copyOf(batch, batch.length + 2);
            full[batch.length] = l;
            full[batch.length + 1] = s;
            m4 = additive.expand(full).reshape(b, h, l, s);
        }
        Tensor[] r = be.attention(q4, k4, v4, m4, causal, scale);
        Tensor out4 = r[0], lse = r[1], qq = q4, kk = k4, vv = v4, mm = m4;
        int[] outShape = Arrays.copyOf(batch, batch.length + 2);
        outShape[batch.length] = l;
        outShape[batch.length + 1] = dv;
        Tensor out = Autograd.record("scaled_dot_product_attention", out4, g -> {
            Tensor[] grads = be.attentionBackward(g, qq, kk, vv, out4, lse, mm, causal, scale);
            return new Tensor[]{grads[0], grads[1], grads[2]};
        }, q4, k4, v4);
        return out.reshape(outShape);
    }

    /** x (..., n, e) with leading dims broadcast to batch, as a (b, h, n, e) view (a copy only when dims cannot merge). */
    private static Tensor to4(Tensor x, int[] batch, int b, int h, int n, int e) {
        int[] full = Arrays.copyOf(batch, batch.length + 2);
        full[batch.length] = n;
        full[batch.length + 1] = e;
        Tensor expanded = Arrays.equals(x.shape(), full) ? x : x.expand(full);
        return expanded.reshape(b, h, n, e);
    }

    /**
     * (L, S) bool, true where key j lies in query i's future, j > i + offset (offset 0: PyTorch's is_causal, top-left
     * aligned; a KV cache's queries start at offset). Kept per device, size and offset: arange uploads from the host,
     * which a CUDA graph capture refuses, so a captured step must find its mask made (its eager warm-up made it).
     * Never freed (a captured graph may hold its address); at most a few hundred are kept.
     */
    public static Tensor futureMask(int l, int s, int offset, Device device) {
        String key = device + ":" + l + "x" + s + "+" + offset;
        Tensor cached = FUTURE_MASKS.get(key);
        if (cached != null) return cached;
        Tensor mask = Tensor.noGrad(() -> Tensor.arange(s, device).unsqueeze(0).gt(Tensor.arange(l, device).add(offset).unsqueeze(1)));
        if (FUTURE_MASKS.size() >= 256) return mask;
        mask.keep();
        Tensor raced = FUTURE_MASKS.putIfAbsent(key, mask);
        return raced != null ? raced : mask;
    }

    private static final java.util.concurrent.ConcurrentHashMap<String, Tensor> FUTURE_MASKS = new java.util.concurrent.ConcurrentHashMap<>();

    private static void checkMask(Tensor mask, int[] scoreShape) {
        if (mask.dim() > scoreShape.length || !Arrays.equals(Shape.broadcast(mask.shape(), scoreShape), scoreShape)) {
            throw new IllegalArgumentException("scaled_dot_product_attention: mask of shape " + Shape.str(mask.shape())
                    + " does not broadcast to the scores' shape " + Shape.str(scoreShape) + " (..., L, S)");
        }
        if (mask.dtype() != DType.BOOL && !mask.dtype().isFloating()) {
            throw new IllegalArgumentException("scaled_dot_product_attention: mask must be bool (true = attend) or floating (added), got " + mask.dtype());
        }
    }

    private static void check(Tensor q, Tensor k, Tensor v) {
        if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2) {
            throw new IllegalArgumentException("scaled_dot_product_attention: q, k and v need rank >= 2 (..., L, d), got shapes "
                    + Shape.str(q.shape()) + ", " + Shape.str(k.shape()) + " and " + Shape.str(v.shape()));
        }
        if (q.size(-1) != k.size(-1)) {
            throw new IllegalArgumentException("scaled_dot_product_attention: q " + Shape.str(q.shape()) + " and k "
                    + Shape.str(k.shape()) + " differ in the last (feature) dimension");
        }
        if (k.size(-2) != v.size(-2)) {
            throw new IllegalArgumentException("scaled_dot_product_attention: k " + Shape.str(k.shape()) + " and v "
                    + Shape.str(v.shape()) + " differ in sequence length");
        }
        int[] qk = Shape.broadcast(Arrays.copyOf(q.shape(), q.dim() - 2), Arrays.copyOf(k.shape(), k.dim() - 2));
        if (qk == null || !Arrays.equals(Shape.broadcast(qk, Arrays.copyOf(v.shape(), v.dim() - 2)), qk)) {
            throw new IllegalArgumentException("scaled_dot_product_attention: the batch dims of q " + Shape.str(q.shape()) + ", k "
                    + Shape.str(k.shape()) + " and v " + Shape.str(v.shape()) + " do not broadcast");
        }
        if (!q.device().equals(k.device()) || !q.device().equals(v.device())) {
            throw new IllegalArgumentException("scaled_dot_product_attention: q, k and v are on different devices (" + q.device() + ", "
                    + k.device() + ", " + v.device() + ")");
        }
    }
}
