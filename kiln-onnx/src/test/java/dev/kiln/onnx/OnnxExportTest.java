package dev.kiln.onnx;

import com.google.protobuf.DynamicMessage;
import com.google.protobuf.Message;
import com.google.protobuf.UnknownFieldSet;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.ConvTranspose2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.GroupNorm;
import dev.kiln.nn.LeakyReLU;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Model;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.Sigmoid;
import dev.kiln.nn.Upsample;
import dev.kiln.train.ModelZoo;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * ONNX export of the zoo's image models: the bytes read back with the same descriptors (and, for the field numbers,
 * without them), and the graph run by {@link OnnxImport} against the model's own forward.
 */
class OnnxExportTest {

    static Tensor random(SplittableRandom rng, int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rng.nextGaussian();
        return Tensor.of(v, shape);
    }

    /** Batch norm statistics far from 0 and 1, so a misplaced or mis-wired BatchNormalization shows. */
    static Model model(ModelZoo kind, int[] input) {
        Model m = kind.build(new Generator(2), input, 10);
        SplittableRandom rng = new SplittableRandom(6);
        try (GradMode off = GradMode.disabled()) {
            for (Layer l : m.layers()) {
                if (!(l instanceof BatchNorm bn)) continue;
                int c = bn.runningMean().size(0);
                bn.runningMean().copyFrom(random(rng, c).mul(0.5));
                bn.runningVar().copyFrom(random(rng, c).mul(0.3).exp());
                bn.weight().copyFrom(random(rng, c).mul(0.2).add(1));
                bn.bias().copyFrom(random(rng, c).mul(0.2));
            }
        }
        m.eval();
        return m;
    }

    static float[] forward(Model m, Tensor x) {
        try (GradMode off = GradMode.disabled()) {
            return m.forward(x).toFloatArray();
        }
    }

    static List<String> opTypes(DynamicMessage model) {
        Message graph = (Message) model.getField(OnnxProtos.MODEL.findFieldByName("graph"));
        return ((List<?>) graph.getField(OnnxProtos.GRAPH.findFieldByName("node"))).stream()
                .map(n -> (String) ((Message) n).getField(OnnxProtos.NODE.findFieldByName("op_type"))).toList();
    }

