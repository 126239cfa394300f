package dev.kiln.quant;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Fp8E4M3;
import dev.kiln.backend.QuantFormat;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.F;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Post-training int8 and FP8 quantization: round trips, layers against their float versions, checkpoints, and accuracy. */
class QuantizationTest {
    @TempDir Path dir;

    @Test void perRowRoundTripIsWithinHalfAStepAndKeepsZeros() {
        Random r = new Random(0);
        int rows = 7, cols = 50;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = i % 5 == 0 ? 0 : (float) (r.nextGaussian() * (1 + i / cols)); // rows of growing size
        QuantizedRows q = Int8.quantizeRows(w, rows, cols);
        float[] back = q.dequantize();
        for (int row = 0; row < rows; row++) {
            float max = 0;
            for (int c = 0; c < cols; c++) max = Math.max(max, Math.abs(w[row * cols + c]));
            assertEquals(max / 127, q.scales()[row], 1e-9f, "the row's scale maps its max to 127");
            for (int c = 0; c < cols; c++) {
                int i = row * cols + c;
                assertTrue(Math.abs(q.codes()[i]) <= 127);
                assertTrue(Math.abs(w[i] - back[i]) <= q.scales()[row] / 2 * 1.0001f, "element " + i);
                if (w[i] == 0) assertEquals(0, back[i], 0f, "zero stays exact (pruned weights stay pruned)");
            }
        }
        assertEquals(1f, Int8.scaleFor(0), "an all-zero row gets scale 1 and codes 0");
        assertEquals(127, Int8.quantize(1e9f, 0.1f), "saturates");
        assertEquals(-127, Int8.quantize(-1e9f, 0.1f), "saturates at -127, not -128");
    }

    @Test void percentileCalibrationClipsAnOutlierThatMaxKeeps() {
        float[] x = new float[1000];
        for (int i = 0; i < x.length; i++) x[i] = (i % 100) / 100f;
        x[17] = 50;
        assertEquals(50, Calibration.max(1).rangeOf(x), 0);
        assertEquals(0.99, Calibration.percentile(99, 1).rangeOf(x), 1e-6);
        Calibration p = Calibration.percentile(99, 2);
        assertEquals(1.5, p.combine(p.combine(0, 1, 1), 2, 2), 1e-12, "percentiles average over batches");
    }

