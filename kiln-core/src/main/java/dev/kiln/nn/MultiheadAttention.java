package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.ops.Elementwise;

/**
 * PyTorch's {@code nn.MultiheadAttention}, with its parameters under its names ({@code in_proj_weight} (3E, E): the
 * query, key and value projections stacked in that order; {@code in_proj_bias} (3E); {@code out_proj.weight},
 * {@code out_proj.bias}), its initialisation (xavier_uniform in_proj_weight, zero biases, out_proj's weight as a
 * Linear's) and its conventions, so state dicts move between the two. Query, key and value all have embedDim
 * features (PyTorch's kdim/vdim, add_bias_kv and add_zero_attn are not offered).
 *
 * <p>Inputs are (L, B, E) query and (S, B, E) key and value, or (B, L, E) and (B, S, E) when batchFirst, or
 * unbatched (L, E) and (S, E). The masks follow nn.MultiheadAttention, which is the opposite of
 * {@link F#scaledDotProductAttention}'s bool convention: a bool {@code keyPaddingMask} (B, S) or {@code attnMask}
 * (L, S) or (B*H, L, S) is true where attention is NOT allowed (padding, a hidden position); a floating one is added
 * to the scores. {@code isCausal} hides each query's future keys (key j from query i when j > i); unlike PyTorch,
 * where it is only a hint that attnMask is the causal mask, it applies that mask itself and combines with any
 * other. A query that may attend to no key gives NaN, as PyTorch's math path does.
 */
public final class MultiheadAttention extends Layer implements Forward {
    /**
     * The attended values, shaped as the query; and, when asked for, the attention weights averaged over the heads,
     * (B, L, S) whatever batchFirst (unbatched: (L, S)), else null.
     */
    public record Output(Tensor output, Tensor weights) {}

    private final int embedDim, numHeads;
    private final double dropout;
    private final boolean batchFirst;
    private final Generator g;
    private final Tensor inProjWeight, inProjBias;   // bias null without one
    private final Linear outProj;

    /** Without dropout on the attention weights. */
    public MultiheadAttention(int embedDim, int numHeads, boolean bias, boolean batchFirst, Generator g) {
        this(embedDim, numHeads, 0, bias, batchFirst, g);
    }

    /** With dropout p on the attention weights while training; g draws the initial weights and the dropout masks. */
    public MultiheadAttention(int embedDim, int numHeads, double dropout, boolean bias, boolean batchFirst, Generator g) {
        if (embedDim < 1 || numHeads < 1 || embedDim % numHeads != 0) {
            throw new IllegalArgumentException("MultiheadAttention: embedDim (" + embedDim + ") must be a positive multiple of numHeads (" + numHeads + ")");
        }
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("MultiheadAttention: dropout must be in [0, 1), got " + dropout);
        this.embedDim = embedDim;
        this.numHeads = numHeads;
        this.dropout = dropout;
        this.batchFirst = batchFirst;
        this.g = g;
        inProjWeight = registerParameter("in_proj_weight", Init.xavierUniform(g, 3 * embedDim, embedDim));
        inProjBias = bias ? registerParameter("in_proj_bias", Init.zeros(3 * embedDim)) : null;
        outProj = registerLayer("out_proj", new Linear(embedDim, embedDim, bias, g));
        if (bias) Init.assign(outProj.bias(), Init.zeros(embedDim));
    }

    /** Self-attention of x without masks or weights. */
    @Override public Tensor forward(Tensor x) { return forward(x, x, x, null, null, false, false).output(); }

    /** Attention without masks or weights. */
    public Tensor forward(Tensor query, Tensor key, Tensor value) { return forward(query, key, value, null, null, false, false).output(); }

