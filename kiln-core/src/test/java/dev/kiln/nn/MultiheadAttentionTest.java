package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.GradCheck;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/**
 * nn.MultiheadAttention against a plain loop reference written from PyTorch's definition (per head: softmax(q k^T /
 * sqrt(d) + mask) v, bool masks true = not allowed), for every mask kind; PyTorch's names, shapes and counts; float64
 * gradients with each mask kind; and the errors.
 */
class MultiheadAttentionTest {
    static final int B = 2, L = 3, S = 4, E = 8, H = 2;

    static MultiheadAttention mha(boolean bias, boolean batchFirst) {
        MultiheadAttention m = new MultiheadAttention(E, H, bias, batchFirst, new Generator(3)).to(DType.FLOAT64);
        // non-zero biases, so the reference checks where they enter
        for (Tensor p : m.parameters()) if (p.dim() == 1) Init.assign(p, randn(40 + p.size(0), p.shape()));
        return m;
    }

    @Test void namesShapesCountsAndInitialisationArePyTorchs() {
        MultiheadAttention m = new MultiheadAttention(16, 4, true, false, new Generator(0));
        Map<String, Tensor> sd = m.stateDict();
        assertEquals(List.of("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"), List.copyOf(sd.keySet()));
        assertArrayEquals(new int[]{48, 16}, sd.get("in_proj_weight").shape());
        assertArrayEquals(new int[]{48}, sd.get("in_proj_bias").shape());
        assertEquals(1088, m.parameterCount(), "nn.MultiheadAttention(16, 4) has 1088 parameters");
        assertEquals(1024, new MultiheadAttention(16, 4, false, false, new Generator(0)).parameterCount(), "bias=False: 1024");
        assertEquals(List.of("in_proj_weight", "out_proj.weight"), List.copyOf(new MultiheadAttention(16, 4, false, true, new Generator(0)).stateDict().keySet()));
        assertEquals(0, sd.get("in_proj_bias").abs().sum().item());
        assertEquals(0, sd.get("out_proj.bias").abs().sum().item());
        // xavier_uniform: U(-a, a), a = sqrt(6 / (16 + 48))
        double a = Math.sqrt(6.0 / 64), max = sd.get("in_proj_weight").abs().max().item();
        assertTrue(max <= a && max > 0.9 * a, "in_proj_weight within xavier's bound " + a + ": max " + max);
    }

    /** The mask kinds, as (keyPaddingMask, attnMask, isCausal), with what each hides. */
    static List<Object[]> maskCases() {
        Tensor padBool = Tensor.of(new double[]{0, 0, 1, 0, 0, 1, 0, 1}, B, S).gt(0.5);        // ignore key 2; keys 1 and 3
        Tensor padFloat = randn(21, B, S);
        Tensor attnBool = Tensor.of(new double[]{0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0}, L, S).gt(0.5);
        double[] r = randn(22, B * H, L, S).toDoubleArray();
        for (int i = 0; i < r.length; i += S) r[i] = 0;                                         // key 0 always allowed: no empty row
        Tensor attnBool3 = Tensor.of(r, B * H, L, S).gt(0.8);
        Tensor attnFloat = randn(23, L, S);
        Tensor attnFloat3 = randn(24, B * H, L, S);
        return List.of(new Object[]{null, null, false}, new Object[]{padBool, null, false}, new Object[]{padFloat, null, false},
                new Object[]{null, attnBool, false}, new Object[]{null, attnBool3, false}, new Object[]{null, attnFloat, false},
                new Object[]{null, attnFloat3, false}, new Object[]{null, null, true}, new Object[]{padBool, attnBool, true},
                new Object[]{padBool, attnFloat, false}, new Object[]{padFloat, attnBool3, true});
    }

