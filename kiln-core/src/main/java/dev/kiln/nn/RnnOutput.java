package dev.kiln.nn;

/**
 * What a recurrent layer returns, as PyTorch's {@code output, (h_n, c_n)}: the last layer's hidden state at every step
 * ((T, B, H), or (B, T, H) batch first; for {@code models.CharLSTM} the logits) and the final state of every layer.
 *
 * @param output the sequence of outputs
 * @param state the final state, to pass to the next call when the sequence goes on
 */
public record RnnOutput(dev.kiln.Tensor output, RnnState state) {}
