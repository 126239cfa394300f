package dev.kiln.models;

import dev.kiln.Generator;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * How a next token is picked from a language model's logits: temperature 0 takes the most likely one (greedy);
 * above 0 the logits are divided by it and a token drawn from their softmax, restricted to the topK most likely when
 * topK is above 0 (0: no restriction), as nanoGPT's {@code generate}. Ties at the k-th logit keep the lower ids, so
 * exactly k tokens remain.
 */
public record Sampling(double temperature, int topK) {
    /** Checks temperature >= 0 (finite) and topK >= 0. */
    public Sampling {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) throw new IllegalArgumentException("Sampling: temperature must be finite and >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("Sampling: topK must be >= 0 (0: all tokens), got " + topK);
    }

    /** Always the most likely token. */
    public static Sampling greedy() { return new Sampling(0, 0); }

    /**
     * The next token id for logits (V); g draws the random number (unused when greedy). The candidates come from
     * {@link Tensor#topk} where the logits are, so only k values and ids reach the host (a GPU model's 50,257 logits
     * stay on the GPU).
     */
    public long next(Tensor logits, Generator g) {
        if (logits.dim() != 1 || logits.size(0) < 1) throw new IllegalArgumentException("Sampling: logits must be (V), got " + Shape.str(logits.shape()));
        int v = logits.size(0), k = temperature == 0 ? 1 : topK == 0 ? v : Math.min(topK, v);
        // most likely first, ties in id order (topk is stable); NaN last (topk would put it first)
        Tensor.Sorted top = logits.maskedFill(logits.ne(logits), Double.NEGATIVE_INFINITY).topk(k, 0, true);
        long[] ids = top.indices().toLongArray();
        if (temperature == 0) return ids[0];
        double[] z = top.values().toDoubleArray(), p = new double[k];
        double sum = 0;
        for (int r = 0; r < k; r++) sum += p[r] = Math.exp((z[r] - z[0]) / temperature);
        double u = (g.nextSeed() >>> 11) * 0x1.0p-53 * sum;   // 53 random bits, uniform in [0, sum)
        for (int r = 0; r < k; r++) {
            u -= p[r];
            if (u < 0) return ids[r];
        }
        return ids[k - 1];   // rounding left u a hair above 0
    }
}
