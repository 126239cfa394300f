package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.GradCheck;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/**
 * nn.LSTM, nn.GRU and their cells: PyTorch's parameter names, shapes and counts, float64 gradient checks of inputs,
 * initial states and parameters (two layers, time and batch first, final states in the loss), the modules against a
 * step-by-step composite with PyTorch's formulas, state carried across calls, unbatched inputs, dropout between layers,
 * autocast, the argument checks, and that they learn a sequence a memoryless model cannot.
 */
class RecurrentLayersTest {
    private static LSTM lstm(int in, int h, int layers, boolean batchFirst) {
        return new LSTM(in, h, layers, true, batchFirst, 0, new Generator(in * 31 + h)).to(DType.FLOAT64);
    }

    private static GRU gru(int in, int h, int layers, boolean batchFirst) {
        return new GRU(in, h, layers, true, batchFirst, 0, new Generator(in * 37 + h)).to(DType.FLOAT64);
    }

    /** Output and final states in one tensor, so a gradient check sees every path. */
    static Tensor joined(RnnOutput r) {
        List<Tensor> parts = new ArrayList<>(List.of(r.output().reshape(-1), r.state().h().reshape(-1)));
        if (r.state().c() != null) parts.add(r.state().c().reshape(-1));
        return Tensor.cat(parts, 0);
    }

    @Test void parameterNamesShapesAndCountsArePyTorchs() {
        LSTM l = new LSTM(128, 512, 2, true, false, 0, new Generator(0));
        // torch.nn.LSTM(128, 512, 2): 4H(E + H) + 8H for layer 0, 4H(H + H) + 8H for layer 1
        assertEquals(4 * 512 * (128 + 512) + 8 * 512 + 4 * 512 * (512 + 512) + 8 * 512, l.parameterCount());
        assertEquals(3_416_064, l.parameterCount());
        assertEquals(List.of("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"),
                List.copyOf(l.stateDict().keySet()));
        Map<String, Tensor> sd = l.stateDict();
        assertArrayEquals(new int[]{2048, 128}, sd.get("weight_ih_l0").shape());
        assertArrayEquals(new int[]{2048, 512}, sd.get("weight_ih_l1").shape());
        assertArrayEquals(new int[]{2048, 512}, sd.get("weight_hh_l1").shape());
        assertArrayEquals(new int[]{2048}, sd.get("bias_hh_l0").shape());
        assertEquals(2_562_048, new GRU(128, 512, 2, true, false, 0, new Generator(0)).parameterCount());   // 3/4 of the LSTM's
        assertEquals(4 * 20 * (10 + 20), new LSTM(10, 20, 1, false, false, 0, new Generator(0)).parameterCount());
        assertEquals(List.of("weight_ih", "weight_hh", "bias_ih", "bias_hh"), List.copyOf(new LSTMCell(10, 20, new Generator(0)).stateDict().keySet()));
        assertEquals(3 * 20 * (10 + 20) + 6 * 20, new GRUCell(10, 20, new Generator(0)).parameterCount());
        assertEquals("LSTM(128, 512, num_layers=2)", l.toString());
        assertEquals("GRU(3, 4, bias=False, batch_first=True, dropout=0.5)", new GRU(3, 4, 1, false, true, 0.5, new Generator(0)).toString());
    }

    @Test void parametersStartUniformWithinOneOverRootH() {
        for (Tensor p : new LSTM(30, 64, 2, true, false, 0, new Generator(1)).parameters()) {
            for (double v : p.toDoubleArray()) assertTrue(Math.abs(v) <= 1 / 8.0, "|" + v + "| > 1/sqrt(64)");
        }
        double[] w = new GRU(30, 64, new Generator(2)).stateDict().get("weight_hh_l0").toDoubleArray();
        double sq = 0;
        for (double v : w) sq += v * v;
        assertEquals(1 / 8.0 / Math.sqrt(3), Math.sqrt(sq / w.length), 0.003, "the std of U(-b, b) is b/sqrt(3)");
    }

