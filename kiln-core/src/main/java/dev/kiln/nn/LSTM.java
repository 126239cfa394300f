package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.ops.Recurrent;

/**
 * A multi-layer LSTM with PyTorch's semantics: gates i, f, g, o; {@code c' = f·c + i·g}, {@code h' = o·tanh(c')};
 * parameters named and shaped as {@code torch.nn.LSTM}'s (see {@link RnnBase}), so a state dict PyTorch saved loads as
 * it is. Unidirectional only.
 * <pre>{@code
 * LSTM lstm = new LSTM(128, 512, 2, true, true, 0.0, g);   // 2 layers, bias, batch first, no dropout
 * RnnOutput r = lstm.forward(x);                             // x (B, T, 128)
 * Tensor out = r.output();                                   // (B, T, 512): the last layer's h at every step
 * RnnOutput next = lstm.forward(x2, r.state());              // h and c (2, B, 512) carry on
 * }</pre>
 */
public final class LSTM extends RnnBase {
    /** One layer, with bias, time first, no dropout. */
    public LSTM(int inputSize, int hiddenSize, Generator g) { this(inputSize, hiddenSize, 1, true, false, 0, g); }

    /** PyTorch's arguments, in its order; g draws the parameters (and the dropout masks). */
    public LSTM(int inputSize, int hiddenSize, int numLayers, boolean bias, boolean batchFirst, double dropout, Generator g) {
        this(inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, false, g);
    }

    /** With PyTorch's {@code bidirectional}, which must be false (a clear error otherwise: it is not supported). */
    public LSTM(int inputSize, int hiddenSize, int numLayers, boolean bias, boolean batchFirst, double dropout, boolean bidirectional, Generator g) {
        super("LSTM", 4, inputSize, hiddenSize, numLayers, bias, batchFirst, dropout, bidirectional, g);
    }

    /** From an initial state with both h0 and c0 (null: zeros). */
    @Override public RnnOutput forward(Tensor x, RnnState state) {
        if (state == null) return forward(x);
        if (state.c() == null) throw new IllegalArgumentException("LSTM: the initial state needs both h0 and c0, got c0 = null");
        return run(x, state.h(), state.c());
    }

    /** Both biases go into the one input projection of all steps. */
    @Override Tensor[] layer(int k, Tensor x, Tensor h0, Tensor c0) {
        Tensor b = biasIh[k] == null ? null : biasIh[k].add(biasHh[k]);
        return Recurrent.lstm(F.linear(x, weightIh[k], b), weightHh[k], h0, c0);
    }
}
