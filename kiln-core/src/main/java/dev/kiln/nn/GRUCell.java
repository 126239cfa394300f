package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.ops.Recurrent;

/**
 * One GRU step as a layer, as {@code torch.nn.GRUCell}: {@code weight_ih} (3H, in), {@code weight_hh} (3H, H),
 * {@code bias_ih} and {@code bias_hh} (3H), all from U(-1/sqrt(H), 1/sqrt(H)); the input and hidden projections go
 * through the fused cell ({@link Recurrent#gruCell}). As a {@link Forward} it steps from a zero state.
 */
public final class GRUCell extends Layer implements Forward {
    private final int inputSize, hiddenSize;
    private final Tensor weightIh, weightHh, biasIh, biasHh;   // biases null without bias

    public GRUCell(int inputSize, int hiddenSize, Generator g) { this(inputSize, hiddenSize, true, g); }

    public GRUCell(int inputSize, int hiddenSize, boolean bias, Generator g) {
        if (inputSize < 1 || hiddenSize < 1) throw new IllegalArgumentException("GRUCell: sizes must be >= 1, got " + inputSize + ", " + hiddenSize);
        this.inputSize = inputSize;
        this.hiddenSize = hiddenSize;
        double bound = 1 / Math.sqrt(hiddenSize);
        weightIh = registerParameter("weight_ih", Init.uniform(g, bound, 3 * hiddenSize, inputSize));
        weightHh = registerParameter("weight_hh", Init.uniform(g, bound, 3 * hiddenSize, hiddenSize));
        biasIh = bias ? registerParameter("bias_ih", Init.uniform(g, bound, 3 * hiddenSize)) : null;
        biasHh = bias ? registerParameter("bias_hh", Init.uniform(g, bound, 3 * hiddenSize)) : null;
    }

    /** h' from a zero state. */
    @Override public Tensor forward(Tensor x) { return forward(x, null); }

    /** x (B, in) or (in), h (B, H) or (H), or null for zeros. Returns h'. */
    public Tensor forward(Tensor x, Tensor h) {
        CellChecks.checkInput("GRUCell", x, inputSize);
        boolean batched = x.dim() == 2;
        Tensor xb = batched ? x : x.unsqueeze(0);
        Tensor hb = h == null ? CellChecks.zeros(xb, hiddenSize) : CellChecks.state("GRUCell", "h", h, batched);
        Tensor out = Recurrent.gruCell(F.linear(xb, weightIh, biasIh), F.linear(hb, weightHh, biasHh), hb);
        return batched ? out : out.squeeze(0);
    }

    @Override protected String extraRepr() { return inputSize + ", " + hiddenSize + (biasIh == null ? ", bias=False" : ""); }
}