    private static Sequential convNet(Generator g) {
        return new Sequential(new Conv2d(1, 8, 3, 2, 1, g), new ReLU(), new Conv2d(8, 16, 3, 1, 0, g), new ReLU(), new MaxPool2d(2),
                new Flatten(), new Linear(16 * 2 * 2, 32, g), new ReLU(), new Linear(32, 10, g));
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void quantizedLayersMatchTheirFloatLayersWithinTheStatedError(QuantFormat format) {
        Generator g = new Generator(1);
        Sequential net = convNet(g).eval();
        Tensor x = Tensor.rand(g, 6, 1, 14, 14);
        List<Tensor> calib = List.of(x);
        float[] expected = Tensor.noGrad(() -> net.forward(x)).toFloatArray();
        Sequential q = QuantizedModel.quantize(format, net, calib, Calibration.max(1));   // in place
        assertInstanceOf(QuantizedConv2d.class, q.get(0));
        assertInstanceOf(QuantizedLinear.class, q.get(8));
        // each ReLU after a quantized layer is folded into it; the last Linear has none after it
        for (int i : new int[]{0, 2, 6}) {
            assertTrue(q.get(i) instanceof QuantizedConv2d c ? c.foldsReLU() : ((QuantizedLinear) q.get(i)).foldsReLU(), "layer " + i + " folds its ReLU");
            assertFalse(q.get(i + 1) instanceof ReLU, "the ReLU after layer " + i + " is gone");
        }
        assertFalse(((QuantizedLinear) q.get(8)).foldsReLU());
        float[] actual = q.forward(x).toFloatArray();
        double maxAbs = 0, maxErr = 0;
        for (int i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
            maxErr = Math.max(maxErr, Math.abs(expected[i] - actual[i]));
        }
        // four 8-bit layers in a row: stated bound 3% of the largest logit for int8 (measured about 1%), 8% for FP8
        // (3 mantissa bits: each value within 1/16 of itself, against int8's half step of the range)
        double bound = format == QuantFormat.INT8 ? 0.03 : 0.08;
        assertTrue(maxErr <= bound * maxAbs, format + ": max error " + maxErr + " of max |logit| " + maxAbs);
        assertTrue(maxErr > 0, "the quantized path really ran");
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void aQuantizedCheckpointSavesItsCodesAndLoadsToTheSameOutputs(QuantFormat format) throws Exception {
        Generator g = new Generator(2);
        Sequential net = convNet(g);
        Tensor x = Tensor.rand(g, 4, 1, 14, 14);
        Sequential q = QuantizedModel.quantize(format, net, List.of(x), Calibration.percentile(99.9, 1));
        Path file = dir.resolve("q.safetensors");
        QuantizedModel.save(file, q, Map.of("kiln.model", "test"));
        Safetensors.Contents c = Safetensors.read(file);
        assertEquals(format, QuantizedModel.formatOf(c.metadata()));
        assertEquals(format, c.codes().get("0.weight").format());
        assertArrayEquals(new int[]{8, 1, 3, 3}, c.codes().get("0.weight").shape());
        assertArrayEquals(new int[]{10, 32}, c.codes().get("8.weight").shape());
        assertFalse(c.tensors().containsKey("0.weight"), "weights are 8-bit entries, not float tensors");
        String header = new String(java.nio.file.Files.readAllBytes(file), 8, 2000, java.nio.charset.StandardCharsets.UTF_8);
        String dtype = format == QuantFormat.INT8 ? "I8" : "F8_E4M3";
        assertTrue(header.contains("\"0.weight\":{\"dtype\":\"" + dtype + "\""), header);
        Sequential loaded = QuantizedModel.load(c, convNet(new Generator(99))); // a fresh float skeleton: only its shapes matter
        assertInstanceOf(QuantizedConv2d.class, loaded.get(0));
        assertEquals(format, ((QuantizedConv2d) loaded.get(0)).format());
        assertTrue(((QuantizedConv2d) loaded.get(0)).foldsReLU(), "loading folds the ReLUs again");
        assertFalse(loaded.get(1) instanceof ReLU);
        assertArrayEquals(q.forward(x).toFloatArray(), loaded.forward(x).toFloatArray(), 0f);
    }

    /** Ten classes, each a fixed random 28x28 pattern plus noise: Fashion-MNIST's shapes, learnable in a few steps. */
    private static List<Tensor[]> syntheticBatches(long seed, int batches, int size, float[][] prototypes) {
        Random r = new Random(seed);
        List<Tensor[]> out = new ArrayList<>();
        for (int b = 0; b < batches; b++) {
            float[] x = new float[size * 784];
            long[] y = new long[size];
            for (int i = 0; i < size; i++) {
                y[i] = r.nextInt(10);
                for (int p = 0; p < 784; p++) x[i * 784 + p] = prototypes[(int) y[i]][p] + (float) r.nextGaussian() * 0.8f;
            }
            out.add(new Tensor[]{Tensor.of(x, size, 1, 28, 28), Tensor.of(y, size)});
        }
        return out;
    }

    private static double accuracy(dev.kiln.nn.Forward model, List<Tensor[]> batches) {
        long right = 0, total = 0;
        for (Tensor[] b : batches) {
            float[] logits = Tensor.noGrad(() -> model.forward(b[0])).toFloatArray();
            long[] y = b[1].toLongArray();
            for (int i = 0; i < y.length; i++) {
                int best = 0;
                for (int c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
                if (best == y[i]) right++;
            }
            total += y.length;
        }
        return (double) right / total;
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void aQuantizedFashionMnistStyleModelKeepsItsAccuracyWithinOnePoint(QuantFormat format) {
        Random r = new Random(5);
        float[][] prototypes = new float[10][784];
        for (float[] p : prototypes) for (int i = 0; i < 784; i++) p[i] = r.nextFloat() < 0.3 ? 1 : 0;
        List<Tensor[]> train = syntheticBatches(1, 30, 32, prototypes), test = syntheticBatches(2, 10, 100, prototypes);
        Generator g = new Generator(4);
        Sequential net = new Sequential(new Conv2d(1, 8, 3, 2, 1, g), new ReLU(), new Flatten(), new Linear(8 * 14 * 14, 64, g), new ReLU(),
                new Linear(64, 10, g));
        Adam opt = new Adam(net.parameters(), 1e-3);
        for (Tensor[] b : train) {
            opt.zeroGrad();
            F.crossEntropy(net.forward(b[0]), b[1]).backward();
            opt.step();
        }
        net.eval();
        double fp32 = accuracy(net, test);
        Sequential q = QuantizedModel.quantize(format, net, train.stream().map(b -> b[0]).toList(), Calibration.max(4));
        double quantized = accuracy(q, test);
        assertTrue(fp32 > 0.8, "the float model learned the task: " + fp32);
        assertEquals(fp32, quantized, 0.01, format + " accuracy within 1 point of fp32 (" + fp32 + " vs " + quantized + ")");
    }

    /**
     * The CPU's int8 convolution gives the exact integer sums (as the GPU's int32 products): inputs that are whole multiples
     * of the scale quantize to themselves, so each output is (float) of the long reference sum times the scales. Near the
     * largest codes, through the float convolution (113 channels x 3 x 3 = 1,017 codes a row) and through the 1024-deep
     * slices (128 x 3 x 3 = 1,152), with padding and stride 2.
     */
    @Test void theCpuInt8ConvolutionSumsAreExact() {
        Random r = new Random(11);
        for (int c : new int[]{113, 128}) {
            int n = 2, o = 3, h = 6, w = 5, k = 3;
            dev.kiln.backend.Conv2dParams geo = dev.kiln.backend.Conv2dParams.of(2, 1, 1, 1);
            int oh = geo.outH(h, k), ow = geo.outW(w, k);
            float[] x = new float[n * c * h * w];
            byte[] wc = new byte[o * c * k * k];
            for (int i = 0; i < x.length; i++) x[i] = 120 + r.nextInt(8) - (r.nextInt(10) == 0 ? 240 : 0);   // mostly near +127
            for (int i = 0; i < wc.length; i++) wc[i] = (byte) (r.nextInt(10) == 0 ? -127 : 127);
            float[] ws = {1f, 0.5f, 2f};
            Tensor y = dev.kiln.ops.Quantized.conv2d(QuantFormat.INT8, Tensor.of(x, n, c, h, w),
                    Tensor.fromHost(wc, dev.kiln.DType.UINT8, new int[]{o, c, k, k}, dev.kiln.Device.CPU), geo, Tensor.of(ws, o), null, 1.0, false);
            float[] got = y.toFloatArray();
            for (int img = 0; img < n; img++) for (int j = 0; j < o; j++) for (int yy = 0; yy < oh; yy++) for (int xx = 0; xx < ow; xx++) {
                long sum = 0;
                for (int ci = 0; ci < c; ci++) for (int i = 0; i < k; i++) for (int jj = 0; jj < k; jj++) {
                    int iy = yy * 2 - 1 + i, ix = xx * 2 - 1 + jj;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w) sum += (long) x[((img * c + ci) * h + iy) * w + ix] * wc[((j * c + ci) * k + i) * k + jj];
                }
                float expected = (int) sum * 1f * ws[j] + 0;
                assertEquals(expected, got[((img * o + j) * oh + yy) * ow + xx], 0f, c + " channels, output " + img + "," + j + "," + yy + "," + xx);
            }
        }
    }

    /** A folded ReLU is max(y, 0) of the unfolded product, exactly, for both products and both formats. */
    @ParameterizedTest @EnumSource(QuantFormat.class)
    void aFoldedReluIsTheReluOfTheProduct(QuantFormat format) {
        Generator g = new Generator(5);
        Tensor x = Tensor.randn(g, 7, 40), w = Tensor.randn(g, 9, 40).mul(0.2), b = Tensor.randn(g, 9);
        QuantizedRows q = QuantizedRows.of(format, w.toFloatArray(), 9, 40);
        Tensor codes = Tensor.fromHost(q.codes(), dev.kiln.DType.UINT8, new int[]{9, 40}, dev.kiln.Device.CPU), scales = Tensor.of(q.scales(), 9);
        Tensor plain = dev.kiln.ops.Quantized.linear(format, x, codes, scales, b, 0.03, false);
        Tensor folded = dev.kiln.ops.Quantized.linear(format, x, codes, scales, b, 0.03, true);
        assertArrayEquals(plain.relu().toFloatArray(), folded.toFloatArray(), 0f);
        assertTrue(plain.min().item() < 0 && folded.min().item() == 0, "some outputs were negative and were clamped");
        Tensor img = Tensor.randn(g, 2, 4, 6, 6);
        Tensor ccodes = Tensor.fromHost(QuantizedRows.of(format, Tensor.randn(g, 5, 36).toFloatArray(), 5, 36).codes(), dev.kiln.DType.UINT8,
                new int[]{5, 4, 3, 3}, dev.kiln.Device.CPU);
        Tensor cs = Tensor.of(new float[]{0.01f, 0.02f, 0.01f, 0.03f, 0.02f}, 5);
        dev.kiln.backend.Conv2dParams geo = dev.kiln.backend.Conv2dParams.of(1, 1, 1, 1);
        assertArrayEquals(dev.kiln.ops.Quantized.conv2d(format, img, ccodes, geo, cs, null, 0.05, false).relu().toFloatArray(),
                dev.kiln.ops.Quantized.conv2d(format, img, ccodes, geo, cs, null, 0.05, true).toFloatArray(), 0f);
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void theBackendsQuantizedLinearIsTheLayersProduct(QuantFormat format) {
        Linear lin = new Linear(70, 9, new Generator(6));
        QuantizedLinear q = QuantizedLinear.of(format, lin, 2.5);
        Tensor x = Tensor.randn(new Generator(7), 5, 70);
        Tensor codes = Tensor.fromHost(q.codes().clone(), dev.kiln.DType.UINT8, q.weightShape(), dev.kiln.Device.CPU);
        Tensor viaBackend = dev.kiln.ops.Quantized.linear(format, x, codes, q.buffer("weight_scale"), q.buffer("bias"), q.buffer("input_scale").item(), false);
        assertArrayEquals(q.forward(x).toFloatArray(), viaBackend.toFloatArray(), 0f);
        assertThrows(IllegalArgumentException.class, () -> dev.kiln.ops.Quantized.linear(format, x, codes.narrow(1, 0, 60), q.buffer("weight_scale"), null, 1, false));
    }

    /** The CPU's FP8 product against a double-precision sum of the decoded codes: only float32 summation differs. */
    @Test void theCpuFp8LinearIsTheProductOfTheDecodedCodes() {
        Random r = new Random(8);
        int m = 3, n = 5, k = 37;
        float[] x = new float[m * k], w = new float[n * k];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.1f;
        QuantizedRows q = QuantizedRows.of(QuantFormat.FP8_E4M3, w, n, k);
        float xs = Fp8E4M3.scaleFor(3.0);
        Tensor y = dev.kiln.ops.Quantized.linear(QuantFormat.FP8_E4M3, Tensor.of(x, m, k),
                Tensor.fromHost(q.codes(), dev.kiln.DType.UINT8, new int[]{n, k}, dev.kiln.Device.CPU), Tensor.of(q.scales(), n), null, xs, false);
        float[] got = y.toFloatArray();
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
            double sum = 0, size = 0;
            for (int t = 0; t < k; t++) {
                double p = (double) Fp8E4M3.decode(Fp8E4M3.encode(x[i * k + t] / xs)) * Fp8E4M3.decode(q.codes()[j * k + t]);
                sum += p;
                size += Math.abs(p);
            }
            assertEquals(sum * xs * q.scales()[j], got[i * n + j], 1e-5 * size * xs * q.scales()[j] + 1e-7, "(" + i + ", " + j + ")");
        }
    }

    /** A layer that calls its Linear through a final field: it cannot take a replacement. */
    private static final class FieldNet extends dev.kiln.nn.Model {
        private final Linear first, second;

        FieldNet(Generator g) {
            first = registerLayer("first", new Linear(4, 4, g));
            second = registerLayer("second", new Linear(4, 2, g));
        }

        @Override public Tensor forward(Tensor x) { return second.forward(first.forward(x).relu()); }
    }

    @Test void aModelThatCallsItsLayersThroughFinalFieldsIsRefusedUnchanged() {
        FieldNet net = new FieldNet(new Generator(0));
        var before = net.namedLayers();
        var e = assertThrows(IllegalArgumentException.class,
                () -> QuantizedModel.quantize(QuantFormat.INT8, net, List.of(Tensor.rand(new Generator(1), 2, 4)), Calibration.max(1)));
        assertTrue(e.getMessage().contains("field first"), e.getMessage());
        assertEquals(before, net.namedLayers(), "nothing replaced");
        assertTrue(net.isTraining(), "its mode is left as it was");
    }
}