    @Test void matchesTheLoopReferenceForEveryMaskKind() {
        for (boolean batchFirst : new boolean[]{true, false}) {
            MultiheadAttention m = mha(true, batchFirst);
            Tensor q = randn(1, B, L, E), k = randn(2, B, S, E), v = randn(3, B, S, E);
            for (Object[] c : maskCases()) {
                Tensor pad = (Tensor) c[0], attn = (Tensor) c[1];
                boolean causal = (boolean) c[2];
                double[][] want = Reference.mha(m, q, k, v, pad, attn, causal);
                Tensor qi = batchFirst ? q : q.transpose(0, 1), ki = batchFirst ? k : k.transpose(0, 1), vi = batchFirst ? v : v.transpose(0, 1);
                MultiheadAttention.Output withWeights = m.forward(qi, ki, vi, pad, attn, causal, true);
                Tensor plain = m.forward(qi, ki, vi, pad, attn, causal, false).output();
                assertNull(m.forward(qi, ki, vi, pad, attn, causal, false).weights());
                String what = "batchFirst " + batchFirst + ", pad " + (pad == null ? "-" : pad.dtype()) + ", attn "
                        + (attn == null ? "-" : attn.dtype() + " " + attn.dim() + "-D") + ", causal " + causal;
                Tensor out = batchFirst ? plain : plain.transpose(0, 1), out2 = batchFirst ? withWeights.output() : withWeights.output().transpose(0, 1);
                assertArrayEquals(want[0], out.contiguous().toDoubleArray(), 1e-12, what + ": output (attention through F)");
                assertArrayEquals(want[0], out2.contiguous().toDoubleArray(), 1e-12, what + ": output (composite, with weights)");
                assertArrayEquals(new int[]{B, L, S}, withWeights.weights().shape());
                assertArrayEquals(want[1], withWeights.weights().toDoubleArray(), 1e-12, what + ": weights averaged over heads");
            }
        }
    }

    @Test void selfAttentionAndCrossAttentionAgreeOnTheSameTensors() {
        MultiheadAttention m = mha(true, true);
        Tensor x = randn(4, B, L, E);
        Tensor self = m.forward(x);
        Tensor cross = m.forward(x, x.add(0), x.mul(1));   // three tensors: three projections
        assertArrayEquals(self.toDoubleArray(), cross.toDoubleArray(), 1e-12);
    }

    @Test void unbatchedInputIsABatchOfOne() {
        MultiheadAttention m = mha(true, false);
        Tensor q = randn(5, L, E), k = randn(6, S, E), pad = Tensor.of(new double[]{0, 1, 0, 0}, S).gt(0.5);
        MultiheadAttention.Output one = m.forward(q, k, k, pad, null, false, true);
        MultiheadAttention.Output batch = m.forward(q.unsqueeze(1), k.unsqueeze(1), k.unsqueeze(1), pad.unsqueeze(0), null, false, true);
        assertArrayEquals(new int[]{L, E}, one.output().shape());
        assertArrayEquals(new int[]{L, S}, one.weights().shape());
        assertArrayEquals(batch.output().squeeze(1).contiguous().toDoubleArray(), one.output().toDoubleArray(), 1e-12);
        assertArrayEquals(batch.weights().squeeze(0).toDoubleArray(), one.weights().toDoubleArray(), 1e-12);
    }

