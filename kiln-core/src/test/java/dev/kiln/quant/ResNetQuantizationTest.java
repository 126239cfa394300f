package dev.kiln.quant;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;
import dev.kiln.io.Safetensors;
import dev.kiln.models.ResNet;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Post-training quantization of the zoo's ResNets: every convolution and fc replaced in its block, logits, checkpoints. */
class ResNetQuantizationTest {
    @TempDir Path dir;

    /** resnet-small with running statistics from a few training-mode passes (fresh ones are 0 and 1: batch norm would be the identity). */
    private static ResNet resnetSmall(long seed) {
        ResNet m = ResNet.small(1, 10, new Generator(seed));
        for (Tensor x : batches(seed + 100, 3, 16, 28)) Tensor.noGrad(() -> m.forward(x));
        return m.eval();
    }

    private static List<Tensor> batches(long seed, int n, int size, int side) {
        Generator g = new Generator(seed);
        List<Tensor> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(Tensor.rand(g, size, 1, side, side));
        return out;
    }

    private static long count(Layer model, Class<?> type) {
        return model.namedLayers().values().stream().filter(type::isInstance).count();
    }

    private static double maxError(float[] expected, float[] actual) {
        double maxAbs = 0, maxErr = 0;
        for (int i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
            maxErr = Math.max(maxErr, Math.abs(expected[i] - actual[i]));
        }
        return maxErr / maxAbs;
    }

    private static int argmax(float[] logits, int row) {
        int best = 0;
        for (int c = 1; c < 10; c++) if (logits[row * 10 + c] > logits[row * 10 + best]) best = c;
        return best;
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void resnetSmallsLogitsStayCloseToTheFloatModels(QuantFormat format) {
        ResNet net = resnetSmall(1);
        Tensor x = batches(7, 1, 32, 28).getFirst();   // not among the calibration batches
        float[] expected = Tensor.noGrad(() -> net.forward(x)).toFloatArray();
        long convs = count(net, Conv2d.class);
        assertSame(net, QuantizedModel.quantize(format, net, batches(2, 4, 16, 28), Calibration.max(4)), "in place");
        assertEquals(convs, count(net, QuantizedConv2d.class), "every convolution, the shortcuts' too");
        assertEquals(1, count(net, QuantizedLinear.class));
        assertEquals(0, count(net, Conv2d.class) + count(net, Linear.class), "no float Conv2d or Linear left");
        float[] actual = net.forward(x).toFloatArray();
        // 17 8-bit layers in a row (the 4-layer net of QuantizationTest: int8 3%, FP8 8%); independent rounding errors grow
        // about as the square root of the depth. Stated: int8 4% of the largest |logit| (measured 1.4%), FP8 12% (5.7%:
        // 3 mantissa bits, each value within 1/16 of itself)
        double bound = format == QuantFormat.INT8 ? 0.04 : 0.12;
        double err = maxError(expected, actual);
        assertTrue(err <= bound && err > 0, format + ": max error " + err + " of the largest |logit|");
        int agree = 0;
        for (int r = 0; r < 32; r++) if (argmax(expected, r) == argmax(actual, r)) agree++;
        assertTrue(agree >= 30, format + ": " + agree + " of 32 predictions agree");
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void aQuantizedResNetSavesAndLoadsToTheSameOutputs(QuantFormat format) throws Exception {
        ResNet net = QuantizedModel.quantize(format, resnetSmall(2), batches(3, 2, 8, 28), Calibration.percentile(99.9, 2));
        Path file = dir.resolve("q.safetensors");
        QuantizedModel.save(file, net, Map.of("kiln.model", "resnet-small"));
        Safetensors.Contents c = Safetensors.read(file);
        for (String name : List.of("conv1.weight", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight", "fc.weight")) {
            assertEquals(format, c.codes().get(name).format(), name);
            assertFalse(c.tensors().containsKey(name), name + " is an 8-bit entry, not a float tensor");
        }
        assertArrayEquals(new int[]{64, 32, 1, 1}, c.codes().get("layer2.0.downsample.0.weight").shape());
        assertTrue(c.tensors().containsKey("layer3.1.bn2.running_var"), "batch norms stay float");
        ResNet loaded = QuantizedModel.load(c, ResNet.small(1, 10, new Generator(99)));   // a fresh skeleton: only its shapes matter
        loaded.eval();
        Tensor x = batches(8, 1, 4, 28).getFirst();
        assertArrayEquals(net.forward(x).toFloatArray(), loaded.forward(x).toFloatArray(), 0f);
    }

    /** torchvision's ResNet-18 (basic blocks) and -50 (bottlenecks, a shortcut convolution in every stage) by the same replacement. */
    @Test void theZoosResNetsQuantizeEveryConvolution() {
        for (ResNet net : List.of(ResNet.resnet18(10, new Generator(3)), ResNet.resnet50(10, new Generator(3)))) {
            net.eval();
            Tensor x = Tensor.rand(new Generator(4), 2, 3, 32, 32);
            float[] expected = Tensor.noGrad(() -> net.forward(x)).toFloatArray();
            long convs = count(net, Conv2d.class);
            QuantizedModel.quantize(QuantFormat.INT8, net, List.of(x), Calibration.max(1));
            assertEquals(convs, count(net, QuantizedConv2d.class));
            assertEquals(0, count(net, Conv2d.class) + count(net, Linear.class));
            // fresh weights and batch norms, 21 or 54 8-bit layers: measured 3.9% and 2.8%
            double err = maxError(expected, net.forward(x).toFloatArray());
            assertTrue(err <= 0.1, convs + " convolutions: max error " + err);
        }
    }
}
