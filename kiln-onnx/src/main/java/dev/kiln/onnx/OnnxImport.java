package dev.kiln.onnx;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.nn.F;
import dev.kiln.nn.Model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads an ONNX model of the op set {@link OnnxExport} writes (Conv, ConvTranspose, BatchNormalization, Relu, LeakyRelu,
 * MaxPool, Resize (nearest, whole factors), GlobalAveragePool, Flatten, Gemm, MatMul, Add, Mul, Reshape,
 * InstanceNormalization, Identity; float32 and int64 initializers, as raw data or the typed field) into a Kiln {@link Model} that
 * runs its graph with Kiln's ops, node by node. The initializers become the model's buffers (their names with '.' as
 * '_'), so {@code to(device)} moves them; there is nothing to train. A node outside the op set, or an attribute
 * Kiln's ops cannot honour (asymmetric pads, Gemm's transA, ...), is refused when the file is read, naming it.
 */
public final class OnnxImport {
    private OnnxImport() {}

    private static final Set<String> OPS = Set.of("Conv", "ConvTranspose", "BatchNormalization", "Relu", "LeakyRelu", "MaxPool", "Resize", "GlobalAveragePool",
            "Flatten", "Gemm", "MatMul", "Add", "Mul", "Reshape", "InstanceNormalization", "Identity");

    /** One node: its op, inputs, output and attributes (ints as long[], floats as Float). */
    private record Node(String op, List<String> inputs, String output, Map<String, Object> attributes) {
        long[] ints(String name, long... fallback) { return attributes.get(name) instanceof long[] v ? v : fallback; }

        long integer(String name, long fallback) { return attributes.get(name) instanceof Long v ? v : fallback; }

        float real(String name, float fallback) { return attributes.get(name) instanceof Float v ? v : fallback; }

        String text(String name, String fallback) { return attributes.get(name) instanceof String v ? v : fallback; }
    }

