package dev.kiln.nn;

import dev.kiln.Backends;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;
import dev.kiln.ops.Views;

import java.util.Arrays;

/**
 * GPT-2's masked self-attention under nanoGPT's names: {@code c_attn} (d -> 3d: queries, keys and values, in that
 * order), H heads of causal attention through {@link F#scaledDotProductAttention}, {@code c_proj} (d -> d). While
 * training, dropout acts on the attention weights and on the output. With a {@link KvCache.Entry} the new positions'
 * keys and values are appended to the cache and the queries attend over every cached position.
 */
public final class CausalSelfAttention extends Layer implements Forward {
    private final int dim, heads;
    private final double dropout;
    private final Generator g;
    private final Linear cAttn, cProj;

    /** dim features in H heads; bias on both projections or on neither; g draws the weights and dropout masks. */
    public CausalSelfAttention(int dim, int heads, boolean bias, double dropout, Generator g) {
        if (dim < 1 || heads < 1 || dim % heads != 0) {
            throw new IllegalArgumentException("CausalSelfAttention: dim (" + dim + ") must be a positive multiple of heads (" + heads + ")");
        }
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("CausalSelfAttention: dropout must be in [0, 1), got " + dropout);
        this.dim = dim;
        this.heads = heads;
        this.dropout = dropout;
        this.g = g;
        cAttn = registerLayer("c_attn", new Linear(dim, 3 * dim, bias, g));
        cProj = registerLayer("c_proj", new Linear(dim, dim, bias, g));
    }

    /** x (B, T, d) -> (B, T, d), position t attending to positions 0..t. */
    @Override public Tensor forward(Tensor x) { return forward(x, null); }

    /**
     * As {@link #forward(Tensor)} for the T positions that follow those the cache holds (cache null: none): their
     * keys and values are appended to it, and position i of x attends to every cached position up to its own.
     */
    public Tensor forward(Tensor x, KvCache.Entry cache) { return forward(x, cache, null); }

    /** {@code residual + forward(x, cache)} (residual null: none), the add inside c_proj's op unless dropout comes between. */
    public Tensor forward(Tensor x, KvCache.Entry cache, Tensor residual) {
        if (x.dim() != 3 || x.size(2) != dim) {
            throw new IllegalArgumentException("CausalSelfAttention: input must be (B, T, " + dim + "), got " + Shape.str(x.shape()));
        }
        int b = x.size(0), t = x.size(1);
        Tensor qkv = cAttn.forward(x);
        Tensor[] heads = cache == null ? split(qkv) : null;
        Tensor q = cache == null ? heads[0] : split(qkv, 0), k = cache == null ? heads[1] : split(qkv, 1), v = cache == null ? heads[2] : split(qkv, 2);
        int past = 0;
        if (cache != null) {
            past = cache.length();
            cache.append(k, v);
            k = cache.keys();
            v = cache.values();
        }
        // with positions before these, the causal mask is aligned to the bottom right; one new position sees them all
        boolean causal = past == 0;
        Tensor mask = causal || t == 1 ? null : Masks.not(Masks.future(t, past + t, past, x.device()));
        Tensor y;
        if (isTraining() && dropout > 0) {
            y = F.dropout(AttentionProbabilities.of(q, k, mask, causal), dropout, true, g).matmul(v);
        } else {
            y = F.scaledDotProductAttention(q, k, v, mask, causal);
        }
        Tensor merged = y.transpose(1, 2).reshape(b, t, dim);
        if (isTraining() && dropout > 0) {
            y = F.dropout(cProj.forward(merged), dropout, true, g);
            return residual == null ? y : residual.add(y);
        }
        return cProj.forward(merged, residual);
    }

    /** Part i (query, key, value) of c_attn's output (B, T, 3d), as heads (B, H, T, d/H). */
    private Tensor split(Tensor qkv, int i) {
        return qkv.narrow(2, i * dim, dim).reshape(qkv.size(0), qkv.size(1), heads, dim / heads).transpose(1, 2);
    }

    /**
     * The query, key and value heads (B, H, T, d/H) as views of c_attn's output (B, T, 3d), without a copy; torch.split's
     * gradient: each part's gradient is copied into its third of one buffer, which the last of the three hands to qkv.
     * Three narrows would each send back a zero-filled (B, T, 3d) gradient for the engine to add up (three fills, two
     * full-size adds). Sound because attention always gives q, k and v their gradients together (the cached path, whose
     * k and v go into the cache, takes {@link #split(Tensor, int)}).
     */
    private Tensor[] split(Tensor qkv) {
        Tensor packed = qkv.reshape(qkv.size(0), qkv.size(1), 3 * heads, dim / heads);
        Tensor raw = packed.detach();
        Tensor[] parts = new Tensor[3], grad = new Tensor[1];
        int[] arrived = {0};
        for (int i = 0; i < 3; i++) {
            int from = i * heads;
            parts[i] = Autograd.record("split_heads", Views.sliceRaw(raw, 2, from, from + heads, 1).transpose(1, 2), g -> {
                if (grad[0] == null) grad[0] = packedBase(g, packed.shape(), from);
                if (grad[0] == null) {
                    grad[0] = Tensor.empty(packed.shape(), g.dtype(), g.device());
                    MemoryScope.promote(grad[0]);   // the other parts' backward passes fill it after this one returns
                }
                Tensor slot = Views.sliceRaw(grad[0], 2, from, from + heads, 1).transpose(1, 2);
                // the attention kernels may already have written this part in place (one buffer for all three)
                if (!sameView(slot, g)) Backends.get(g.device()).copy(slot, g);
                if (++arrived[0] < 3) return new Tensor[]{null};
                Tensor full = grad[0];
                grad[0] = null;
                arrived[0] = 0;
                return new Tensor[]{full};
            }, packed);
        }
        return parts;
    }

    /** The (B, T, 3H, d/H) tensor that g (B, H, T, d/H) is part {@code from / H} of, when it is such a view; else null. */
    private static Tensor packedBase(Tensor g, int[] shape, int from) {
        int off = g.offset() - from * shape[3];
        if (off < 0 || off + Shape.numel(shape) > g.storage().numel()) return null;
        Tensor base = new Tensor(g.storage(), shape, Shape.contiguousStrides(shape), off);
        return sameView(Views.sliceRaw(base, 2, from, from + g.size(1), 1).transpose(1, 2), g) ? base : null;
    }

    private static boolean sameView(Tensor a, Tensor b) {
        return a.storage() == b.storage() && a.offset() == b.offset() && Arrays.equals(a.strides(), b.strides())
                && Arrays.equals(a.shape(), b.shape());
    }

    /** The query, key and value projection, d -> 3d. */
    public Linear cAttn() { return cAttn; }

    /** The output projection. */
    public Linear cProj() { return cProj; }

    @Override protected String extraRepr() { return "dim=" + dim + ", heads=" + heads + ", dropout=" + dropout; }
}