    /** Inputs and initial states: two layers, time first and batch first, output and final states in the loss. */
    @Test void inputAndStateGradients() {
        for (boolean batchFirst : new boolean[]{false, true}) {
            LSTM l = lstm(3, 4, 2, batchFirst);
            int[] xs = batchFirst ? new int[]{2, 3, 3} : new int[]{3, 2, 3};   // 3 steps of 2 sequences
            GradCheck.check(x -> joined(l.forward(x[0], new RnnState(x[1], x[2]))), randn(1, xs), randn(2, 2, 2, 4), randn(3, 2, 3, 4)
                    .narrow(1, 0, 2));
            GRU g = gru(3, 4, 2, batchFirst);
            GradCheck.check(x -> joined(g.forward(x[0], x[1])), randn(4, xs), randn(5, 2, 2, 4));
        }
    }

    /** Every parameter of both layers, through the output and the final states. */
    @Test void parameterGradients() {
        for (boolean batchFirst : new boolean[]{false, true}) {
            int[] xs = batchFirst ? new int[]{2, 3, 3} : new int[]{3, 2, 3};   // 3 steps of 2 sequences
            RnnState s = new RnnState(randn(11, 2, 2, 4), randn(12, 2, 2, 4));
            LayerGradCheck.check(new Joined(lstm(3, 4, 2, batchFirst), s), randn(13, xs));
            LayerGradCheck.check(new Joined(gru(3, 4, 2, batchFirst), RnnState.of(s.h())), randn(14, xs));
        }
        LayerGradCheck.check(new GRUCell(3, 4, new Generator(5)).to(DType.FLOAT64), randn(15, 2, 3));
    }

    /** A recurrent layer as a Forward of its input, the initial state fixed: for LayerGradCheck. */
    static final class Joined extends Layer implements Forward {
        private final RnnBase rnn;
        private final RnnState state;

        Joined(RnnBase rnn, RnnState state) {
            this.rnn = registerLayer("rnn", rnn);
            this.state = state;
        }

        @Override public Tensor forward(Tensor x) { return joined(rnn.forward(x, state)); }
    }

    /** The modules against PyTorch's formulas written out per step with ops (time first; two layers). */
    @Test void modulesMatchAStepByStepComposite() {
        LSTM l = lstm(3, 5, 2, false);
        Tensor x = randn(21, 4, 2, 3), h0 = randn(22, 2, 2, 5), c0 = randn(23, 2, 2, 5);
        RnnOutput r = l.forward(x, new RnnState(h0, c0));
        Map<String, Tensor> p = l.stateDict();
        Tensor in = x;
        for (int k = 0; k < 2; k++) {
            Tensor h = h0.select(0, k), c = c0.select(0, k);
            List<Tensor> outs = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                Tensor gates = F.linear(in.select(0, t), p.get("weight_ih_l" + k), p.get("bias_ih_l" + k)).add(F.linear(h, p.get("weight_hh_l" + k), p.get("bias_hh_l" + k)));
                Tensor i = gates.narrow(1, 0, 5).sigmoid(), f = gates.narrow(1, 5, 5).sigmoid(), g = gates.narrow(1, 10, 5).tanh(), o = gates.narrow(1, 15, 5).sigmoid();
                c = f.mul(c).add(i.mul(g));
                h = o.mul(c.tanh());
                outs.add(h);
            }
            in = Tensor.stack(outs, 0);
            assertArrayEquals(h.toDoubleArray(), r.state().h().select(0, k).toDoubleArray(), 1e-12, "h_n of layer " + k);
            assertArrayEquals(c.toDoubleArray(), r.state().c().select(0, k).toDoubleArray(), 1e-12, "c_n of layer " + k);
        }
        assertArrayEquals(in.toDoubleArray(), r.output().toDoubleArray(), 1e-12, "LSTM output");