    /**
     * PyTorch's {@code forward(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights=True,
     * is_causal)}; the masks may be null. The weights (averaged over heads) are computed only when needWeights;
     * otherwise attention runs through {@link F#scaledDotProductAttention}.
     */
    public Output forward(Tensor query, Tensor key, Tensor value, Tensor keyPaddingMask, Tensor attnMask, boolean isCausal, boolean needWeights) {
        boolean self = query == key && key == value;
        if (checkInputs(query, key, value)) {
            Tensor q = batchFirst ? query : query.transpose(0, 1);
            Tensor k = batchFirst ? key : key.transpose(0, 1), v = batchFirst ? value : value.transpose(0, 1);
            Output o = attend(q, k, v, self, keyPaddingMask, attnMask, isCausal, needWeights);
            return batchFirst ? o : new Output(o.output().transpose(0, 1), o.weights());
        }
        Tensor kpm = keyPaddingMask == null ? null : checkUnbatchedPadding(keyPaddingMask, key.size(0)).unsqueeze(0);
        Output o = attend(query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0), self, kpm, attnMask, isCausal, needWeights);
        return new Output(o.output().squeeze(0), o.weights() == null ? null : o.weights().squeeze(0));
    }

    /** q (B, L, E), k and v (B, S, E). */
    private Output attend(Tensor q, Tensor k, Tensor v, boolean self, Tensor keyPaddingMask, Tensor attnMask, boolean causal, boolean needWeights) {
        int b = q.size(0), l = q.size(1), s = k.size(1);
        Tensor mask = sdpaMask(keyPaddingMask, attnMask, b, l, s, q.dtype());
        Tensor[] qkv = project(q, k, v, self);
        Tensor qh = heads(qkv[0]), kh = heads(qkv[1]), vh = heads(qkv[2]);
        boolean dropping = isTraining() && dropout > 0;
        Tensor out, weights = null;
        if (needWeights || dropping) {
            Tensor p = AttentionProbabilities.of(qh, kh, mask, causal);
            if (dropping) p = F.dropout(p, dropout, true, g);
            out = p.matmul(vh);
            if (needWeights) weights = p.mean(1, false);   // after dropout, as PyTorch
        } else {
            out = F.scaledDotProductAttention(qh, kh, vh, mask, causal);
        }
        return new Output(outProj.forward(out.transpose(1, 2).reshape(b, l, embedDim)), weights);
    }

    /** The query, key and value projections; self-attention takes them in one product. */
    private Tensor[] project(Tensor q, Tensor k, Tensor v, boolean self) {
        int e = embedDim;
        if (self) {
            Tensor qkv = F.linear(q, inProjWeight, inProjBias);
            return new Tensor[]{qkv.narrow(-1, 0, e), qkv.narrow(-1, e, e), qkv.narrow(-1, 2 * e, e)};
        }
        return new Tensor[]{F.linear(q, rows(inProjWeight, 0), rows(inProjBias, 0)),
                F.linear(k, rows(inProjWeight, 1), rows(inProjBias, 1)), F.linear(v, rows(inProjWeight, 2), rows(inProjBias, 2))};
    }

    private Tensor rows(Tensor t, int i) { return t == null ? null : t.narrow(0, i * embedDim, embedDim); }

    /** (B, T, E) -> (B, H, T, E/H). */
    private Tensor heads(Tensor t) {
        return t.reshape(t.size(0), t.size(1), numHeads, embedDim / numHeads).transpose(1, 2);
    }

    /** The two PyTorch-convention masks as one in F.scaledDotProductAttention's, broadcasting to (B, H, L, S); or null. */
    private Tensor sdpaMask(Tensor keyPaddingMask, Tensor attnMask, int b, int l, int s, DType dtype) {
        Tensor pad = null, attn = null;
        if (keyPaddingMask != null) {
            requireShape("keyPaddingMask", keyPaddingMask, new int[]{b, s}, "(B, S)");
            pad = keyPaddingMask.reshape(b, 1, 1, s);
        }
        if (attnMask != null) {
            if (attnMask.dim() == 2) attn = requireShape("attnMask", attnMask, new int[]{l, s}, "(L, S)");
            else attn = requireShape("attnMask", attnMask, new int[]{b * numHeads, l, s}, "(L, S) or (B*H, L, S)").reshape(b, numHeads, l, s);
        }
        if (pad == null && attn == null) return null;
        if ((pad == null || pad.dtype() == DType.BOOL) && (attn == null || attn.dtype() == DType.BOOL)) {
            Tensor ignore = pad == null ? attn : attn == null ? pad : Elementwise.binary(BinaryOp.OR, pad, attn);
            return Masks.not(ignore);
        }
        Tensor a = additive(pad, dtype), c = additive(attn, dtype);
        return a == null ? c : c == null ? a : a.add(c);
    }

    /** A PyTorch-convention mask as scores to add: -inf where a bool mask is true, a floating mask as it is. */
    private static Tensor additive(Tensor mask, DType dtype) {
        if (mask == null || mask.dtype() != DType.BOOL) return mask;
        return Tensor.zeros(mask.shape(), dtype, mask.device()).maskedFill(mask, Double.NEGATIVE_INFINITY);
    }

    private static Tensor requireShape(String what, Tensor mask, int[] shape, String expected) {
        if (!java.util.Arrays.equals(mask.shape(), shape)) {
            throw new IllegalArgumentException("MultiheadAttention: " + what + " must be " + expected + " = " + Shape.str(shape)
                    + ", got " + Shape.str(mask.shape()));
        }
        if (mask.dtype() != DType.BOOL && !mask.dtype().isFloating()) {
            throw new IllegalArgumentException("MultiheadAttention: " + what + " must be bool (true = not allowed) or floating (added), got " + mask.dtype());
        }
        return mask;
    }

    private static Tensor checkUnbatchedPadding(Tensor mask, int s) {
        return requireShape("keyPaddingMask (unbatched input)", mask, new int[]{s}, "(S)");
    }

    /** True for batched (3-D) inputs, false for unbatched (2-D); throws for anything else. */
    private boolean checkInputs(Tensor query, Tensor key, Tensor value) {
        String shapes = "query " + Shape.str(query.shape()) + ", key " + Shape.str(key.shape()) + ", value " + Shape.str(value.shape());
        int r = query.dim();
        if (r < 2 || r > 3 || key.dim() != r || value.dim() != r) {
            throw new IllegalArgumentException("MultiheadAttention: query, key and value must all be 3-D " + (batchFirst ? "(B, T, E)" : "(T, B, E)")
                    + " or all 2-D (T, E), got " + shapes);
        }
        if (query.size(-1) != embedDim || key.size(-1) != embedDim || value.size(-1) != embedDim) {
            throw new IllegalArgumentException("MultiheadAttention: embedDim is " + embedDim + " but the last dimensions are " + shapes);
        }
        if (!java.util.Arrays.equals(key.shape(), value.shape())) throw new IllegalArgumentException("MultiheadAttention: key and value shapes differ: " + shapes);
        int batchDim = batchFirst ? 0 : 1;
        if (r == 3 && query.size(batchDim) != key.size(batchDim)) {
            throw new IllegalArgumentException("MultiheadAttention: query and key differ in batch size (dimension " + batchDim
                    + (batchFirst ? ", batchFirst" : ", not batchFirst") + "): " + shapes);
        }
        return r == 3;
    }

    /** in_proj_weight (3E, E): query, key and value projections stacked. */
    public Tensor inProjWeight() { return inProjWeight; }

    /** in_proj_bias (3E), or null. */
    public Tensor inProjBias() { return inProjBias; }

    /** The output projection. */
    public Linear outProj() { return outProj; }

    @Override protected String extraRepr() {
        return "embed_dim=" + embedDim + ", num_heads=" + numHeads + ", dropout=" + dropout + ", batch_first=" + (batchFirst ? "True" : "False");
    }
}
