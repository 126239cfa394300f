package dev.kiln.models;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.Init;
import dev.kiln.nn.KvCache;
import dev.kiln.nn.LayerGradCheck;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** GPT: nanoGPT's names, the benchmark's and GPT-2's parameter counts, tying, the cache, generation, gradients, errors. */
class GptTest {
    /** The benchmark's model: V=65, d=384, 6 layers of 6 heads, 256 positions, erf GELU, a head with bias, untied. */
    static final GPT.Config BENCH = new GPT.Config(65, 256, 6, 6, 384, 0, true, true, false, F.GeluApproximation.NONE, 1e-5);

    static GPT tiny(boolean tied, long seed) {
        GPT.Config c = new GPT.Config(11, 12, 2, 2, 8, 0, true, !tied, tied, F.GeluApproximation.TANH, 1e-5);
        GPT m = new GPT(c, new Generator(seed)).to(DType.FLOAT64);
        // larger weights than nanoGPT's 0.02, so every path moves the logits
        for (Tensor p : m.parameters()) Init.assign(p, Tensor.randn(new Generator(seed + p.numel()), p.shape()).mul(0.4));
        return m;
    }

    static Tensor ids(long seed, int b, int t, int vocab) {
        long[] v = new long[b * t];
        java.util.Random r = new java.util.Random(seed);
        for (int i = 0; i < v.length; i++) v[i] = r.nextInt(vocab);
        return Tensor.of(v, b, t);
    }

    /**
     * The benchmark's PyTorch module, layer for layer: te, pe, blocks.{i}.{ln1, qkv, proj, ln2, fc, fc2}, ln, head
     * (10,795,841 parameters), under nanoGPT's names.
     */
    @Test void theBenchmarkModel() {
        GPT m = new GPT(BENCH, new Generator(0));
        assertEquals(10_795_841, m.parameterCount());
        Map<String, Tensor> sd = m.stateDict();
        Map<String, int[]> bench = new java.util.LinkedHashMap<>();
        bench.put("transformer.wte.weight", new int[]{65, 384});               // te
        bench.put("transformer.wpe.weight", new int[]{256, 384});              // pe
        for (int i = 0; i < 6; i++) {
            String h = "transformer.h." + i + ".";
            for (String ln : new String[]{"ln_1", "ln_2"}) {                   // ln1, ln2
                bench.put(h + ln + ".weight", new int[]{384});
                bench.put(h + ln + ".bias", new int[]{384});
            }
            bench.put(h + "attn.c_attn.weight", new int[]{1152, 384});         // qkv
            bench.put(h + "attn.c_attn.bias", new int[]{1152});
            bench.put(h + "attn.c_proj.weight", new int[]{384, 384});          // proj
            bench.put(h + "attn.c_proj.bias", new int[]{384});
            bench.put(h + "mlp.c_fc.weight", new int[]{1536, 384});            // fc
            bench.put(h + "mlp.c_fc.bias", new int[]{1536});
            bench.put(h + "mlp.c_proj.weight", new int[]{384, 1536});          // fc2
            bench.put(h + "mlp.c_proj.bias", new int[]{384});
        }
        bench.put("transformer.ln_f.weight", new int[]{384});                  // ln
        bench.put("transformer.ln_f.bias", new int[]{384});
        bench.put("lm_head.weight", new int[]{65, 384});                       // head
        bench.put("lm_head.bias", new int[]{65});
        assertEquals(bench.keySet(), sd.keySet());
        for (var e : bench.entrySet()) assertArrayEquals(e.getValue(), sd.get(e.getKey()).shape(), e.getKey());
        assertNotSame(sd.get("lm_head.weight"), sd.get("transformer.wte.weight"));
        m.eval();
        assertArrayEquals(new int[]{2, 5, 65}, Tensor.noGrad(() -> m.forward(ids(1, 2, 5, 65))).shape());
    }

    /** GPT-2 small as Hugging Face counts it: 124,439,808 parameters, the tied head counted once. */
    @Test void gpt2SmallHas124MParameters() {
        assertEquals(124_439_808, new GPT(GPT.Config.gpt2Small(), new Generator(0)).parameterCount());
    }

    @Test void tiedHeadIsTheEmbeddingUnderBothNames() {
        GPT m = new GPT(GPT.Config.gpt2(11, 12, 2, 2, 8), new Generator(0));
        Map<String, Tensor> sd = m.stateDict();
        assertSame(sd.get("transformer.wte.weight"), sd.get("lm_head.weight"), "one tensor under both names, as PyTorch's state dict");
        assertFalse(sd.containsKey("lm_head.bias"));
        assertFalse(m.namedParameters().containsKey("lm_head.weight"), "counted once");
        // nanoGPT's initialisation: N(0, 0.02), the residual projections N(0, 0.02 / sqrt(2 * layers)), zero biases
        GPT big = new GPT(GPT.Config.gpt2(50, 64, 4, 4, 256), new Generator(1));
        Map<String, Tensor> b = big.stateDict();
        assertEquals(0.02, std(b.get("transformer.h.0.mlp.c_fc.weight")), 0.001);
        assertEquals(0.02 / Math.sqrt(8), std(b.get("transformer.h.3.mlp.c_proj.weight")), 0.0005);
        assertEquals(0, b.get("transformer.h.1.attn.c_attn.bias").abs().max().item());
        // loading: a tied state dict without lm_head.weight (Hugging Face's) loads; one whose two names differ does not
        GPT other = new GPT(GPT.Config.gpt2(11, 12, 2, 2, 8), new Generator(5));
        Map<String, Tensor> noHead = new java.util.LinkedHashMap<>(other.stateDict());
        noHead.remove("lm_head.weight");
        m.load(noHead);
        assertArrayEquals(other.stateDict().get("transformer.wte.weight").toFloatArray(), m.stateDict().get("lm_head.weight").toFloatArray());
        Map<String, Tensor> differ = new java.util.LinkedHashMap<>(other.stateDict());
        differ.put("lm_head.weight", Tensor.zeros(11, 8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.load(differ));
        assertTrue(e.getMessage().contains("two different tensors under those names"), e.getMessage());
    }

    private static double std(Tensor t) {
        double[] v = t.toDoubleArray();
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s / v.length);
    }

