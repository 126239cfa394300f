package dev.kiln.quant;

import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Sequential;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Post-training 8-bit quantization (int8 or FP8 E4M3, {@link QuantFormat}) of a {@link Sequential} model, as PyTorch's eager "prepare, calibrate, convert":
 * every {@link Linear} and {@link Conv2d} (nested Sequentials included) is wrapped in an observer, the float model runs
 * the calibration batches, and each is then replaced by a {@link QuantizedLinear} / {@link QuantizedConv2d} with the
 * observed input range; other layers (ReLU, pooling, batch norm, dropout) stay float. Kiln layers have no forward
 * hooks and other models keep their layers in final fields, so only Sequential models (mlp, cnn, cnn-bn) can be
 * converted here. Quantized models run on the CPU and on CUDA.
 */
public final class QuantizedModel {
    private QuantizedModel() {}

    /** Metadata key of a quantized checkpoint; its value is the format's {@link QuantFormat#cliName}. */
    public static final String META_QUANT = "kiln.quant";

    /** The calibrated quantized version of {@code model} (which is left as it was), from the first {@code cal.batches()} inputs. */
    public static Sequential quantize(QuantFormat format, Layer model, Iterable<Tensor> inputs, Calibration cal) {
        Sequential seq = requireSequential(model);
        List<Observer> observers = new ArrayList<>();
        Sequential observed = observe(seq, cal, observers);
        boolean training = seq.isTraining();
        seq.eval();
        int n = 0;
        try {
            for (Tensor x : inputs) {
                if (n++ == cal.batches()) break;
                Tensor.noGrad(() -> observed.forward(x));
            }
        } finally {
            seq.train(training);
        }
        if (n == 0) throw new IllegalArgumentException("calibration got no batches");
        return convert(format, seq, observers.iterator());
    }

    private static Sequential requireSequential(Layer model) {
        if (model instanceof Sequential s) return s;
        throw new IllegalArgumentException("quantization converts Sequential models (mlp, cnn, cnn-bn); "
                + model.getClass().getSimpleName() + " keeps its layers in its own fields");
    }