    /** Reads a file written by {@link OnnxExport} (or another exporter keeping to its op set). */
    public static Model read(Path file) throws IOException {
        try {
            return read(Files.readAllBytes(file));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Reads ONNX bytes; fails with an IllegalArgumentException saying what is not supported or malformed. */
    public static Model read(byte[] bytes) {
        DynamicMessage model;
        try {
            model = DynamicMessage.parseFrom(OnnxProtos.MODEL, bytes);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalArgumentException("not an ONNX model (" + e.getMessage() + ")", e);
        }
        Message graph = (Message) get(model, "graph");
        Map<String, Tensor> weights = new LinkedHashMap<>();
        for (Object t : list(graph, "initializer")) weights.put((String) get((Message) t, "name"), tensor((Message) t));
        List<Node> nodes = new ArrayList<>();
        for (Object n : list(graph, "node")) nodes.add(node((Message) n));
        List<?> inputs = list(graph, "input"), outputs = list(graph, "output");
        String input = inputs.stream().map(v -> (String) get((Message) v, "name")).filter(n -> !weights.containsKey(n)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("the graph has no input"));
        if (outputs.size() != 1) throw new IllegalArgumentException("the graph has " + outputs.size() + " outputs; Kiln reads models of one");
        return new Graph(input, (String) get((Message) outputs.getFirst(), "name"), nodes, weights);
    }

    private static Object get(Message m, String field) { return m.getField(m.getDescriptorForType().findFieldByName(field)); }

    private static List<?> list(Message m, String field) { return (List<?>) get(m, field); }

    private static Node node(Message n) {
        String op = (String) get(n, "op_type");
        if (!OPS.contains(op)) throw new IllegalArgumentException("node " + get(n, "name") + ": op " + op + " is not one Kiln reads (" + String.join(", ", OPS) + ")");
        Map<String, Object> attributes = new HashMap<>();
        for (Object a : list(n, "attribute")) {
            Message attr = (Message) a;
            String name = (String) get(attr, "name");
            switch (((EnumValueDescriptor) get(attr, "type")).getNumber()) {
                case OnnxProtos.ATTR_INT -> attributes.put(name, (Long) get(attr, "i"));
                case OnnxProtos.ATTR_FLOAT -> attributes.put(name, (Float) get(attr, "f"));
                case OnnxProtos.ATTR_INTS -> attributes.put(name, list(attr, "ints").stream().mapToLong(v -> (Long) v).toArray());
                case OnnxProtos.ATTR_STRING -> attributes.put(name, ((ByteString) get(attr, "s")).toStringUtf8());
                default -> { } // the rest: none that this op set reads
            }
        }
        List<String> outs = list(n, "output").stream().map(o -> (String) o).toList();
        Node node = new Node(op, list(n, "input").stream().map(i -> (String) i).toList(), outs.getFirst(), attributes);
        check(node, (String) get(n, "name"));
        return node;
    }

    /** Refuses what Kiln's ops would compute differently from ONNX's definition. */
    private static void check(Node n, String name) {
        String why = switch (n.op()) {
            case "Conv", "MaxPool", "ConvTranspose" -> {
                long[] p = n.ints("pads", 0, 0, 0, 0);
                long[] k = n.ints("kernel_shape");
                if (p.length != 4 || p[0] != p[2] || p[1] != p[3]) yield "asymmetric or non-2-d pads";
                if (n.op().equals("MaxPool") && (k.length != 2 || k[0] != k[1] || n.ints("strides", k)[0] != n.ints("strides", k)[1] || p[0] != p[1]
                        || n.integer("ceil_mode", 0) != 0)) yield "a non-square window, stride or padding, or ceil_mode";
                long[] op = n.ints("output_padding", 0, 0);
                if (n.op().equals("ConvTranspose") && (n.ints("output_shape").length > 0 || op.length != 2 || op[0] != op[1])) {
                    yield "output_shape, or output_padding other than one amount for both dims";
                }
                yield null;
            }
            case "Gemm" -> n.integer("transA", 0) != 0 || n.integer("transB", 0) != 1 || n.real("alpha", 1) != 1 || n.real("beta", 1) != 1
                    ? "only Gemm(x, W, b) with transB = 1 and alpha = beta = 1 (a Linear layer)" : null;
            case "Flatten" -> n.integer("axis", 1) != 1 ? "only axis 1" : null;
            case "Reshape" -> n.integer("allowzero", 0) != 0 ? "allowzero" : null;
            // PyTorch's nearest upsampling; the scales (an initializer) are checked when the node runs
            case "Resize" -> !"nearest".equals(n.text("mode", "nearest")) || !"asymmetric".equals(n.text("coordinate_transformation_mode", "half_pixel"))
                    || !"floor".equals(n.text("nearest_mode", "round_prefer_floor")) || n.inputs().size() != 3
                    ? "only mode nearest with asymmetric coordinates, nearest_mode floor and scales (no sizes)" : null;
            default -> null;
        };
        if (why != null) throw new IllegalArgumentException("node " + name + " (" + n.op() + "): " + why + " is not supported");
    }

    /** A float32 initializer (weights) or an int64 one (Reshape's shapes), as raw data or the typed field. */
    private static Tensor tensor(Message t) {
        String name = (String) get(t, "name");
        int type = (Integer) get(t, "data_type");
        if (type != OnnxProtos.FLOAT && type != OnnxProtos.INT64) throw new IllegalArgumentException("initializer " + name + " is neither float32 nor int64");
        boolean floats = type == OnnxProtos.FLOAT;
        int[] dims = list(t, "dims").stream().mapToInt(d -> Math.toIntExact((Long) d)).toArray();
        int n = 1;
        for (int d : dims) n *= d;
        ByteString raw = (ByteString) get(t, "raw_data");
        int width = floats ? 4 : 8;
        if (!raw.isEmpty()) {
            if (raw.size() != (long) width * n) throw new IllegalArgumentException("initializer " + name + " holds " + raw.size() + " bytes for " + n + " values");
            ByteBuffer b = ByteBuffer.wrap(raw.toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
            if (floats) {
                float[] v = new float[n];
                b.asFloatBuffer().get(v);
                return Tensor.of(v, dims);
            }
            long[] v = new long[n];
            b.asLongBuffer().get(v);
            return Tensor.of(v, dims);
        }
        List<?> data = list(t, floats ? "float_data" : "int64_data");
        if (data.size() != n) throw new IllegalArgumentException("initializer " + name + " holds " + data.size() + " values for " + n);
        if (floats) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) v[i] = (Float) data.get(i);
            return Tensor.of(v, dims);
        }
        return Tensor.of(data.stream().mapToLong(d -> (Long) d).toArray(), dims);
    }

    /** The graph as a model: the initializers as buffers, forward runs the nodes in order. */
    private static final class Graph extends Model {
        private final String input, output;
        private final List<Node> nodes;
        private final Map<String, String> bufferNames = new HashMap<>();   // ONNX name -> buffer name

        Graph(String input, String output, List<Node> nodes, Map<String, Tensor> weights) {
            this.input = input;
            this.output = output;
            this.nodes = nodes;
            int i = 0;
            for (var w : weights.entrySet()) {
                String name = w.getKey().replace('.', '_');
                if (bufferNames.containsValue(name)) name = name + "_" + i;
                registerBuffer(name, w.getValue());
                bufferNames.put(w.getKey(), name);
                i++;
            }
        }

        @Override public Tensor forward(Tensor x) {
            Map<String, Tensor> values = new HashMap<>();
            values.put(input, x);
            for (Node n : nodes) values.put(n.output(), run(n, values));
            Tensor y = values.get(output);
            if (y == null) throw new IllegalStateException("ONNX graph: no node computes the output " + output);
            return y;
        }

        /** ONNX Reshape's target: 0 keeps the input's size there, -1 takes what is left. */
        private static int[] reshapeTarget(int[] from, long[] to) {
            int[] shape = new int[to.length];
            for (int d = 0; d < to.length; d++) {
                if (to[d] == 0 && d >= from.length) throw new IllegalArgumentException("ONNX graph: Reshape keeps dim " + d + " of a " + from.length + "-d input");
                shape[d] = to[d] == 0 ? from[d] : Math.toIntExact(to[d]);
            }
            return shape;   // a -1 is left for Tensor.reshape to infer
        }

        private Tensor value(Map<String, Tensor> values, String name) {
            Tensor t = values.get(name);
            if (t != null) return t;
            String buffer = bufferNames.get(name);
            if (buffer == null) throw new IllegalStateException("ONNX graph: " + name + " is used before a node computes it");
            return buffer(buffer);
        }

        private Tensor run(Node n, Map<String, Tensor> values) {
            List<Tensor> in = n.inputs().stream().filter(s -> !s.isEmpty()).map(s -> value(values, s)).toList();
            Tensor x = in.getFirst();
            return switch (n.op()) {
                case "Conv" -> {
                    long[] s = n.ints("strides", 1, 1), p = n.ints("pads", 0, 0, 0, 0), d = n.ints("dilations", 1, 1);
                    Conv2dParams g = new Conv2dParams((int) s[0], (int) s[1], (int) p[0], (int) p[1], (int) d[0], (int) d[1], (int) n.integer("group", 1));
                    yield F.conv2d(x, in.get(1), in.size() > 2 ? in.get(2) : null, g);
                }
                case "ConvTranspose" -> {
                    long[] s = n.ints("strides", 1, 1), p = n.ints("pads", 0, 0, 0, 0), d = n.ints("dilations", 1, 1);
                    Conv2dParams g = new Conv2dParams((int) s[0], (int) s[1], (int) p[0], (int) p[1], (int) d[0], (int) d[1], (int) n.integer("group", 1));
                    yield F.convTranspose2d(x, in.get(1), in.size() > 2 ? in.get(2) : null, g, (int) n.ints("output_padding", 0, 0)[0]);
                }
                case "LeakyRelu" -> F.leakyRelu(x, n.real("alpha", 0.01f));
                case "BatchNormalization" -> F.batchNorm(x, in.get(3), in.get(4), in.get(1), in.get(2), false, 0.1, n.real("epsilon", 1e-5f));
                case "Relu" -> x.relu();
                case "MaxPool" -> {
                    long[] k = n.ints("kernel_shape");
                    yield F.maxPool2d(x, (int) k[0], (int) n.ints("strides", k)[0], (int) n.ints("pads", 0, 0, 0, 0)[0]);
                }
                case "Resize" -> {
                    float[] s = in.get(1).toFloatArray();
                    if (s.length != 4 || s[0] != 1 || s[1] != 1 || s[2] != s[3] || s[2] < 1 || s[2] != Math.rint(s[2])) {
                        throw new IllegalArgumentException("ONNX graph: Resize scales " + Arrays.toString(s) + ": only (1, 1, s, s) with a whole s");
                    }
                    yield F.upsampleNearest(x, (int) s[2]);
                }
                case "GlobalAveragePool" -> F.adaptiveAvgPool2d(x, 1, 1);
                case "Flatten" -> x.flatten(1, -1);
                case "Gemm" -> F.linear(x, in.get(1), in.size() > 2 ? in.get(2) : null);
                case "MatMul" -> x.matmul(in.get(1));
                case "Add" -> x.add(in.get(1));
                case "Mul" -> x.mul(in.get(1));
                case "Reshape" -> x.reshape(reshapeTarget(x.shape(), in.get(1).toLongArray()));
                case "InstanceNormalization" -> {
                    // each (sample, channel) normalised over the rest, then a scale and bias per channel
                    int[] s = x.shape(), rest = Arrays.copyOfRange(s, 2, s.length), perChannel = new int[s.length - 1];
                    Arrays.fill(perChannel, 1);
                    perChannel[0] = s[1];
                    Tensor normed = F.layerNorm(x, rest, null, null, n.real("epsilon", 1e-5f));
                    yield normed.mul(in.get(1).reshape(perChannel)).add(in.get(2).reshape(perChannel));
                }
                case "Identity" -> x;
                default -> throw new IllegalStateException("ONNX graph: op " + n.op() + " was accepted but has no implementation");
            };
        }
    }
}