    /** A prompt, single tokens and a chunk of two over the cache give the logits of one full pass. */
    @Test void cachedStepsGiveTheFullForwardsLogits() {
        for (boolean tied : new boolean[]{true, false}) {
            GPT m = tiny(tied, 3).eval();
            Tensor x = ids(4, 2, 12, 11);
            Tensor full = m.forward(x);
            try (KvCache cache = m.newCache()) {
                List<Tensor> steps = new ArrayList<>();
                steps.add(m.forward(x.narrow(1, 0, 5), cache));
                for (int t = 5; t < 9; t++) steps.add(m.forward(x.narrow(1, t, 1), cache));
                steps.add(m.forward(x.narrow(1, 9, 2), cache));
                steps.add(m.forward(x.narrow(1, 11, 1), cache));
                assertEquals(12, cache.length());
                assertArrayEquals(full.toDoubleArray(), Tensor.cat(steps, 1).toDoubleArray(), 1e-12, "tied " + tied);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.forward(x.narrow(1, 0, 1), cache));
                assertTrue(e.getMessage().contains("the cache holds 12 positions; 1 more exceed the context of 12"), e.getMessage());
            }
        }
    }

    /** Greedy generation is the argmax of a full pass at each step, also once the sequence outgrows the context. */
    @Test void greedyGenerationFollowsTheFullPass() {
        GPT m = tiny(true, 7);
        Tensor prompt = ids(8, 2, 4, 11);
        Tensor got = m.generate(prompt, 14, Sampling.greedy(), new Generator(0));   // 18 > context 12
        assertTrue(m.isTraining(), "generate restores the mode");
        m.eval();
        long[][] seq = {java.util.Arrays.copyOf(prompt.select(0, 0).toLongArray(), 18), java.util.Arrays.copyOf(prompt.select(0, 1).toLongArray(), 18)};
        for (int len = 4; len < 18; len++) {
            int from = Math.max(0, len - 12);
            long[] window = new long[2 * (len - from)];
            for (int r = 0; r < 2; r++) System.arraycopy(seq[r], from, window, r * (len - from), len - from);
            Tensor logits = m.forward(Tensor.of(window, 2, len - from));
            long[] next = logits.select(1, len - from - 1).argmax(-1, false).toLongArray();
            seq[0][len] = next[0];
            seq[1][len] = next[1];
        }
        assertArrayEquals(seq[0], got.select(0, 0).toLongArray());
        assertArrayEquals(seq[1], got.select(0, 1).toLongArray());
        Tensor sampled = m.generate(prompt, 5, new Sampling(1.0, 3), new Generator(9));
        assertArrayEquals(sampled.toLongArray(), m.generate(prompt, 5, new Sampling(1.0, 3), new Generator(9)).toLongArray(), "seeded");
    }

    /** Every parameter's gradient in float64, tied (the embedding gets both uses) and untied with a head bias. */
    @Test void endToEndGradients() {
        for (boolean tied : new boolean[]{true, false}) {
            GPT m = new GPT(new GPT.Config(5, 4, 2, 2, 4, 0, true, !tied, tied, F.GeluApproximation.TANH, 1e-5), new Generator(2)).to(DType.FLOAT64);
            for (Tensor p : m.parameters()) Init.assign(p, Tensor.randn(new Generator(p.numel()), p.shape()).mul(0.5));
            LayerGradCheck.check(m, ids(3, 2, 4, 5));
        }
    }

    @Test void errors() {
        GPT m = tiny(true, 1);
        assertMessage("GPT: 13 positions exceed the context of 12", () -> m.forward(ids(1, 1, 13, 11)));
        assertMessage("ids must be integer token ids of shape (B, T), got float32 [2, 3]", () -> m.forward(Tensor.zeros(2, 3)));
        assertMessage("ids must be integer token ids of shape (B, T)", () -> m.forward(ids(1, 1, 3, 11).reshape(3)));
        assertMessage("dim 10 is not a multiple of heads 4", () -> GPT.Config.gpt2(5, 4, 1, 4, 10));
        assertMessage("the cache has 3 layers, the model 2", () -> m.forward(ids(1, 1, 3, 11), new KvCache(3, 12)));
        assertThrows(IndexOutOfBoundsException.class, () -> m.forward(Tensor.of(new long[]{0, 15, 2}, 1, 3)));
    }

    static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' lacks '" + part + "'");
    }
}
