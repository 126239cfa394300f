package dev.kiln.nn;

import dev.kiln.Tensor;

/**
 * The state of a recurrent layer, as PyTorch's {@code (h_n, c_n)}: for {@link LSTM} and {@link GRU} each is
 * (numLayers, B, H), or (numLayers, H) for an unbatched input; for {@link LSTMCell} (B, H). {@code c} is the LSTM's
 * cell state and null for a GRU.
 *
 * @param h the hidden state
 * @param c the cell state (LSTM), or null (GRU)
 */
public record RnnState(Tensor h, Tensor c) {
    /** Checks that there is a hidden state. */
    public RnnState {
        if (h == null) throw new IllegalArgumentException("RnnState: the hidden state h must not be null");
    }

    /** A GRU's state: h alone. */
    public static RnnState of(Tensor h) { return new RnnState(h, null); }
}
