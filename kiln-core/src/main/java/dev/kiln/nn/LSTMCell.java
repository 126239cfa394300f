package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.ops.Recurrent;

/**
 * One LSTM step as a layer, as {@code torch.nn.LSTMCell}: {@code weight_ih} (4H, in), {@code weight_hh} (4H, H),
 * {@code bias_ih} and {@code bias_hh} (4H), all from U(-1/sqrt(H), 1/sqrt(H)); the gates' sum goes through the fused
 * cell ({@link Recurrent#lstmCell}). For whole sequences {@link LSTM} is faster: it projects every step's input at once.
 */
public final class LSTMCell extends Layer {
    private final int inputSize, hiddenSize;
    private final Tensor weightIh, weightHh, biasIh, biasHh;   // biases null without bias

    public LSTMCell(int inputSize, int hiddenSize, Generator g) { this(inputSize, hiddenSize, true, g); }

    public LSTMCell(int inputSize, int hiddenSize, boolean bias, Generator g) {
        if (inputSize < 1 || hiddenSize < 1) throw new IllegalArgumentException("LSTMCell: sizes must be >= 1, got " + inputSize + ", " + hiddenSize);
        this.inputSize = inputSize;
        this.hiddenSize = hiddenSize;
        double bound = 1 / Math.sqrt(hiddenSize);
        weightIh = registerParameter("weight_ih", Init.uniform(g, bound, 4 * hiddenSize, inputSize));
        weightHh = registerParameter("weight_hh", Init.uniform(g, bound, 4 * hiddenSize, hiddenSize));
        biasIh = bias ? registerParameter("bias_ih", Init.uniform(g, bound, 4 * hiddenSize)) : null;
        biasHh = bias ? registerParameter("bias_hh", Init.uniform(g, bound, 4 * hiddenSize)) : null;
    }

    /** x (B, in) or (in); state h and c (B, H) or (H), or null for zeros. Returns h' and c'. */
    public RnnState forward(Tensor x, RnnState state) {
        CellChecks.checkInput("LSTMCell", x, inputSize);
        boolean batched = x.dim() == 2;
        Tensor xb = batched ? x : x.unsqueeze(0);
        Tensor h = state == null ? CellChecks.zeros(xb, hiddenSize) : CellChecks.state("LSTMCell", "h", state.h(), batched);
        Tensor c = state == null ? CellChecks.zeros(xb, hiddenSize) : CellChecks.state("LSTMCell", "c", state.c(), batched);
        Tensor gates = F.linear(xb, weightIh, biasIh).add(F.linear(h, weightHh, biasHh));
        Tensor[] hc = Recurrent.lstmCell(gates, c);
        return batched ? new RnnState(hc[0], hc[1]) : new RnnState(hc[0].squeeze(0), hc[1].squeeze(0));
    }

    @Override protected String extraRepr() { return inputSize + ", " + hiddenSize + (biasIh == null ? ", bias=False" : ""); }
}