    @Test void everyZooImageModelRunsTheSameFromItsOnnxGraph() throws Exception {
        record Case(ModelZoo kind, int[] input) {}
        for (Case c : List.of(new Case(ModelZoo.MLP, new int[]{1, 28, 28}), new Case(ModelZoo.CNN, new int[]{1, 28, 28}),
                new Case(ModelZoo.CNN_BN, new int[]{1, 28, 28}), new Case(ModelZoo.RESNET_SMALL, new int[]{3, 32, 32}),
                new Case(ModelZoo.RESNET18, new int[]{3, 64, 64}), new Case(ModelZoo.RESNET50, new int[]{3, 32, 32}))) {
            Model m = model(c.kind(), c.input());
            byte[] bytes = OnnxExport.export(m, c.input());
            Tensor x = random(new SplittableRandom(1), 2, c.input()[0], c.input()[1], c.input()[2]);
            float[] want = forward(m, x), got = forward(OnnxImport.read(bytes), x);
            assertEquals(want.length, got.length);
            for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-4 * Math.max(1, Math.abs(want[i])), c.kind().cliName() + " logit " + i);
        }
    }

    /**
     * A decoder's layers (nearest upsampling; transposed convolutions with stride, output padding, groups, dilation;
     * leaky ReLU; group norm with and without its affine parameters) run the same from ONNX.
     */
    @Test void decoderLayersRunTheSameFromTheirOnnxGraph() throws Exception {
        Generator g = new Generator(4);
        GroupNorm affine = new GroupNorm(2, 8);
        try (GradMode off = GradMode.disabled()) {
            SplittableRandom rng = new SplittableRandom(5);
            affine.weight().copyFrom(random(rng, 8).mul(0.3).add(1));
            affine.bias().copyFrom(random(rng, 8).mul(0.3));
        }
        Sequential m = new Sequential(new Conv2d(3, 8, 3, 2, 1, g), affine, new LeakyReLU(0.2), new Upsample(2),
                new ConvTranspose2d(8, 6, 3, 2, 1, 1, 1, 2, true, g), new GroupNorm(3, 6, 1e-3, false), new LeakyReLU(),
                new ConvTranspose2d(6, 4, 4, 1, 2, 0, 2, 1, false, g), new Flatten(), new Linear(4 * 22 * 22, 5, g));
        m.eval();
        int[] input = {3, 9, 9};
        byte[] bytes = OnnxExport.export(m, input);
        assertEquals(List.of("Conv", "Reshape", "InstanceNormalization", "Reshape", "Mul", "Add", "LeakyRelu", "Resize", "ConvTranspose",
                        "Reshape", "InstanceNormalization", "Reshape", "LeakyRelu", "ConvTranspose", "Flatten", "Gemm", "Identity"),
                opTypes(DynamicMessage.parseFrom(OnnxProtos.MODEL, bytes)));
        Tensor x = random(new SplittableRandom(3), 2, 3, 9, 9);
        float[] want = forward(m, x), got = forward(OnnxImport.read(bytes), x);
        assertEquals(10, want.length);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-4 * Math.max(1, Math.abs(want[i])), "logit " + i);
    }

    @Test void theCnnIsTheExpectedGraph() throws Exception {
        Model cnn = model(ModelZoo.CNN, new int[]{1, 28, 28});
        DynamicMessage model = DynamicMessage.parseFrom(OnnxProtos.MODEL, OnnxExport.export(cnn, new int[]{1, 28, 28}));
        assertEquals(8L, model.getField(OnnxProtos.MODEL.findFieldByName("ir_version")));
        Message opset = (Message) ((List<?>) model.getField(OnnxProtos.MODEL.findFieldByName("opset_import"))).getFirst();
        assertEquals(17L, opset.getField(OnnxProtos.OPSET.findFieldByName("version")));
        assertEquals(List.of("Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Identity"), opTypes(model));
        Message graph = (Message) model.getField(OnnxProtos.MODEL.findFieldByName("graph"));
        List<?> inits = (List<?>) graph.getField(OnnxProtos.GRAPH.findFieldByName("initializer"));
        assertEquals(List.of("0.weight", "0.bias", "2.weight", "2.bias", "7.weight", "7.bias", "10.weight", "10.bias"),
                inits.stream().map(t -> (String) ((Message) t).getField(OnnxProtos.TENSOR.findFieldByName("name"))).toList());
        Message w = (Message) inits.getFirst();
        assertEquals(List.of(32L, 1L, 3L, 3L), w.getField(OnnxProtos.TENSOR.findFieldByName("dims")));
        assertEquals(4 * 32 * 9, ((com.google.protobuf.ByteString) w.getField(OnnxProtos.TENSOR.findFieldByName("raw_data"))).size());
        Message input = (Message) ((List<?>) graph.getField(OnnxProtos.GRAPH.findFieldByName("input"))).getFirst();
        assertEquals("input", input.getField(OnnxProtos.VALUE_INFO.findFieldByName("name")));
        String text = input.toString();
        assertTrue(text.contains("dim_param: \"N\"") && text.contains("dim_value: 28") && text.contains("elem_type: 1"), text);
        Message output = (Message) ((List<?>) graph.getField(OnnxProtos.GRAPH.findFieldByName("output"))).getFirst();
        assertTrue(output.toString().contains("dim_value: 10"), output.toString());
    }

    /** The field numbers, read without Kiln's descriptors: they must be onnx.proto's. */
    @Test void fieldNumbersAreOnnxProtos() throws Exception {
        byte[] bytes = OnnxExport.export(model(ModelZoo.CNN_BN, new int[]{1, 8, 8}), new int[]{1, 8, 8});
        UnknownFieldSet model = UnknownFieldSet.parseFrom(bytes);
        assertEquals(Set.of(1, 2, 3, 7, 8), model.asMap().keySet());   // ir_version, producer_name/version, graph, opset_import
        assertEquals(List.of(8L), model.getField(1).getVarintList());
        UnknownFieldSet graph = UnknownFieldSet.parseFrom(model.getField(7).getLengthDelimitedList().getFirst());
        assertEquals(Set.of(1, 2, 5, 11, 12), graph.asMap().keySet());   // node, name, initializer, input, output
        UnknownFieldSet node = UnknownFieldSet.parseFrom(graph.getField(1).getLengthDelimitedList().getFirst());
        assertEquals(new TreeSet<>(Set.of(1, 2, 3, 4, 5)), new TreeSet<>(node.asMap().keySet()));   // input, output, name, op_type, attribute
        assertEquals("Conv", node.getField(4).getLengthDelimitedList().getFirst().toStringUtf8());
        UnknownFieldSet attribute = UnknownFieldSet.parseFrom(node.getField(5).getLengthDelimitedList().getFirst());
        assertEquals("kernel_shape", attribute.getField(1).getLengthDelimitedList().getFirst().toStringUtf8());
        assertEquals(List.of(7L), attribute.getField(20).getVarintList());   // AttributeType INTS
        UnknownFieldSet tensor = UnknownFieldSet.parseFrom(graph.getField(5).getLengthDelimitedList().getFirst());
        assertEquals(Set.of(1, 2, 8, 9), tensor.asMap().keySet());   // dims, data_type, name, raw_data
        assertEquals(List.of(1L), tensor.getField(2).getVarintList());   // FLOAT
    }

    @Test void aLayerWithoutAnOnnxMappingIsRefusedByName() {
        Sequential s = new Sequential(new Linear(4, 3, new Generator(1)), new Sigmoid());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxExport.export(s, new int[]{1, 2, 2}));
        assertTrue(e.getMessage().contains("layer 1 (Sigmoid)"), e.getMessage());
    }

    @Test void importRefusesOpsOutsideItsSetAndJunk() {
        DynamicMessage node = DynamicMessage.newBuilder(OnnxProtos.NODE)
                .setField(OnnxProtos.NODE.findFieldByName("op_type"), "Softmax")
                .setField(OnnxProtos.NODE.findFieldByName("name"), "sm").build();
        DynamicMessage graph = DynamicMessage.newBuilder(OnnxProtos.GRAPH).addRepeatedField(OnnxProtos.GRAPH.findFieldByName("node"), node).build();
        byte[] bytes = DynamicMessage.newBuilder(OnnxProtos.MODEL).setField(OnnxProtos.MODEL.findFieldByName("graph"), graph).build().toByteArray();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxImport.read(bytes));
        assertTrue(e.getMessage().contains("Softmax"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> OnnxImport.read(new byte[]{(byte) 0xFF, 0x01, 0x02}));
        // a Resize Kiln would compute differently (bilinear) is refused by name
        DynamicMessage mode = DynamicMessage.newBuilder(OnnxProtos.ATTRIBUTE)
                .setField(OnnxProtos.ATTRIBUTE.findFieldByName("name"), "mode")
                .setField(OnnxProtos.ATTRIBUTE.findFieldByName("type"), OnnxProtos.ATTRIBUTE.findEnumTypeByName("AttributeType").findValueByNumber(3))
                .setField(OnnxProtos.ATTRIBUTE.findFieldByName("s"), com.google.protobuf.ByteString.copyFromUtf8("linear")).build();
        DynamicMessage resize = DynamicMessage.newBuilder(OnnxProtos.NODE)
                .setField(OnnxProtos.NODE.findFieldByName("op_type"), "Resize").setField(OnnxProtos.NODE.findFieldByName("name"), "up")
                .setField(OnnxProtos.NODE.findFieldByName("input"), List.of("x", "", "scales"))
                .setField(OnnxProtos.NODE.findFieldByName("output"), List.of("y"))
                .addRepeatedField(OnnxProtos.NODE.findFieldByName("attribute"), mode).build();
        byte[] linear = DynamicMessage.newBuilder(OnnxProtos.MODEL).setField(OnnxProtos.MODEL.findFieldByName("graph"),
                DynamicMessage.newBuilder(OnnxProtos.GRAPH).addRepeatedField(OnnxProtos.GRAPH.findFieldByName("node"), resize).build()).build().toByteArray();
        e = assertThrows(IllegalArgumentException.class, () -> OnnxImport.read(linear));
        assertTrue(e.getMessage().contains("node up (Resize): only mode nearest"), e.getMessage());
    }
}