    /** The same layers with each Linear and Conv2d behind an observer, collected in order. */
    private static Sequential observe(Sequential seq, Calibration cal, List<Observer> out) {
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < seq.size(); i++) {
            Layer l = seq.get(i);
            layers.add(switch (l) {
                case Linear lin -> add(out, new Observer(lin, cal));
                case Conv2d conv -> add(out, new Observer(conv, cal));
                case Sequential inner -> observe(inner, cal, out);
                default -> l;
            });
        }
        return new Sequential(layers);
    }

    private static Observer add(List<Observer> out, Observer o) {
        out.add(o);
        return o;
    }

    private static Sequential convert(QuantFormat format, Sequential seq, java.util.Iterator<Observer> observers) {
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < seq.size(); i++) {
            Layer l = seq.get(i);
            layers.add(switch (l) {
                case Linear lin -> QuantizedLinear.of(format, lin, observers.next().range());
                case Conv2d conv -> QuantizedConv2d.of(format, conv, observers.next().range());
                case Sequential inner -> convert(format, inner, observers);
                default -> l;
            });
        }
        return new Sequential(layers);
    }

    /**
     * The model for quantization-aware training: each Linear and Conv2d of {@code model} (nested Sequentials included)
     * behind a {@link FakeQuantized} that shares its parameters. Train it (in training mode: the input ranges are
     * observed then), then {@link #convertQat}.
     */
    public static Sequential prepareQat(Layer model) {
        Sequential seq = requireSequential(model);
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < seq.size(); i++) {
            Layer l = seq.get(i);
            layers.add(switch (l) {
                case Linear lin -> new FakeQuantized(lin);
                case Conv2d conv -> new FakeQuantized(conv);
                case Sequential inner -> prepareQat(inner);
                default -> l;
            });
        }
        return new Sequential(layers);
    }

    /** The int8 model of a trained {@link #prepareQat} model, with the input ranges its training saw. */
    public static Sequential convertQat(Sequential qat) {
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < qat.size(); i++) {
            Layer l = qat.get(i);
            layers.add(switch (l) {
                case FakeQuantized f when f.layer() instanceof Linear lin -> QuantizedLinear.of(QuantFormat.INT8, lin, f.range());
                case FakeQuantized f when f.layer() instanceof Conv2d conv -> QuantizedConv2d.of(QuantFormat.INT8, conv, f.range());
                case Sequential inner -> convertQat(inner);
                default -> l;
            });
        }
        return new Sequential(layers);
    }

    /** Records the range of a layer's inputs and runs the layer. */
    private static final class Observer extends Layer implements Forward {
        private final Forward layer;
        private final Calibration cal;
        private double range;
        private int seen;

        Observer(Layer layer, Calibration cal) {
            this.layer = (Forward) registerLayer("layer", layer);
            this.cal = cal;
        }

        @Override public Tensor forward(Tensor x) {
            range = cal.combine(range, cal.rangeOf(x.toFloatArray()), ++seen);
            return layer.forward(x);
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
    public static void save(Path file, Sequential model, Map<String, String> metadata) throws IOException {
        Map<String, Safetensors.Codes> codes = new LinkedHashMap<>();
        QuantFormat[] format = {null};
        collectCodes(model, "", codes, format);
        if (format[0] == null) throw new IllegalArgumentException("the model has no quantized layer to save");
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put(META_QUANT, format[0].cliName());
        Safetensors.write(file, model.stateDict(), codes, meta);
    }

    private static void collectCodes(Layer layer, String prefix, Map<String, Safetensors.Codes> out, QuantFormat[] format) {
        switch (layer) {
            case QuantizedLinear q -> out.put(prefix + "weight", codes(q.format(), q.codes(), q.weightShape(), format));
            case QuantizedConv2d q -> out.put(prefix + "weight", codes(q.format(), q.codes(), q.weightShape(), format));
            default -> { }
        }
        for (var e : layer.children().entrySet()) collectCodes(e.getValue(), prefix + e.getKey() + ".", out, format);
    }

    private static Safetensors.Codes codes(QuantFormat f, byte[] values, int[] shape, QuantFormat[] format) {
        if (format[0] != null && format[0] != f) throw new IllegalArgumentException("the model mixes " + format[0].cliName() + " and " + f.cliName() + " layers");
        format[0] = f;
        return new Safetensors.Codes(f, values, shape);
    }

    /**
     * The quantized model a checkpoint holds, on the structure of {@code floatModel} (the zoo model it was quantized
     * from, built fresh): each Linear and Conv2d becomes the quantized layer of the file's codes and scales, then every
     * float tensor is loaded by name (strictly: a missing or unexpected name is an error).
     */
    public static Sequential load(Safetensors.Contents contents, Layer floatModel) {
        QuantFormat format = formatOf(contents.metadata());
        if (format == null) throw new IllegalArgumentException("the checkpoint's metadata names no quantization format (" + META_QUANT + ")");
        Sequential q = fromFile(format, requireSequential(floatModel), "", contents);
        q.loadStateDict(contents.tensors());
        return q;
    }

    private static Sequential fromFile(QuantFormat format, Sequential seq, String prefix, Safetensors.Contents c) {
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < seq.size(); i++) {
            Layer l = seq.get(i);
            String name = prefix + i + ".";
            layers.add(switch (l) {
                case Linear lin -> {
                    int[] s = lin.weight().shape();
                    yield new QuantizedLinear(format, codes(format, c, name, s), s[0], s[1], tensor(c, name + "weight_scale"), tensor(c, name + "input_scale"),
                            lin.bias() == null ? null : tensor(c, name + "bias"));
                }
                case Conv2d conv -> {
                    int[] s = conv.weight().shape();
                    yield new QuantizedConv2d(format, codes(format, c, name, s), s[0], s[1], s[2], conv.geometry(), tensor(c, name + "weight_scale"),
                            tensor(c, name + "input_scale"), conv.bias() == null ? null : tensor(c, name + "bias"));
                }
                case Sequential inner -> fromFile(format, inner, name, c);
                default -> l;
            });
        }
        return new Sequential(layers);
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