    /** PyTorch's convention: a key that keyPaddingMask marks true is ignored, so changing it changes nothing. */
    @Test void aPaddedKeyHasNoInfluence() {
        MultiheadAttention m = mha(true, true);
        Tensor q = randn(7, B, L, E), k = randn(8, B, S, E), v = randn(9, B, S, E);
        Tensor pad = Tensor.of(new double[]{0, 0, 0, 1, 0, 1, 0, 0}, B, S).gt(0.5);   // batch 0 key 3, batch 1 key 1
        Tensor before = m.forward(q, k, v, pad, null, false, false).output();
        Tensor noise = Tensor.zeros(B, S, E).to(DType.FLOAT64);
        noise.narrow(0, 0, 1).narrow(1, 3, 1).copyFrom(randn(10, 1, 1, E).mul(100));
        noise.narrow(0, 1, 1).narrow(1, 1, 1).copyFrom(randn(11, 1, 1, E).mul(100));
        MultiheadAttention.Output after = m.forward(q, k.add(noise), v.add(noise), pad, null, false, true);
        assertArrayEquals(before.toDoubleArray(), after.output().toDoubleArray(), 1e-12, "a padded key changed the output");
        assertEquals(0, after.weights().select(0, 0).select(1, 3).abs().sum().item(), "no weight on a padded key");
        // and the mask does something: the same change without it moves the output
        Tensor unmasked = m.forward(q, k.add(noise), v.add(noise), null, null, false, false).output();
        assertTrue(unmasked.sub(before).abs().max().item() > 1e-3);
        // a bool attnMask true is "not allowed" too (the opposite of scaled_dot_product_attention's bool mask)
        Tensor attn = Tensor.of(new double[]{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, L, S).gt(0.5);
        Tensor a = m.forward(q, k, v, null, attn, false, false).output(), b = m.forward(q, k.add(noise.narrow(0, 0, 1)), v.add(noise.narrow(0, 0, 1)), null, attn, false, false).output();
        assertArrayEquals(a.select(0, 0).toDoubleArray(), b.select(0, 0).toDoubleArray(), 1e-12, "attnMask true hides the key");
    }

    @Test void weightsRowsSumToOneAndCausalHidesTheFuture() {
        MultiheadAttention m = mha(false, true);
        Tensor x = randn(12, B, L, E);
        Tensor w = m.forward(x, x, x, null, null, true, true).weights();
        double[] sums = w.sum(-1, false).toDoubleArray();
        for (double s : sums) assertEquals(1, s, 1e-12);
        assertEquals(0, w.select(1, 0).narrow(1, 1, L - 1).abs().sum().item(), "query 0 sees only key 0");
    }

    @Test void dropoutActsOnlyWhileTraining() {
        MultiheadAttention m = new MultiheadAttention(E, H, 0.5, true, true, new Generator(4)).to(DType.FLOAT64);
        Tensor x = randn(13, B, S, E);
        Tensor train1 = m.forward(x), train2 = m.forward(x);
        assertTrue(train1.sub(train2).abs().max().item() > 1e-6, "dropout draws new masks");
        m.eval();
        MultiheadAttention.Output eval = m.forward(x, x, x, null, null, false, true);
        assertArrayEquals(Reference.mha(m, x, x, x, null, null, false)[0], eval.output().toDoubleArray(), 1e-12);
    }

    /** Gradients of the inputs and of every parameter, in float64, with each mask kind. */
    @Test void gradientsWithEachMaskKind() {
        for (Object[] c : maskCases()) {
            Tensor pad = (Tensor) c[0], attn = (Tensor) c[1];
            boolean causal = (boolean) c[2];
            MultiheadAttention m = mha(true, false);
            GradCheck.check(in -> m.forward(in[0], in[1], in[2], pad, attn, causal, false).output(),
                    randn(31, L, B, E), randn(32, S, B, E), randn(33, S, B, E));
            GradCheck.check(in -> m.forward(in[0], in[1], in[1], pad, attn, causal, true).weights(), randn(34, L, B, E), randn(35, S, B, E));
            Tensor kv = randn(37, S, B, E);
            LayerGradCheck.check(new Wrapped(m, x -> m.forward(x, kv, kv, pad, attn, causal, false).output()), randn(38, L, B, E));
        }
    }

    /** A layer with m inside and one input, for LayerGradCheck. */
    private static final class Wrapped extends Layer implements Forward {
        private final transient Forward f;

        Wrapped(Layer inner, Forward f) {
            registerLayer("inner", inner);
            this.f = f;
        }

        @Override public Tensor forward(Tensor x) { return f.forward(x); }
    }

    @Test void errorsNameTheShapes() {
        MultiheadAttention m = new MultiheadAttention(E, H, true, true, new Generator(0));
        Tensor q = Tensor.zeros(B, L, E), k = Tensor.zeros(B, S, E);
        assertMessage("must be a positive multiple of numHeads", () -> new MultiheadAttention(10, 3, true, true, new Generator(0)));
        assertMessage("embedDim is 8 but the last dimensions are query [2, 3, 8], key [2, 4, 7]", () -> m.forward(q, Tensor.zeros(B, S, 7), Tensor.zeros(B, S, 7)));
        assertMessage("key and value shapes differ", () -> m.forward(q, k, Tensor.zeros(B, 5, E)));
        assertMessage("differ in batch size", () -> m.forward(q, Tensor.zeros(3, S, E), Tensor.zeros(3, S, E)));
        assertMessage("must all be 3-D (B, T, E) or all 2-D (T, E)", () -> m.forward(q, Tensor.zeros(S, E), Tensor.zeros(S, E)));
        assertMessage("keyPaddingMask must be (B, S) = [2, 4], got [2, 3]", () -> m.forward(q, k, k, Tensor.zeros(B, L).gt(0), null, false, false));
        assertMessage("attnMask must be (L, S) = [3, 4], got [4, 3]", () -> m.forward(q, k, k, null, Tensor.zeros(S, L).gt(0), false, false));
        assertMessage("attnMask must be (L, S) or (B*H, L, S) = [4, 3, 4], got [2, 3, 4]", () -> m.forward(q, k, k, null, Tensor.zeros(B, L, S).gt(0), false, false));
        assertMessage("must be bool (true = not allowed) or floating (added), got int64", () -> m.forward(q, k, k, Tensor.zeros(B, S).to(DType.INT64), null, false, false));
    }

    static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' lacks '" + part + "'");
    }

