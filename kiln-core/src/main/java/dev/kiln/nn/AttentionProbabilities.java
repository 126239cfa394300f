package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Tensor;

/**
 * softmax(q k^T / sqrt(d) + mask), written out, for the two things {@link F#scaledDotProductAttention} does not give:
 * the attention weights themselves ({@link MultiheadAttention}'s needWeights) and dropout on them while training.
 * Every other path goes through F.scaledDotProductAttention, which may run a fused kernel.
 */
final class AttentionProbabilities {
    private AttentionProbabilities() {}

    /**
     * q (..., L, d), k (..., S, d) -> (..., L, S). The mask is F.scaledDotProductAttention's (bool: true = may attend;
     * floating: added) or null; causal hides key j from query i when j > i.
     */
    static Tensor of(Tensor q, Tensor k, Tensor mask, boolean causal) {
        // q scaled before the product: (L, d) multiplications rather than (L, S), and one (L, S) tensor fewer
        Tensor scores = q.mul(1 / Math.sqrt(q.size(-1))).matmul(k.transpose(-2, -1));
        if (causal) scores = scores.maskedFill(Masks.future(q.size(-2), k.size(-2), 0, q.device()), Double.NEGATIVE_INFINITY);
        if (mask != null) {
            scores = mask.dtype() == DType.BOOL
                    ? scores.maskedFill(Masks.not(mask), Double.NEGATIVE_INFINITY)
                    : scores.add(mask);
        }
        return F.softmax(scores, -1);
    }
}
