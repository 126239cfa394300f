package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.ops.Recurrent;

/**
 * A multi-layer GRU with PyTorch's semantics: gates r, z, n; {@code n = tanh(W_in x + b_in + r·(W_hn h + b_hn))},
 * {@code h' = (1 - z)·n + z·h}; parameters named and shaped as {@code torch.nn.GRU}'s (see {@link RnnBase}). The state
 * is h alone ({@link RnnState#of}). Unidirectional only.
 */
public final class GRU extends RnnBase {
    /** One layer, with bias, time first, no dropout. */
    public GRU(int inputSize, int hiddenSize, Generator g) { this(inputSize, hiddenSize, 1, true, false, 0, g); }

    /** PyTorch's arguments, in its order; g draws the parameters (and the dropout masks). */
    public GRU(int inputSize, int hiddenSize, int numLayers, boolean bias, boolean batchFirst, double dropout, Generator g) {
        this(inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, false, g);
    }

    /** With PyTorch's {@code bidirectional}, which must be false (a clear error otherwise: it is not supported). */
    public GRU(int inputSize, int hiddenSize, int numLayers, boolean bias, boolean batchFirst, double dropout, boolean bidirectional, Generator g) {
        super("GRU", 3, inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, bidirectional, g);
    }

    /** From the initial hidden state h0 (L, B, H) (null: zeros). */
    public RnnOutput forward(Tensor x, Tensor h0) { return run(x, h0, null); }

    /** From an initial state of h alone (null: zeros). */
    @Override public RnnOutput forward(Tensor x, RnnState state) {
        if (state == null) return forward(x);
        if (state.c() != null) throw new IllegalArgumentException("GRU: the state is h alone, got a cell state c too (an LSTM's state?)");
        return run(x, state.h(), null);
    }

    /** b_hh stays apart: it is inside r's product with the hidden part of n. */
    @Override Tensor[] layer(int k, Tensor x, Tensor h0, Tensor c0) {
        return Recurrent.gru(F.linear(x, weightIh[k], biasIh[k]), weightHh[k], biasHh[k], h0);
    }
}
