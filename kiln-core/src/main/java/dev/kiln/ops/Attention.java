package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.UnaryOp;

/** Scaled dot-product attention, composed from matmul, softmax and masked_fill (a fused kernel may replace it). */
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
        int d = q.size(-1);
        Tensor scores = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(d));
        if (causal) scores = scores.maskedFill(futureMask(q.size(-2), k.size(-2), q), Double.NEGATIVE_INFINITY);
        if (mask != null) {
            checkMask(mask, scores);
            scores = mask.dtype() == DType.BOOL ? scores.maskedFill(Elementwise.unary(UnaryOp.NOT, mask), Double.NEGATIVE_INFINITY) : scores.add(mask);
        }
        return Softmax.softmax(scores, -1).matmul(v);
    }

    private static void checkMask(Tensor mask, Tensor scores) {
        if (mask.dim() > scores.dim() || !java.util.Arrays.equals(Shape.broadcast(mask.shape(), scores.shape()), scores.shape())) {
            throw new IllegalArgumentException("scaled_dot_product_attention: mask of shape " + Shape.str(mask.shape())
                    + " does not broadcast to the scores' shape " + Shape.str(scores.shape()) + " (..., L, S)");
        }
        if (mask.dtype() != DType.BOOL && !mask.dtype().isFloating()) {
            throw new IllegalArgumentException("scaled_dot_product_attention: mask must be bool (true = attend) or floating (added), got " + mask.dtype());
        }
    }

    /** (L, S) bool, true above the diagonal (top-left aligned, as PyTorch's is_causal). */
    private static Tensor futureMask(int l, int s, Tensor like) {
        Tensor rows = Tensor.arange(l, like.device()).unsqueeze(1);
        Tensor cols = Tensor.arange(s, like.device()).unsqueeze(0);
        return cols.gt(rows);
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
    }
}
