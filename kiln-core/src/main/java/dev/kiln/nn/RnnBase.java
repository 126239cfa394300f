package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What {@link LSTM} and {@link GRU} share, as PyTorch's {@code RNNBase}: each layer k's parameters under PyTorch's names,
 * {@code weight_ih_l{k}} (G·H, in), {@code weight_hh_l{k}} (G·H, H), {@code bias_ih_l{k}} and {@code bias_hh_l{k}}
 * (G·H), G the number of gates, all drawn from U(-1/sqrt(H), 1/sqrt(H)); time-first, batch-first and unbatched inputs;
 * the input and state checks; dropout on the outputs of every layer but the last while training (with the generator
 * the parameters were drawn from). Per layer one GEMM projects the input of every step; the op of
 * {@code dev.kiln.ops.Recurrent} then runs the steps (one GEMM and one fused cell each). Unidirectional only: PyTorch's
 * {@code bidirectional} and {@code proj_size} are not supported.
 */
public abstract sealed class RnnBase extends Layer permits LSTM, GRU {
    private final String name;
    private final int inputSize, hiddenSize, numLayers;
    private final boolean batchFirst;
    private final double dropout;
    private final Generator g;
    /** Layer k's parameters; the biases are null without bias. */
    final Tensor[] weightIh, weightHh, biasIh, biasHh;

    RnnBase(String name, int gates, int inputSize, int hiddenSize, int numLayers, boolean bias, boolean batchFirst, double dropout,
            boolean bidirectional, Generator g) {
        if (inputSize < 1 || hiddenSize < 1 || numLayers < 1) {
            throw new IllegalArgumentException(name + ": input_size, hidden_size and num_layers must be >= 1, got " + inputSize + ", "
                    + hiddenSize + ", " + numLayers);
        }
        if (!(dropout >= 0 && dropout <= 1)) throw new IllegalArgumentException(name + ": dropout must be in [0, 1], got " + dropout);
        if (bidirectional) {
            throw new IllegalArgumentException(name + ": bidirectional layers are not supported; run a second " + name
                    + " on the reversed sequence and concatenate the outputs");
        }
        this.name = name;
        this.inputSize = inputSize;
        this.hiddenSize = hiddenSize;
        this.numLayers = numLayers;
        this.batchFirst = batchFirst;
        this.dropout = dropout;
        this.g = g;
        weightIh = new Tensor[numLayers];
        weightHh = new Tensor[numLayers];
        biasIh = new Tensor[numLayers];
        biasHh = new Tensor[numLayers];
        double bound = 1 / Math.sqrt(hiddenSize);
        for (int k = 0; k < numLayers; k++) {
            weightIh[k] = registerParameter("weight_ih_l" + k, Init.uniform(g, bound, gates * hiddenSize, k == 0 ? inputSize : hiddenSize));
            weightHh[k] = registerParameter("weight_hh_l" + k, Init.uniform(g, bound, gates * hiddenSize, hiddenSize));
            if (bias) {
                biasIh[k] = registerParameter("bias_ih_l" + k, Init.uniform(g, bound, gates * hiddenSize));
                biasHh[k] = registerParameter("bias_hh_l" + k, Init.uniform(g, bound, gates * hiddenSize));
            }
        }
    }

    public final int inputSize() { return inputSize; }

    public final int hiddenSize() { return hiddenSize; }

    public final int numLayers() { return numLayers; }

    public final boolean batchFirst() { return batchFirst; }

    /** The output for x and the final state, from a zero initial state. */
    public final RnnOutput forward(Tensor x) { return run(x, null, null); }

    /** The output for x and the final state, from the given initial state (null: zeros), e.g. the last call's final state. */
    public abstract RnnOutput forward(Tensor x, RnnState state);

    /** Layer k over x (T, B, in): {output (T, B, H), h_n (B, H), and c_n for an LSTM}. h0 and c0 may be null (zeros). */
    abstract Tensor[] layer(int k, Tensor x, Tensor h0, Tensor c0);