    /** Plain loops over double arrays, from PyTorch's definition: the reference the layer must match. */
    static final class Reference {
        /** q (B, L, E), k and v (B, S, E) batch-first; returns {output (B, L, E), head-averaged weights (B, L, S)}. */
        static double[][] mha(MultiheadAttention m, Tensor q, Tensor k, Tensor v, Tensor pad, Tensor attn, boolean causal) {
            double[] w = m.inProjWeight().toDoubleArray(), bias = m.inProjBias() == null ? new double[3 * E] : m.inProjBias().toDoubleArray();
            double[] wo = m.outProj().weight().toDoubleArray(), bo = m.outProj().bias() == null ? new double[E] : m.outProj().bias().toDoubleArray();
            double[] pq = project(q.contiguous().toDoubleArray(), w, bias, 0, q.size(1)), pk = project(k.contiguous().toDoubleArray(), w, bias, 1, S),
                    pv = project(v.contiguous().toDoubleArray(), w, bias, 2, S);
            double[] pm = pad == null ? null : pad.toDoubleArray(), am = attn == null ? null : attn.toDoubleArray();
            boolean padBool = pad != null && pad.dtype() == DType.BOOL, attnBool = attn != null && attn.dtype() == DType.BOOL;
            int l = q.size(1), d = E / H;
            double[] heads = new double[B * l * E], weights = new double[B * l * S];
            for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) for (int i = 0; i < l; i++) {
                double[] s = new double[S];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < S; j++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += pq[(b * l + i) * E + h * d + c] * pk[(b * S + j) * E + h * d + c];
                    s[j] = dot / Math.sqrt(d);
                    if (pm != null) s[j] += padBool ? (pm[b * S + j] != 0 ? Double.NEGATIVE_INFINITY : 0) : pm[b * S + j];
                    if (am != null) {
                        int at = attn.dim() == 2 ? i * S + j : ((b * H + h) * l + i) * S + j;
                        s[j] += attnBool ? (am[at] != 0 ? Double.NEGATIVE_INFINITY : 0) : am[at];
                    }
                    if (causal && j > i) s[j] = Double.NEGATIVE_INFINITY;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < S; j++) sum += s[j] = Math.exp(s[j] - max);
                for (int j = 0; j < S; j++) {
                    double p = s[j] / sum;
                    weights[(b * l + i) * S + j] += p / H;
                    for (int c = 0; c < d; c++) heads[(b * l + i) * E + h * d + c] += p * pv[(b * S + j) * E + h * d + c];
                }
            }
            double[] out = new double[B * l * E];
            for (int r = 0; r < B * l; r++) for (int o = 0; o < E; o++) {
                double acc = bo[o];
                for (int c = 0; c < E; c++) acc += heads[r * E + c] * wo[o * E + c];
                out[r * E + o] = acc;
            }
            return new double[][]{out, weights};
        }

        /** x (B, T, E) times rows part*E .. part*E+E-1 of w (3E, E), transposed, plus the bias. */
        private static double[] project(double[] x, double[] w, double[] bias, int part, int t) {
            double[] out = new double[B * t * E];
            for (int r = 0; r < B * t; r++) for (int o = 0; o < E; o++) {
                double acc = bias[part * E + o];
                for (int c = 0; c < E; c++) acc += x[r * E + c] * w[(part * E + o) * E + c];
                out[r * E + o] = acc;
            }
            return out;
        }
    }
}
