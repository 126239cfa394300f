package dev.kiln.models;

import dev.kiln.Generator;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.io.Json;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.F;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * A Hugging Face GPT-2 checkpoint as transformers' {@code save_pretrained} writes it (written against transformers
 * 4.4x and 5.x, whose GPT-2 layout is the same), read into a {@link GPT}.
 * <ul>
 * <li>{@code config.json}: n_embd, n_layer, n_head, n_positions (or n_ctx), vocab_size, layer_norm_epsilon,
 * activation_function ("gelu_new" and "gelu_pytorch_tanh": tanh GELU; "gelu": erf), tie_word_embeddings (default
 * true). Dropout is left out (the model is for inference); n_inner other than 4 n_embd and
 * scale_attn_by_inverse_layer_idx are refused.
 * <li>{@code model.safetensors}, or the shards {@code model.safetensors.index.json} lists: {@code wte.weight},
 * {@code h.0.attn.c_attn.weight}, ... with or without the {@code transformer.} prefix (GPT2LMHeadModel saves it,
 * GPT2Model and the original uploads do not). GPT-2's Conv1D stores weights (in, out), so c_attn, c_proj and c_fc
 * weights are transposed into Linear's (out, in). {@code lm_head.weight} is absent when tied. The attention buffers
 * {@code attn.bias} and {@code attn.masked_bias} (older versions save them) are ignored.
 * </ul>
 * Missing, unexpected and mis-shaped tensors are reported together, in the file's names.
 */
final class Gpt2Checkpoint {
    private Gpt2Checkpoint() {}

    private static final Pattern BUFFER = Pattern.compile("h\\.\\d+\\.attn\\.(bias|masked_bias)");
    private static final Pattern CONV1D = Pattern.compile("h\\.\\d+\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)\\.weight");
    private static final String PREFIX = "transformer.";

    static GPT load(Path dir) throws IOException {
        GPT.Config config = config(dir.resolve("config.json"));
        GPT model = new GPT(config, new Generator(0));
        Map<String, Tensor> file = tensors(dir);
        model.load(toKiln(file, model, dir));
        return model.eval();
    }