    /** x (T, B, in), (B, T, in) batch first or (T, in) unbatched; h0 and c0 (L, B, H), or (L, H) unbatched, or null. */
    final RnnOutput run(Tensor x, Tensor h0, Tensor c0) {
        checkInput(x);
        boolean batched = x.dim() == 3;
        Tensor seq = !batched ? x.unsqueeze(1) : batchFirst ? x.transpose(0, 1) : x;
        int b = seq.size(1);
        checkState("h0", h0, batched, b);
        checkState("c0", c0, batched, b);
        List<Tensor> hs = new ArrayList<>(), cs = new ArrayList<>();
        Tensor in = seq;
        for (int k = 0; k < numLayers; k++) {
            Tensor[] r = layer(k, in, stateOf(h0, k, batched), stateOf(c0, k, batched));
            in = r[0];
            hs.add(r[1]);
            if (r.length > 2) cs.add(r[2]);
            if (k < numLayers - 1 && dropout > 0 && isTraining()) in = F.dropout(in, dropout, true, g);
        }
        Tensor out = !batched ? in.squeeze(1) : batchFirst ? in.transpose(0, 1) : in;
        return new RnnOutput(out, new RnnState(stacked(hs, batched), cs.isEmpty() ? null : stacked(cs, batched)));
    }

    /** Layer k's (B, H) slice of an (L, B, H) or (L, H) state. */
    private static Tensor stateOf(Tensor s, int k, boolean batched) {
        if (s == null) return null;
        return batched ? s.select(0, k) : s.select(0, k).unsqueeze(0);
    }

    private static Tensor stacked(List<Tensor> perLayer, boolean batched) {
        Tensor s = Tensor.stack(perLayer, 0);
        return batched ? s : s.squeeze(1);
    }

    private void checkInput(Tensor x) {
        if (x.dim() != 2 && x.dim() != 3) {
            throw new IllegalArgumentException(name + ": expected input of rank 3 (" + (batchFirst ? "B, T" : "T, B") + ", input_size) or 2 (T, "
                    + "input_size) unbatched, got shape " + Shape.str(x.shape()));
        }
        if (x.size(-1) != inputSize) {
            throw new IllegalArgumentException(name + ": input.size(-1) must be equal to input_size. Expected " + inputSize + ", got "
                    + x.size(-1) + " (input shape " + Shape.str(x.shape()) + ")");
        }
        checkTensor("input", x);
    }

    private void checkState(String what, Tensor s, boolean batched, int b) {
        if (s == null) return;
        int[] expected = batched ? new int[]{numLayers, b, hiddenSize} : new int[]{numLayers, hiddenSize};
        if (!Arrays.equals(s.shape(), expected)) {
            throw new IllegalArgumentException(name + ": expected " + what + " of shape " + Shape.str(expected) + " (num_layers, "
                    + (batched ? "B, " : "") + "hidden_size), got " + Shape.str(s.shape()));
        }
        checkTensor(what, s);
    }

    /** The parameters' device, and outside autocast their dtype. */
    private void checkTensor(String what, Tensor t) {
        Tensor w = weightIh[0];
        if (!t.device().equals(w.device())) {
            throw new IllegalArgumentException(name + ": " + what + " is on " + t.device() + " but the parameters are on " + w.device()
                    + " (move one with .to(...))");
        }
        if (!t.dtype().isFloating()) throw new IllegalArgumentException(name + ": expected a floating " + what + ", got " + t.dtype());
        if (t.dtype() != w.dtype() && !Autocast.isEnabled()) {
            throw new IllegalArgumentException(name + ": " + what + " is " + t.dtype() + " but the parameters are " + w.dtype()
                    + " (convert one, or run under autocast)");
        }
    }

    @Override protected String extraRepr() {
        return inputSize + ", " + hiddenSize + (numLayers != 1 ? ", num_layers=" + numLayers : "") + (biasIh[0] == null ? ", bias=False" : "")
                + (batchFirst ? ", batch_first=True" : "") + (dropout != 0 ? ", dropout=" + dropout : "");
    }
}
