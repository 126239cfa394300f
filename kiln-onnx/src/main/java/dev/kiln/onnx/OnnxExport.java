package dev.kiln.onnx;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.DynamicMessage;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.models.ResNet;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.ConvTranspose2d;
import dev.kiln.nn.Dropout;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.GroupNorm;
import dev.kiln.nn.Layer;
import dev.kiln.nn.LeakyReLU;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.Model;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Upsample;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Writes a Kiln image model as an ONNX model (opset 17, IR version 8): input {@code input} (N, C, H, W) float32 with N
 * free, output {@code logits} (N, classes), the parameters as initializers under their state-dict names. The model is
 * walked layer by layer, so it must be one whose layer order is its forward: a {@link Sequential} (the zoo's mlp, cnn,
 * cnn-bn) or a {@link ResNet} (its children in order, each residual block as its convolutions, batch norms, ReLUs and the
 * shortcut's Add). Layers map to Conv, ConvTranspose, BatchNormalization, Relu, LeakyRelu, MaxPool, GlobalAveragePool,
 * Resize (nearest upsampling), Flatten and Gemm, GroupNorm to Reshape, InstanceNormalization, Reshape, Mul and Add
 * (opset 17 has no group norm op; PyTorch exports it so too); dropout is
 * left out (evaluation mode); a batch norm folded for inference ({@link BatchNorm#isFolded}) adds nothing. Any other
 * layer is refused, naming it.
 */
public final class OnnxExport {
    /** The operator set written. */
    public static final int OPSET = 17;
    /** ONNX IR version 8 goes with opset 17 (ONNX 1.12). */
    public static final int IR_VERSION = 8;

    private final List<DynamicMessage> nodes = new ArrayList<>();
    private final List<DynamicMessage> initializers = new ArrayList<>();
    private int values;

    /** A value of the graph: its name and one example's shape (without N). */
    private record Value(String name, int[] shape) {}

    private OnnxExport() {}

    /** The model's ONNX bytes, for one example's input shape (C, H, W). */
    public static byte[] export(Model model, int[] inputShape) {
        if (inputShape.length != 3) throw new IllegalArgumentException("ONNX export: the input shape is (C, H, W), got " + Arrays.toString(inputShape));
        boolean training = model.isTraining();
        model.eval();
        try (GradMode ignored = GradMode.disabled()) {
            OnnxExport g = new OnnxExport();
            Value out = g.layer(model, "", new Value("input", inputShape.clone()));
            if (out.shape().length != 1) throw new IllegalArgumentException("ONNX export: the model's output is " + Arrays.toString(out.shape()) + " per example, not logits");
            return g.model(inputShape, out).toByteArray();
        } finally {
            model.train(training);
        }
    }

    /** Writes {@link #export} to a file. */
    public static void write(Model model, int[] inputShape, Path file) throws IOException {
        Files.write(file, export(model, inputShape));
    }

    private DynamicMessage model(int[] inputShape, Value out) {
        // the graph's output is named logits: a last Identity node renames the last value
        nodes.add(node("Identity", List.of(out.name()), "logits"));
        int[] in = new int[inputShape.length + 1];
        System.arraycopy(inputShape, 0, in, 1, inputShape.length);
        DynamicMessage graph = DynamicMessage.newBuilder(OnnxProtos.GRAPH)
                .setField(f(OnnxProtos.GRAPH, "name"), "kiln")
                .setField(f(OnnxProtos.GRAPH, "node"), nodes)
                .setField(f(OnnxProtos.GRAPH, "initializer"), initializers)
                .setField(f(OnnxProtos.GRAPH, "input"), List.of(valueInfo("input", in)))
                .setField(f(OnnxProtos.GRAPH, "output"), List.of(valueInfo("logits", new int[]{0, out.shape()[0]})))
                .build();
        DynamicMessage opset = DynamicMessage.newBuilder(OnnxProtos.OPSET)
                .setField(f(OnnxProtos.OPSET, "domain"), "")
                .setField(f(OnnxProtos.OPSET, "version"), (long) OPSET).build();
        return DynamicMessage.newBuilder(OnnxProtos.MODEL)
                .setField(f(OnnxProtos.MODEL, "ir_version"), (long) IR_VERSION)
                .setField(f(OnnxProtos.MODEL, "producer_name"), "kiln")
                .setField(f(OnnxProtos.MODEL, "producer_version"), "0.1.0")
                .setField(f(OnnxProtos.MODEL, "opset_import"), List.of(opset))
                .setField(f(OnnxProtos.MODEL, "graph"), graph)
                .build();
    }

    /** The nodes of one layer applied to x; returns its output. {@code path} is its state-dict prefix ("layer1.0."). */
    private Value layer(Layer l, String path, Value x) {
        return switch (l) {
            case Sequential s -> {
                for (int i = 0; i < s.size(); i++) x = layer(s.get(i), path + i + ".", x);
                yield x;
            }
            case ResNet r -> {
                for (Map.Entry<String, Layer> c : r.children().entrySet()) x = layer(c.getValue(), path + c.getKey() + ".", x);
                yield x;
            }
            case Conv2d c -> conv(c, path, x);
            case BatchNorm bn -> bn.isFolded() ? x : batchNorm(bn, path, x);
            case ConvTranspose2d c -> convTranspose(c, path, x);
            case ReLU _ -> op("Relu", x, x.shape());
            case LeakyReLU r -> op("LeakyRelu", x, x.shape(), real("alpha", (float) r.negativeSlope()));
            case Dropout _ -> x;
            case MaxPool2d p -> maxPool(p, x);
            case Upsample u -> upsample(u, path, x);
            case GroupNorm gn -> groupNorm(gn, path, x);
            case AdaptiveAvgPool2d p -> {
                if (p.outH() != 1 || p.outW() != 1) throw refused(l, path, "only a 1x1 adaptive average pool (GlobalAveragePool) is exported");
                yield op("GlobalAveragePool", x, new int[]{x.shape()[0], 1, 1});
            }
            case Flatten f -> {
                if (f.startDim() != 1 || (f.endDim() != -1 && f.endDim() != x.shape().length)) throw refused(l, path, "only Flatten(1, -1) is exported");
                yield flatten(x);
            }
            case Linear lin -> gemm(lin, path, x.shape().length == 1 ? x : flatten(x));   // torchvision's ResNet flattens without a layer
            default -> residualBlock(l, path, x);
        };
    }

    /** A ResNet block: convK, bnK (ReLU after each but the last), then the last batch norm plus the shortcut, ReLU. */
    private Value residualBlock(Layer block, String path, Value x) {
        Map<String, Layer> c = block.children();
        if (!(c.get("conv1") instanceof Conv2d) || !(c.get("bn1") instanceof BatchNorm)) {
            throw refused(block, path, "it has no ONNX mapping (exported: Sequential and ResNet models of Conv2d, ConvTranspose2d, BatchNorm, ReLU, "
                    + "LeakyReLU, MaxPool2d, Upsample, GroupNorm, AdaptiveAvgPool2d(1), Flatten, Linear, Dropout)");
        }
        int last = 1;
        while (c.get("conv" + (last + 1)) instanceof Conv2d) last++;
        Value y = x;
        for (int k = 1; k <= last; k++) {
            y = conv((Conv2d) c.get("conv" + k), path + "conv" + k + ".", y);
            BatchNorm bn = (BatchNorm) c.get("bn" + k);
            if (!bn.isFolded()) y = batchNorm(bn, path + "bn" + k + ".", y);
            if (k < last) y = op("Relu", y, y.shape());
        }
        Value shortcut = c.containsKey("downsample") ? layer(c.get("downsample"), path + "downsample.", x) : x;
        Value sum = next(y.shape());
        nodes.add(node("Add", List.of(y.name(), shortcut.name()), sum.name()));
        return op("Relu", sum, sum.shape());
    }

    private Value conv(Conv2d c, String path, Value x) {
        Conv2dParams g = c.geometry();
        int[] w = c.weight().shape();   // (O, C / groups, kH, kW)
        List<String> in = new ArrayList<>(List.of(x.name(), initializer(path + "weight", c.weight())));
        if (c.bias() != null) in.add(initializer(path + "bias", c.bias()));
        Value y = next(new int[]{w[0], g.outH(x.shape()[1], w[2]), g.outW(x.shape()[2], w[3])});
        nodes.add(node("Conv", in, y.name(),
                ints("kernel_shape", w[2], w[3]), ints("strides", g.strideH(), g.strideW()),
                ints("pads", g.padH(), g.padW(), g.padH(), g.padW()), ints("dilations", g.dilationH(), g.dilationW()),
                integer("group", g.groups())));
        return y;
    }

    /** ConvTranspose: ONNX keeps PyTorch's weight layout (in, out / groups, kH, kW) and output size rule. */
    private Value convTranspose(ConvTranspose2d c, String path, Value x) {
        Conv2dParams g = c.geometry();
        int[] w = c.weight().shape();
        int op = c.outputPadding();
        List<String> in = new ArrayList<>(List.of(x.name(), initializer(path + "weight", c.weight())));
        if (c.bias() != null) in.add(initializer(path + "bias", c.bias()));
        Value y = next(new int[]{w[1] * g.groups(), g.transposedOutH(x.shape()[1], w[2], op), g.transposedOutW(x.shape()[2], w[3], op)});
        nodes.add(node("ConvTranspose", in, y.name(),
                ints("kernel_shape", w[2], w[3]), ints("strides", g.strideH(), g.strideW()),
                ints("pads", g.padH(), g.padW(), g.padH(), g.padW()), ints("dilations", g.dilationH(), g.dilationW()),
                integer("group", g.groups()), ints("output_padding", op, op)));
        return y;
    }

    private Value batchNorm(BatchNorm bn, String path, Value x) {
        int c = bn.runningMean().size(0);
        String scale = bn.weight() != null ? initializer(path + "weight", bn.weight()) : initializer(path + "weight", Tensor.ones(c));
        String shift = bn.bias() != null ? initializer(path + "bias", bn.bias()) : initializer(path + "bias", Tensor.zeros(c));
        Value y = next(x.shape());
        nodes.add(node("BatchNormalization", List.of(x.name(), scale, shift, initializer(path + "running_mean", bn.runningMean()),
                initializer(path + "running_var", bn.runningVar())), y.name(), real("epsilon", (float) bn.eps())));
        return y;
    }

    private Value maxPool(MaxPool2d p, Value x) {
        int k = p.kernel(), s = p.stride(), pad = p.padding();
        Value y = next(new int[]{x.shape()[0], (x.shape()[1] + 2 * pad - k) / s + 1, (x.shape()[2] + 2 * pad - k) / s + 1});
        nodes.add(node("MaxPool", List.of(x.name()), y.name(), ints("kernel_shape", k, k), ints("strides", s, s), ints("pads", pad, pad, pad, pad)));
        return y;
    }

    /** Nearest upsampling by a whole factor as Resize: "asymmetric" coordinates and "floor" pick PyTorch's source pixel. */
    private Value upsample(Upsample u, String path, Value x) {
        int s = u.scale();
        Value y = next(new int[]{x.shape()[0], x.shape()[1] * s, x.shape()[2] * s});
        nodes.add(node("Resize", List.of(x.name(), "", initializer(path + "scales", Tensor.of(new float[]{1, 1, s, s}))), y.name(),
                string("mode", "nearest"), string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")));
        return y;
    }

    /**
     * GroupNorm as (N, G, -1) instance norm: each sample's group normalised over its elements, then reshaped back and
     * scaled and shifted per channel ((C, 1, 1) initializers).
     */
    private Value groupNorm(GroupNorm gn, String path, Value x) {
        int g = gn.numGroups(), c = x.shape()[0];
        Value grouped = next(new int[]{g, Arrays.stream(x.shape()).reduce(1, (a, b) -> a * b) / g});
        nodes.add(node("Reshape", List.of(x.name(), longInitializer(path + "grouped_shape", 0, g, -1)), grouped.name()));
        Value normed = next(grouped.shape());
        nodes.add(node("InstanceNormalization", List.of(grouped.name(), initializer(path + "group_scale", Tensor.ones(g)),
                initializer(path + "group_bias", Tensor.zeros(g))), normed.name(), real("epsilon", (float) gn.eps())));
        long[] back = new long[x.shape().length + 1];
        for (int d = 0; d < x.shape().length; d++) back[d + 1] = x.shape()[d];
        Value y = next(x.shape());
        nodes.add(node("Reshape", List.of(normed.name(), longInitializer(path + "shape", back)), y.name()));
        if (gn.weight() == null) return y;
        int[] perChannel = new int[x.shape().length];
        Arrays.fill(perChannel, 1);
        perChannel[0] = c;
        Value scaled = next(x.shape()), shifted = next(x.shape());
        nodes.add(node("Mul", List.of(y.name(), initializer(path + "weight", gn.weight().reshape(perChannel))), scaled.name()));
        nodes.add(node("Add", List.of(scaled.name(), initializer(path + "bias", gn.bias().reshape(perChannel))), shifted.name()));
        return shifted;
    }

    private Value flatten(Value x) {
        return op("Flatten", x, new int[]{Arrays.stream(x.shape()).reduce(1, (a, b) -> a * b)}, integer("axis", 1));
    }

    /** Linear as Gemm(x, W, b) with transB: Kiln keeps W as (out, in), as PyTorch. */
    private Value gemm(Linear l, String path, Value x) {
        List<String> in = new ArrayList<>(List.of(x.name(), initializer(path + "weight", l.weight())));
        if (l.bias() != null) in.add(initializer(path + "bias", l.bias()));
        Value y = next(new int[]{l.weight().size(0)});
        nodes.add(node("Gemm", in, y.name(), integer("transB", 1)));
        return y;
    }

    private Value op(String type, Value x, int[] shape, DynamicMessage... attributes) {
        Value y = next(shape);
        nodes.add(node(type, List.of(x.name()), y.name(), attributes));
        return y;
    }

    private Value next(int[] shape) { return new Value("t" + values++, shape); }

    private static IllegalArgumentException refused(Layer l, String path, String why) {
        String name = path.isEmpty() ? "the model" : path.substring(0, path.length() - 1);
        return new IllegalArgumentException("ONNX export: layer " + name + " (" + l.getClass().getSimpleName() + ") cannot be exported: " + why);
    }

    private DynamicMessage node(String type, List<String> inputs, String output, DynamicMessage... attributes) {
        return DynamicMessage.newBuilder(OnnxProtos.NODE)
                .setField(f(OnnxProtos.NODE, "name"), type.toLowerCase(java.util.Locale.ROOT) + "_" + nodes.size())
                .setField(f(OnnxProtos.NODE, "op_type"), type)
                .setField(f(OnnxProtos.NODE, "input"), inputs)
                .setField(f(OnnxProtos.NODE, "output"), List.of(output))
                .setField(f(OnnxProtos.NODE, "attribute"), List.of(attributes))
                .build();
    }

    /** Adds t as a float32 initializer (raw little-endian bytes, as ONNX's own exporters write) and returns its name. */
    private String initializer(String name, Tensor t) {
        float[] v = t.toFloatArray();
        ByteBuffer raw = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(v);
        List<Long> dims = Arrays.stream(t.shape()).mapToObj(d -> (long) d).toList();
        initializers.add(DynamicMessage.newBuilder(OnnxProtos.TENSOR)
                .setField(f(OnnxProtos.TENSOR, "name"), name)
                .setField(f(OnnxProtos.TENSOR, "dims"), dims)
                .setField(f(OnnxProtos.TENSOR, "data_type"), OnnxProtos.FLOAT)
                .setField(f(OnnxProtos.TENSOR, "raw_data"), ByteString.copyFrom(raw.array()))
                .build());
        return name;
    }

    /** Adds an int64 initializer (Reshape's target shape) and returns its name. */
    private String longInitializer(String name, long... v) {
        ByteBuffer raw = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asLongBuffer().put(v);
        initializers.add(DynamicMessage.newBuilder(OnnxProtos.TENSOR)
                .setField(f(OnnxProtos.TENSOR, "name"), name)
                .setField(f(OnnxProtos.TENSOR, "dims"), List.of((long) v.length))
                .setField(f(OnnxProtos.TENSOR, "data_type"), OnnxProtos.INT64)
                .setField(f(OnnxProtos.TENSOR, "raw_data"), ByteString.copyFrom(raw.array()))
                .build());
        return name;
    }

    /** A float32 tensor type; a dimension of 0 is the free batch dimension "N". */
    private static DynamicMessage valueInfo(String name, int[] dims) {
        List<DynamicMessage> dim = new ArrayList<>();
        for (int d : dims) {
            DynamicMessage.Builder b = DynamicMessage.newBuilder(OnnxProtos.DIMENSION);
            if (d == 0) b.setField(f(OnnxProtos.DIMENSION, "dim_param"), "N");
            else b.setField(f(OnnxProtos.DIMENSION, "dim_value"), (long) d);
            dim.add(b.build());
        }
        DynamicMessage tensor = DynamicMessage.newBuilder(OnnxProtos.TYPE_TENSOR)
                .setField(f(OnnxProtos.TYPE_TENSOR, "elem_type"), OnnxProtos.FLOAT)
                .setField(f(OnnxProtos.TYPE_TENSOR, "shape"), DynamicMessage.newBuilder(OnnxProtos.SHAPE).setField(f(OnnxProtos.SHAPE, "dim"), dim).build())
                .build();
        return DynamicMessage.newBuilder(OnnxProtos.VALUE_INFO)
                .setField(f(OnnxProtos.VALUE_INFO, "name"), name)
                .setField(f(OnnxProtos.VALUE_INFO, "type"), DynamicMessage.newBuilder(OnnxProtos.TYPE).setField(f(OnnxProtos.TYPE, "tensor_type"), tensor).build())
                .build();
    }

    private static DynamicMessage ints(String name, int... values) {
        return attribute(name, OnnxProtos.ATTR_INTS).setField(f(OnnxProtos.ATTRIBUTE, "ints"), Arrays.stream(values).mapToObj(v -> (long) v).toList()).build();
    }

    private static DynamicMessage integer(String name, long value) {
        return attribute(name, OnnxProtos.ATTR_INT).setField(f(OnnxProtos.ATTRIBUTE, "i"), value).build();
    }

    private static DynamicMessage string(String name, String value) {
        return attribute(name, OnnxProtos.ATTR_STRING).setField(f(OnnxProtos.ATTRIBUTE, "s"), ByteString.copyFromUtf8(value)).build();
    }

    private static DynamicMessage real(String name, float value) {
        return attribute(name, OnnxProtos.ATTR_FLOAT).setField(f(OnnxProtos.ATTRIBUTE, "f"), value).build();
    }

    private static DynamicMessage.Builder attribute(String name, int type) {
        return DynamicMessage.newBuilder(OnnxProtos.ATTRIBUTE)
                .setField(f(OnnxProtos.ATTRIBUTE, "name"), name)
                .setField(f(OnnxProtos.ATTRIBUTE, "type"), OnnxProtos.ATTRIBUTE.findEnumTypeByName("AttributeType").findValueByNumber(type));
    }

    private static com.google.protobuf.Descriptors.FieldDescriptor f(Descriptor d, String name) {
        com.google.protobuf.Descriptors.FieldDescriptor field = d.findFieldByName(name);
        if (field == null) throw new IllegalStateException(d.getName() + " has no field " + name);
        return field;
    }
}
