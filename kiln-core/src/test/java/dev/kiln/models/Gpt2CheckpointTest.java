package dev.kiln.models;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * GPT.fromHuggingFace on checkpoints written here the way transformers writes GPT-2's: Kiln GPT weights renamed,
 * Conv1D weights transposed to (in, out), lm_head dropped when tied, the attention buffers added. The same check
 * against transformers itself is cuda/Gpt2InteropGpuTest (bench/gpt2_interop.py).
 */
class Gpt2CheckpointTest {
    static final Pattern CONV1D = Pattern.compile(".*h\\.\\d+\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)\\.weight");

    /** GPT-2's names for the model's tensors, as GPT2LMHeadModel (prefix) or GPT2Model (none) saves them. */
    static Map<String, Tensor> huggingFaceStateDict(GPT m, boolean prefix) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (var e : m.stateDict().entrySet()) {
            String name = e.getKey();
            if (name.equals("lm_head.weight") && m.config().tied()) continue;
            if (!prefix && name.startsWith("transformer.")) name = name.substring("transformer.".length());
            out.put(name, CONV1D.matcher(name).matches() ? e.getValue().t().contiguous() : e.getValue());
        }
        int ctx = m.config().context();
        out.put((prefix ? "transformer." : "") + "h.0.attn.bias", Tensor.ones(1, 1, ctx, ctx));   // older versions save the mask buffer
        out.put((prefix ? "transformer." : "") + "h.1.attn.masked_bias", Tensor.scalar(-1e4));
        return out;
    }

    static void writeConfig(Path dir, GPT.Config c, String activation) throws IOException {
        Files.writeString(dir.resolve("config.json"), """
                {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": %d, "n_layer": %d, "n_head": %d,
                 "n_positions": %d, "vocab_size": %d, "layer_norm_epsilon": 1e-05, "activation_function": "%s",
                 "tie_word_embeddings": %s, "n_inner": null, "resid_pdrop": 0.1, "torch_dtype": "float32"}
                """.formatted(c.dim(), c.layers(), c.heads(), c.context(), c.vocab(), activation, c.tied()));
    }

    @Test void tiedCheckpointsWithAndWithoutThePrefixGiveTheSameLogits(@TempDir Path dir) throws IOException {
        GPT m = new GPT(GPT.Config.gpt2(23, 16, 2, 4, 16), new Generator(4)).eval();
        Tensor ids = GptTest.ids(5, 2, 9, 23);
        Tensor want = Tensor.noGrad(() -> m.forward(ids));
        for (boolean prefix : new boolean[]{true, false}) {
            writeConfig(dir, m.config(), "gelu_new");
            Safetensors.write(dir.resolve("model.safetensors"), huggingFaceStateDict(m, prefix), Map.of("format", "pt"));
            GPT loaded = GPT.fromHuggingFace(dir);
            assertEquals(m.config(), loaded.config());
            assertFalse(loaded.isTraining());
            assertArrayEquals(want.toFloatArray(), Tensor.noGrad(() -> loaded.forward(ids)).toFloatArray(), "prefix " + prefix);
        }
    }

    @Test void untiedCheckpointWithTheErfGelu(@TempDir Path dir) throws IOException {
        GPT.Config c = new GPT.Config(17, 8, 1, 2, 8, 0, true, false, false, F.GeluApproximation.NONE, 1e-5);
        GPT m = new GPT(c, new Generator(6)).eval();
        writeConfig(dir, c, "gelu");
        Safetensors.write(dir.resolve("model.safetensors"), huggingFaceStateDict(m, true), Map.of());
        Tensor ids = GptTest.ids(7, 1, 8, 17);
        GPT loaded = GPT.fromHuggingFace(dir);
        assertArrayEquals(Tensor.noGrad(() -> m.forward(ids)).toFloatArray(), Tensor.noGrad(() -> loaded.forward(ids)).toFloatArray());
    }

    @Test void shardedCheckpoint(@TempDir Path dir) throws IOException {
        GPT m = new GPT(GPT.Config.gpt2(13, 8, 2, 2, 8), new Generator(8)).eval();
        writeConfig(dir, m.config(), "gelu_pytorch_tanh");
        Map<String, Tensor> all = huggingFaceStateDict(m, false), a = new LinkedHashMap<>(), b = new LinkedHashMap<>();
        StringBuilder map = new StringBuilder();
        for (var e : all.entrySet()) {
            String shard = e.getKey().startsWith("h.1") ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
            (shard.contains("00002-of") ? b : a).put(e.getKey(), e.getValue());
            map.append(map.isEmpty() ? "" : ", ").append('"').append(e.getKey()).append("\": \"").append(shard).append('"');
        }
        Safetensors.write(dir.resolve("model-00001-of-00002.safetensors"), a, Map.of());
        Safetensors.write(dir.resolve("model-00002-of-00002.safetensors"), b, Map.of());
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {" + map + "}}");
        Tensor ids = GptTest.ids(9, 1, 8, 13);
        GPT loaded = GPT.fromHuggingFace(dir);
        assertArrayEquals(Tensor.noGrad(() -> m.forward(ids)).toFloatArray(), Tensor.noGrad(() -> loaded.forward(ids)).toFloatArray());
    }

    @Test void problemsAreReportedTogetherInTheFilesNames(@TempDir Path dir) throws IOException {
        GPT m = new GPT(GPT.Config.gpt2(13, 8, 2, 2, 8), new Generator(8));
        writeConfig(dir, m.config(), "gelu_new");
        Map<String, Tensor> sd = huggingFaceStateDict(m, true);
        sd.remove("transformer.h.1.ln_2.bias");
        sd.put("transformer.h.0.attn.c_attn.weight", sd.get("transformer.h.0.attn.c_attn.weight").t().contiguous());   // left (out, in)
        sd.put("transformer.h.2.ln_1.weight", Tensor.ones(8));
        Safetensors.write(dir.resolve("model.safetensors"), sd, Map.of());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GPT.fromHuggingFace(dir));
        assertTrue(e.getMessage().contains("missing [h.1.ln_2.bias]"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected [h.2.ln_1.weight]"), e.getMessage());
        assertTrue(e.getMessage().contains("mis-shaped [h.0.attn.c_attn.weight is [24, 8], expected [8, 24] (Conv1D: (in, out))]"), e.getMessage());
        // an untied config needs lm_head.weight
        writeConfig(dir, new GPT.Config(13, 8, 2, 2, 8, 0, true, false, false, F.GeluApproximation.TANH, 1e-5), "gelu_new");
        Safetensors.write(dir.resolve("model.safetensors"), huggingFaceStateDict(m, true), Map.of());
        e = assertThrows(IllegalArgumentException.class, () -> GPT.fromHuggingFace(dir));
        assertTrue(e.getMessage().contains("missing [lm_head.weight]"), e.getMessage());
    }

    @Test void configErrors(@TempDir Path dir) throws IOException {
        writeConfig(dir, GPT.Config.gpt2(13, 8, 2, 2, 8), "quick_gelu");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GPT.fromHuggingFace(dir));
        assertTrue(e.getMessage().contains("activation_function \"quick_gelu\" is not supported"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, \"vocab_size\": 5}");
        e = assertThrows(IllegalArgumentException.class, () -> GPT.fromHuggingFace(dir));
        assertTrue(e.getMessage().contains("\"n_ctx\" must be a positive integer, got null"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, \"n_positions\": 4, \"vocab_size\": 5}");
        IOException io = assertThrows(IOException.class, () -> GPT.fromHuggingFace(dir));
        assertTrue(io.getMessage().contains("no model.safetensors or model.safetensors.index.json"), io.getMessage());
    }
}