    /** The model config.json describes. */
    static GPT.Config config(Path file) throws IOException {
        Map<?, ?> m;
        try {
            if (!(Json.parse(Files.readString(file)) instanceof Map<?, ?> map)) throw new IOException(file + ": not a JSON object");
            m = map;
        } catch (Json.ParseException e) {
            throw new IOException(file + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        if (m.get("model_type") instanceof String type && !type.equals("gpt2")) {
            throw new IllegalArgumentException(file + ": model_type is \"" + type + "\", not \"gpt2\"");
        }
        int dim = integer(m, "n_embd", file), layers = integer(m, "n_layer", file), heads = integer(m, "n_head", file);
        int context = m.containsKey("n_positions") ? integer(m, "n_positions", file) : integer(m, "n_ctx", file);
        int vocab = integer(m, "vocab_size", file);
        double eps = m.get("layer_norm_epsilon") instanceof Number n ? n.doubleValue() : 1e-5;
        if (m.get("n_inner") instanceof Number inner && inner.intValue() != 4 * dim) {
            throw new IllegalArgumentException(file + ": n_inner " + inner + " is not 4 n_embd (" + 4 * dim + "), which GPT's MLP has");
        }
        if (Boolean.TRUE.equals(m.get("scale_attn_by_inverse_layer_idx"))) {
            throw new IllegalArgumentException(file + ": scale_attn_by_inverse_layer_idx is not supported");
        }
        String act = m.get("activation_function") instanceof String s ? s : "gelu_new";
        F.GeluApproximation gelu = switch (act) {
            case "gelu_new", "gelu_pytorch_tanh" -> F.GeluApproximation.TANH;
            case "gelu" -> F.GeluApproximation.NONE;
            default -> throw new IllegalArgumentException(file + ": activation_function \"" + act + "\" is not supported (gelu_new, gelu_pytorch_tanh, gelu)");
        };
        boolean tied = !Boolean.FALSE.equals(m.get("tie_word_embeddings"));
        return new GPT.Config(vocab, context, layers, heads, dim, 0, true, false, tied, gelu, eps);
    }

    private static int integer(Map<?, ?> m, String key, Path file) {
        if (!(m.get(key) instanceof Long v) || v < 1 || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(file + ": \"" + key + "\" must be a positive integer, got " + m.get(key));
        }
        return (int) (long) v;
    }

    /** Every tensor of the checkpoint: one file, or the shards its index names. */
    private static Map<String, Tensor> tensors(Path dir) throws IOException {
        Path single = dir.resolve("model.safetensors"), index = dir.resolve("model.safetensors.index.json");
        if (Files.isRegularFile(single)) return Safetensors.read(single).tensors();
        if (!Files.isRegularFile(index)) {
            throw new IOException(dir + ": no model.safetensors or model.safetensors.index.json (a pytorch_model.bin is not read: save with safe_serialization=True)");
        }
        Set<String> shards = new LinkedHashSet<>();
        try {
            if (!(Json.parse(Files.readString(index)) instanceof Map<?, ?> root) || !(root.get("weight_map") instanceof Map<?, ?> map)) {
                throw new IOException(index + ": no weight_map");
            }
            for (Object f : map.values()) shards.add(String.valueOf(f));
        } catch (Json.ParseException e) {
            throw new IOException(index + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String shard : shards) out.putAll(Safetensors.read(dir.resolve(shard)).tensors());
        return out;
    }

    /**
     * The file's tensors under the model's names, Conv1D weights transposed; every problem with them in one
     * exception, named as in the file (without the prefix).
     */
    static Map<String, Tensor> toKiln(Map<String, Tensor> file, GPT model, Path where) {
        Map<String, int[]> expected = new LinkedHashMap<>();   // file name -> shape as the file stores it
        for (var e : model.stateDict().entrySet()) {
            String name = e.getKey().startsWith(PREFIX) ? e.getKey().substring(PREFIX.length()) : e.getKey();
            int[] s = e.getValue().shape();
            expected.put(name, CONV1D.matcher(name).matches() ? new int[]{s[1], s[0]} : s);
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<String> unexpected = new TreeSet<>();
        List<String> misShaped = new ArrayList<>();
        for (var e : file.entrySet()) {
            String name = e.getKey().startsWith(PREFIX) ? e.getKey().substring(PREFIX.length()) : e.getKey();
            Tensor t = e.getValue();
            if (BUFFER.matcher(name).matches()) continue;
            int[] want = expected.get(name);
            if (want == null) {
                unexpected.add(name);
            } else if (!Arrays.equals(want, t.shape())) {
                misShaped.add(name + " is " + Shape.str(t.shape()) + ", expected " + Shape.str(want) + (CONV1D.matcher(name).matches() ? " (Conv1D: (in, out))" : ""));
            } else {
                out.put(name.equals("lm_head.weight") ? name : PREFIX + name, CONV1D.matcher(name).matches() ? t.t().contiguous() : t);
            }
        }
        Set<String> missing = new TreeSet<>(expected.keySet());
        missing.removeAll(out.keySet().stream().map(k -> k.startsWith(PREFIX) ? k.substring(PREFIX.length()) : k).toList());
        missing.removeAll(misShaped.stream().map(s -> s.substring(0, s.indexOf(' '))).toList());
        if (model.config().tied()) missing.remove("lm_head.weight");
        if (!missing.isEmpty() || !unexpected.isEmpty() || !misShaped.isEmpty()) {
            GPT.Config c = model.config();
            throw new IllegalArgumentException(where + ": the tensors do not match a GPT-2 of n_embd " + c.dim() + ", n_layer " + c.layers()
                    + ", vocab_size " + c.vocab() + ", n_positions " + c.context() + (c.tied() ? ", tied" : ", untied") + ":"
                    + (missing.isEmpty() ? "" : " missing " + missing + ";") + (unexpected.isEmpty() ? "" : " unexpected " + unexpected + ";")
                    + (misShaped.isEmpty() ? "" : " mis-shaped " + misShaped + ";"));
        }
        return out;
    }
}
