package dev.kiln.quant;

import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Model;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Post-training 8-bit quantization (int8 or FP8 E4M3, {@link QuantFormat}) of a model, as PyTorch's eager "prepare,
 * calibrate, convert", in place: every {@link Linear} and {@link Conv2d} is replaced ({@link Layer#replaceLayer}) by an
 * observer, the model runs the calibration batches, and each observer is then replaced by a {@link QuantizedLinear} /
 * {@link QuantizedConv2d} with the observed input range; other layers (ReLU, pooling, batch norm, dropout) stay float.
 * Kiln layers have no forward hooks, so this works for models whose layers take a replacement: Sequentials (mlp, cnn,
 * cnn-bn) and the ResNets; a model that calls a Linear through a field of its own (the GPT) is refused unchanged.
 * Batch norms are not folded first: per-channel weight scales absorb a folded batch norm's per-channel factor, so the
 * codes would be the same, and Kiln's batch norm with its residual add and ReLU is one pass either way. A ReLU right after
 * a quantized layer in a Sequential is folded into that layer's output pass ({@link #foldReLUs}, as PyTorch's
 * fuse_modules makes ConvReLU2d), which saves a pass over the layer's output.
 * Quantized models run on the CPU and on CUDA.
 */
public final class QuantizedModel {
    private QuantizedModel() {}

    /** Metadata key of a quantized checkpoint; its value is the format's {@link QuantFormat#cliName}. */
    public static final String META_QUANT = "kiln.quant";

    /**
     * Quantizes {@code model} in place, calibrated on the first {@code cal.batches()} inputs, and returns it in evaluation
     * mode (it is for inference). A model whose layers refuse replacement, or no calibration batch, leaves it as it was.
     */
    public static <M extends Model> M quantize(QuantFormat format, M model, Iterable<Tensor> inputs, Calibration cal) {
        Map<String, Observer> observers = new LinkedHashMap<>();
        replaceEach(model, l -> l instanceof Linear || l instanceof Conv2d, (path, l) -> {
            Observer o = new Observer(l, cal);
            observers.put(path, o);
            return o;
        });
        boolean training = model.isTraining();
        model.eval();
        Map<String, Layer> quantized = new LinkedHashMap<>();
        try {
            int n = 0;
            for (Tensor x : inputs) {
                if (n++ == cal.batches()) break;
                Tensor.noGrad(() -> model.forward(x));
            }
            if (n == 0) throw new IllegalArgumentException("calibration got no batches");
            observers.forEach((path, o) -> quantized.put(path, switch (o.layer) {
                case Linear lin -> QuantizedLinear.of(format, lin, o.range());
                case Conv2d conv -> QuantizedConv2d.of(format, conv, o.range());
                default -> throw new IllegalStateException("observers wrap Linear and Conv2d layers only");
            }));
        } catch (RuntimeException e) {
            observers.forEach((path, o) -> model.replaceLayer(path, o.layer));
            model.train(training);
            throw e;
        }
        quantized.forEach(model::replaceLayer);
        foldReLUs(model);
        return model;
    }

    /**
     * Replaces each layer below {@code model} that {@code which} selects by what {@code with} makes of it (given its
     * path); if one cannot be replaced, the ones already replaced are put back before the exception goes on.
     */
    private static void replaceEach(Layer model, java.util.function.Predicate<Layer> which, java.util.function.BiFunction<String, Layer, Layer> with) {
        List<Map.Entry<String, Layer>> done = new ArrayList<>();
        try {
            for (var e : model.namedLayers().entrySet()) {
                if (e.getKey().isEmpty() || !which.test(e.getValue())) continue;
                model.replaceLayer(e.getKey(), with.apply(e.getKey(), e.getValue()));
                done.add(e);
            }
        } catch (RuntimeException ex) {
            for (var e : done.reversed()) model.replaceLayer(e.getKey(), e.getValue());
            throw ex;
        }
    }

    /**
     * Prepares {@code model} in place for quantization-aware training and returns it: each Linear and Conv2d goes behind
     * a {@link FakeQuantized} that keeps it (its parameters are then named {@code <path>.layer.*}). Train it (in
     * training mode: the input ranges are observed then), then {@link #convertQat}.
     */
    public static <M extends Model> M prepareQat(M model) {
        replaceEach(model, l -> l instanceof Linear || l instanceof Conv2d, (path, l) -> new FakeQuantized(l));
        return model;
    }

    /** Replaces, in place, each {@link FakeQuantized} of a trained {@link #prepareQat} model by its int8 layer, with the input range its training saw. */
    public static <M extends Model> M convertQat(M qat) {
        replaceEach(qat, l -> l instanceof FakeQuantized, (path, l) -> {
            FakeQuantized f = (FakeQuantized) l;
            return switch (f.layer()) {
                case Linear lin -> QuantizedLinear.of(QuantFormat.INT8, lin, f.range());
                case Conv2d conv -> QuantizedConv2d.of(QuantFormat.INT8, conv, f.range());
                default -> throw new IllegalStateException("FakeQuantized wraps Linear and Conv2d layers only");
            };
        });
        foldReLUs(qat);
        return qat;
    }

    /**
     * Folds each ReLU that directly follows a {@link QuantizedLinear} or {@link QuantizedConv2d} in a {@link Sequential}
     * into that layer (its output pass takes max(y, 0)) and puts a pass-through in the ReLU's place. Neither has
     * parameters, so checkpoints are unchanged; {@link #load} folds again.
     */
    static void foldReLUs(Layer model) {
        for (Layer l : model.namedLayers().values()) {
            if (!(l instanceof Sequential s)) continue;
            for (int i = 0; i + 1 < s.size(); i++) {
                if (!(s.get(i + 1) instanceof ReLU)) continue;
                switch (s.get(i)) {
                    case QuantizedLinear q -> q.foldReLU();
                    case QuantizedConv2d q -> q.foldReLU();
                    default -> { continue; }
                }
                s.replaceLayer(Integer.toString(i + 1), new FoldedReLU());
            }
        }
    }