        GRU gr = gru(3, 5, 1, false);
        Map<String, Tensor> q = gr.stateDict();
        Tensor h = h0.narrow(0, 0, 1).select(0, 0);
        RnnOutput rg = gr.forward(x, h0.narrow(0, 0, 1));
        for (int t = 0; t < 4; t++) {
            Tensor gx = F.linear(x.select(0, t), q.get("weight_ih_l0"), q.get("bias_ih_l0")), gh = F.linear(h, q.get("weight_hh_l0"), q.get("bias_hh_l0"));
            Tensor rr = gx.narrow(1, 0, 5).add(gh.narrow(1, 0, 5)).sigmoid(), z = gx.narrow(1, 5, 5).add(gh.narrow(1, 5, 5)).sigmoid();
            Tensor n = gx.narrow(1, 10, 5).add(rr.mul(gh.narrow(1, 10, 5))).tanh();
            h = z.rsub(1).mul(n).add(z.mul(h));
            assertArrayEquals(h.toDoubleArray(), rg.output().select(0, t).toDoubleArray(), 1e-12, "GRU step " + t);
        }
    }

    /** The cells are one step of the layers with the same parameters. */
    @Test void cellsAreOneStepOfTheLayers() {
        LSTM l = lstm(3, 4, 1, false);
        LSTMCell cell = new LSTMCell(3, 4, new Generator(0)).to(DType.FLOAT64);
        GRU g = gru(3, 4, 1, false);
        GRUCell gcell = new GRUCell(3, 4, new Generator(0)).to(DType.FLOAT64);
        for (String n : List.of("weight_ih", "weight_hh", "bias_ih", "bias_hh")) {
            Init.assign(cell.parameter(n), l.parameter(n + "_l0"));
            Init.assign(gcell.parameter(n), g.parameter(n + "_l0"));
        }
        Tensor x = randn(31, 2, 3), h = randn(32, 2, 4), c = randn(33, 2, 4);
        RnnState s = cell.forward(x, new RnnState(h, c)), ref = l.forward(x.unsqueeze(0), new RnnState(h.unsqueeze(0), c.unsqueeze(0))).state();
        assertArrayEquals(ref.h().toDoubleArray(), s.h().toDoubleArray(), 1e-14);
        assertArrayEquals(ref.c().toDoubleArray(), s.c().toDoubleArray(), 1e-14);
        assertArrayEquals(g.forward(x.unsqueeze(0), h.unsqueeze(0)).state().h().toDoubleArray(), gcell.forward(x, h).toDoubleArray(), 1e-14);
        assertArrayEquals(new int[]{4}, gcell.forward(x.select(0, 0), h.select(0, 0)).shape(), "unbatched cell");
        assertArrayEquals(new int[]{4}, cell.forward(x.select(0, 0), null).c().shape());
    }

    /** Running a sequence in two calls, the state of the first passed to the second, equals one call. */
    @Test void stateCarriesAcrossCalls() {
        for (RnnBase m : new RnnBase[]{lstm(3, 4, 2, true), gru(3, 4, 2, true)}) {
            Tensor x = randn(41, 2, 7, 3);
            RnnOutput whole = m.forward(x), first = m.forward(x.narrow(1, 0, 4)), rest = m.forward(x.narrow(1, 4, 3), first.state());
            assertArrayEquals(whole.output().narrow(1, 4, 3).toDoubleArray(), rest.output().toDoubleArray(), 1e-14, m.toString());
            assertArrayEquals(whole.state().h().toDoubleArray(), rest.state().h().toDoubleArray(), 1e-14);
            assertArrayEquals(new int[]{2, 7, 4}, whole.output().shape());
            assertArrayEquals(new int[]{2, 2, 4}, whole.state().h().shape());
        }
    }

    @Test void unbatchedInputIsABatchOfOne() {
        LSTM l = lstm(3, 4, 2, true);
        Tensor x = randn(51, 5, 3);
        RnnOutput u = l.forward(x), b = l.forward(x.unsqueeze(0));
        assertArrayEquals(new int[]{5, 4}, u.output().shape());
        assertArrayEquals(new int[]{2, 4}, u.state().c().shape());
        assertArrayEquals(b.output().toDoubleArray(), u.output().toDoubleArray(), 1e-15);
        RnnOutput again = l.forward(x, u.state());
        assertArrayEquals(new int[]{2, 4}, again.state().h().shape());
    }

    @Test void dropoutActsBetweenLayersOnlyWhileTraining() {
        LSTM drop = new LSTM(3, 8, 2, true, false, 0.5, new Generator(7)).to(DType.FLOAT64);
        LSTM plain = new LSTM(3, 8, 2, true, false, 0, new Generator(7)).to(DType.FLOAT64);
        Tensor x = randn(61, 4, 2, 3);
        assertFalse(java.util.Arrays.equals(plain.forward(x).output().toDoubleArray(), drop.forward(x).output().toDoubleArray()), "training drops");
        drop.eval();
        assertArrayEquals(plain.forward(x).output().toDoubleArray(), drop.forward(x).output().toDoubleArray(), 0, "eval: no dropout");
        LSTM one = new LSTM(3, 8, 1, true, false, 0.5, new Generator(7)).to(DType.FLOAT64);
        LSTM oneRef = new LSTM(3, 8, 1, true, false, 0, new Generator(7)).to(DType.FLOAT64);
        assertArrayEquals(oneRef.forward(x).output().toDoubleArray(), one.forward(x).output().toDoubleArray(), 0, "nothing after the last layer");
    }

    @Test void autocastRunsTheLayerInBfloat16() {
        LSTM l = new LSTM(3, 8, 2, true, true, 0, new Generator(8));
        Tensor x = Tensor.randn(new Generator(9), 2, 5, 3);
        RnnOutput low;
        try (Autocast ac = Autocast.enable(DType.BFLOAT16)) {
            low = l.forward(x);
        }
        assertEquals(DType.BFLOAT16, low.output().dtype());
        assertArrayEquals(l.forward(x).output().toFloatArray(), low.output().toFloatArray(), 3e-2f);
        low.output().to(DType.FLOAT32).sum().backward();
        for (Tensor p : l.parameters()) assertEquals(DType.FLOAT32, p.grad().dtype());
    }

    @Test void argumentErrorsAreClear() {
        LSTM l = new LSTM(3, 4, 2, true, true, 0, new Generator(0));
        Tensor x = Tensor.randn(new Generator(1), 2, 5, 3);
        assertMessage("rank 3 (B, T, input_size)", () -> l.forward(Tensor.randn(new Generator(1), 2, 5, 3, 1)));
        assertMessage("input.size(-1) must be equal to input_size. Expected 3, got 7", () -> l.forward(Tensor.randn(new Generator(1), 2, 5, 7)));
        assertMessage("expected h0 of shape [2, 2, 4]", () -> l.forward(x, new RnnState(Tensor.zeros(2, 3, 4), Tensor.zeros(2, 2, 4))));
        assertMessage("expected c0 of shape [2, 2, 4]", () -> l.forward(x, new RnnState(Tensor.zeros(2, 2, 4), Tensor.zeros(1, 2, 4))));
        assertMessage("needs both h0 and c0", () -> l.forward(x, RnnState.of(Tensor.zeros(2, 2, 4))));
        assertMessage("input is float64 but the parameters are float32", () -> l.forward(x.to(DType.FLOAT64)));
        assertMessage("h0 is float64", () -> l.forward(x, new RnnState(Tensor.zeros(new int[]{2, 2, 4}, DType.FLOAT64, x.device()), Tensor.zeros(2, 2, 4))));
        assertMessage("expected a floating input", () -> l.forward(Tensor.of(new long[30], 2, 5, 3)));
        assertMessage("at least one step", () -> l.forward(Tensor.zeros(2, 0, 3)));
        assertMessage("bidirectional layers are not supported", () -> new LSTM(3, 4, 1, true, false, 0, true, new Generator(0)));
        assertMessage("dropout must be in [0, 1]", () -> new GRU(3, 4, 2, true, false, 1.5, new Generator(0)));
        assertMessage("must be >= 1", () -> new GRU(3, 0, new Generator(0)));
        assertMessage("the state is h alone", () -> new GRU(3, 4, new Generator(0)).forward(x.transpose(0, 1), new RnnState(Tensor.zeros(1, 5, 4), Tensor.zeros(1, 5, 4))));
        assertMessage("LSTMCell: expected input of shape (B, 3)", () -> new LSTMCell(3, 4, new Generator(0)).forward(x, null));
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        String m = assertThrows(IllegalArgumentException.class, call).getMessage();
        assertTrue(m.contains(part), "'" + part + "' not in: " + m);
    }
}