    /** Where a ReLU was, once {@link #foldReLUs} moved it into the quantized layer before: passes its input through. */
    private static final class FoldedReLU extends Layer implements Forward {
        @Override public Tensor forward(Tensor x) { return x; }

        @Override protected String extraRepr() { return "folded into the layer before"; }
    }

    /** Records the range of a layer's inputs and runs the layer. */
    private static final class Observer extends Layer implements Forward {
        private final Layer layer;
        private final Calibration cal;
        private double range;
        private int seen;

        Observer(Layer layer, Calibration cal) {
            this.layer = registerLayer("layer", layer);
            this.cal = cal;
        }

        @Override public Tensor forward(Tensor x) {
            range = cal.combine(range, cal.rangeOf(x.toFloatArray()), ++seen);
            return ((Forward) layer).forward(x);
        }

        double range() { return range; }
    }

    /** The format a checkpoint's metadata names, or null for a float checkpoint. */
    public static QuantFormat formatOf(Map<String, String> metadata) {
        String v = metadata.get(META_QUANT);
        if (v == null) return null;
        for (QuantFormat f : QuantFormat.values()) if (f.cliName().equals(v)) return f;
        throw new IllegalArgumentException("unknown quantization format '" + v + "' in the checkpoint's " + META_QUANT);
    }

    /** Whether a checkpoint's metadata says it holds a quantized model. */
    public static boolean isQuantized(Map<String, String> metadata) { return formatOf(metadata) != null; }

    /** Writes a quantized model: its float tensors (scales, biases, other layers), its weights' codes (I8 or F8_E4M3), and the metadata. */
    public static void save(Path file, Layer model, Map<String, String> metadata) throws IOException {
        Map<String, Safetensors.Codes> codes = new LinkedHashMap<>();
        QuantFormat format = null;
        for (var e : model.namedLayers().entrySet()) {
            Safetensors.Codes c = switch (e.getValue()) {
                case QuantizedLinear q -> new Safetensors.Codes(q.format(), q.codes(), q.weightShape());
                case QuantizedConv2d q -> new Safetensors.Codes(q.format(), q.codes(), q.weightShape());
                default -> null;
            };
            if (c == null) continue;
            if (format != null && format != c.format()) throw new IllegalArgumentException("the model mixes " + format.cliName() + " and " + c.format().cliName() + " layers");
            format = c.format();
            codes.put(prefix(e.getKey()) + "weight", c);
        }
        if (format == null) throw new IllegalArgumentException("the model has no quantized layer to save");
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put(META_QUANT, format.cliName());
        Safetensors.write(file, model.stateDict(), codes, meta);
    }

    private static String prefix(String path) { return path.isEmpty() ? "" : path + "."; }

    /**
     * Loads a quantized checkpoint into {@code floatModel} (the zoo model it was quantized from, built fresh) and returns
     * it: each Linear and Conv2d is replaced by the quantized layer of the file's codes and scales, then every float
     * tensor is loaded by name (strictly: a missing or unexpected name is an error).
     */
    public static <M extends Layer> M load(Safetensors.Contents contents, M floatModel) {
        QuantFormat format = formatOf(contents.metadata());
        if (format == null) throw new IllegalArgumentException("the checkpoint's metadata names no quantization format (" + META_QUANT + ")");
        replaceEach(floatModel, l -> l instanceof Linear || l instanceof Conv2d, (path, l) -> {
            String name = prefix(path);
            return switch (l) {
                case Linear lin -> {
                    int[] s = lin.weight().shape();
                    yield new QuantizedLinear(format, codes(format, contents, name, s), s[0], s[1], tensor(contents, name + "weight_scale"),
                            tensor(contents, name + "input_scale"), lin.bias() == null ? null : tensor(contents, name + "bias"));
                }
                case Conv2d conv -> {
                    int[] s = conv.weight().shape();
                    yield new QuantizedConv2d(format, codes(format, contents, name, s), s[0], s[1], s[2], conv.geometry(),
                            tensor(contents, name + "weight_scale"), tensor(contents, name + "input_scale"), conv.bias() == null ? null : tensor(contents, name + "bias"));
                }
                default -> throw new IllegalStateException("only Linear and Conv2d layers are selected");
            };
        });
        floatModel.loadStateDict(contents.tensors());
        foldReLUs(floatModel);
        return floatModel;
    }

    private static byte[] codes(QuantFormat format, Safetensors.Contents c, String prefix, int[] shape) {
        Safetensors.Codes a = c.codes().get(prefix + "weight");
        if (a == null || a.format() != format) {
            throw new IllegalArgumentException("the " + format.cliName() + " checkpoint has no " + format.cliName() + " tensor '" + prefix + "weight'");
        }
        if (!java.util.Arrays.equals(a.shape(), shape)) {
            throw new IllegalArgumentException("'" + prefix + "weight' has shape " + java.util.Arrays.toString(a.shape()) + " in the file but "
                    + java.util.Arrays.toString(shape) + " in the model");
        }
        return a.values();
    }

    private static Tensor tensor(Safetensors.Contents c, String name) {
        Tensor t = c.tensors().get(name);
        if (t == null) throw new IllegalArgumentException("the quantized checkpoint has no tensor '" + name + "'");
        return t.detach();
    }
}
