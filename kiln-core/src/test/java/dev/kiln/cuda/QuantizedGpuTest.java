package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.QuantFormat;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Linear;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Matmul;
import dev.kiln.quant.QuantizedConv2d;
import dev.kiln.quant.QuantizedLinear;
import dev.kiln.quant.QuantizedRows;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The quantized products on cuda:0 (quantize and im2col kernels, cuBLASLt's int8 and FP8 tensor-core GEMMs, the
 * dequantizing pass) against the CPU's, on fresh random inputs (the comparison base's nanoTime generator). Odd shapes
 * take the padding paths (m, n, k off multiples of 16). Skips without a GPU.
 */
class QuantizedGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(QuantizedGpuTest.class); }

    /**
     * Same codes on both devices: int8 sums are exact (only the float epilogue rounds). FP8: the CPU sums the decoded
     * products in float32, Hopper's FP8 tensor cores with a narrower accumulator between promotions (1.5e-3 seen at
     * k = 784 on the H200), so 5e-3.
     */
    private static double sameCodesTol(QuantFormat f) { return f == QuantFormat.INT8 ? 1e-5 : 5e-3; }

    /**
     * Against the unquantized float product: the quantization error itself, as ||y8 - y|| / ||y|| over the output (a
     * single element's error is a tail event on fresh random inputs: 5.1-8.2% seen for int8). int8: the input's step
     * max|x| / 127 (max ~4.9 sigma at 200k normal values) and the weights' per-row step give about 1.3%; FP8 E4M3's 3
     * mantissa bits about 5%. Bounds at twice that, over outputs of at least 400 elements (fewer: the same-codes check
     * alone, a handful of sums being too few for an RMS).
     */
    private static void quantizationError(Tensor floatRef, Tensor actual, QuantFormat f, String what) {
        if (floatRef.numel() < 400) return;
        double bound = f == QuantFormat.INT8 ? 0.03 : 0.10;
        double[] e = floatRef.toDoubleArray(), a = actual.toDoubleArray();
        double diff = 0, norm = 0;
        for (int i = 0; i < e.length; i++) {
            diff += (a[i] - e[i]) * (a[i] - e[i]);
            norm += e[i] * e[i];
        }
        double rel = Math.sqrt(diff / Math.max(norm, 1e-300));
        assertTrue(rel <= bound, what + ": relative RMS error " + rel + " above " + bound);
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void linearMatchesTheCpuOnPaddedAndAlignedShapes(QuantFormat format) {
        for (int[] s : new int[][]{{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {16, 16, 64}, {64, 10, 784}, {256, 512, 784}, {255, 127, 300}}) {
            int m = s[0], n = s[1], k = s[2];
            Tensor x = randn(DType.FLOAT32, m, k), w = randn(DType.FLOAT32, n, k).mul(0.1);
            QuantizedRows q = QuantizedRows.of(format, w.toFloatArray(), n, k);
            Tensor codes = Tensor.fromHost(q.codes(), DType.UINT8, new int[]{n, k}, Device.CPU), scales = Tensor.of(q.scales(), n);
            Tensor bias = randn(DType.FLOAT32, n);
            double inputScale = QuantizedRows.scaleFor(format, x.abs().max().item());
            for (Tensor b : new Tensor[]{bias, null}) {
                String what = format + " linear " + m + "x" + n + "x" + k + (b == null ? " no bias" : "");
                Tensor expected = CPU_BE.quantizedLinear(format, x, codes, scales, b, inputScale, false);
                Tensor actual = gpuBe.quantizedLinear(format, gpu(x), gpu(codes), gpu(scales), b == null ? null : gpu(b), inputScale, false);
                close(expected, actual, sameCodesTol(format), what);
                quantizationError(Matmul.linear(x, w, b), actual, format, what + " against float32");
                Tensor reluCpu = CPU_BE.quantizedLinear(format, x, codes, scales, b, inputScale, true);
                close(reluCpu, gpuBe.quantizedLinear(format, gpu(x), gpu(codes), gpu(scales), b == null ? null : gpu(b), inputScale, true),
                        sameCodesTol(format), what + " relu folded");
                assertArrayEquals(expected.relu().toFloatArray(), reluCpu.toFloatArray(), what + ": the folded ReLU is max(y, 0)");
            }
        }
        CudaDevice dev = ((CudaBackend) gpuBe).cudaDevice();
        assertTrue(Blas.ltTookQuantized(dev, format, 512, 256, 784), format + ": cuBLASLt's tensor cores took the 256x512x784 product ("
                + Blas.lt(dev).lastRefusal + ")");
        assertTrue(Blas.ltTookQuantized(dev, format, 128, 256, 304), format + ": and the padded 255x127x300 one");
    }

    /** NaN and infinite inputs get the CPU's codes (int8: NaN 0, infinities ±127; FP8: its NaN and saturation). */
    @ParameterizedTest @EnumSource(QuantFormat.class)
    void nonFiniteInputsQuantizeAsOnTheCpu(QuantFormat format) {
        float[] a = randn(DType.FLOAT32, 4, 32).toFloatArray();
        a[3] = Float.NaN;
        a[40] = Float.POSITIVE_INFINITY;
        a[77] = Float.NEGATIVE_INFINITY;
        Tensor x = Tensor.of(a, 4, 32);
        QuantizedRows q = QuantizedRows.of(format, randn(DType.FLOAT32, 16, 32).toFloatArray(), 16, 32);
        Tensor codes = Tensor.fromHost(q.codes(), DType.UINT8, new int[]{16, 32}, Device.CPU), scales = Tensor.of(q.scales(), 16);
        close(CPU_BE.quantizedLinear(format, x, codes, scales, null, 0.05, false), gpuBe.quantizedLinear(format, gpu(x), gpu(codes), gpu(scales), null, 0.05, false),
                sameCodesTol(format), format + " linear of NaN and infinities");
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void conv2dMatchesTheCpuWithStridePaddingAndDilation(QuantFormat format) {
        // {batch, in, out, size, kernel, stride, pad, dilation}
        for (int[] s : new int[][]{{2, 1, 8, 28, 3, 1, 1, 1}, {3, 5, 7, 11, 3, 2, 1, 1}, {1, 4, 6, 9, 3, 1, 2, 2}, {4, 16, 32, 14, 1, 2, 0, 1},
                {2, 32, 16, 9, 3, 1, 1, 1}, {1, 20, 24, 7, 3, 1, 0, 1}, {2, 3, 5, 10, 3, 1, 1, 1}}) {
            int batch = s[0], in = s[1], out = s[2], size = s[3], kk = s[4];
            Conv2dParams g = Conv2dParams.of(s[5], s[6], s[7], 1);
            Tensor x = randn(DType.FLOAT32, batch, in, size, size), w = randn(DType.FLOAT32, out, in, kk, kk).mul(0.2);
            QuantizedRows q = QuantizedRows.of(format, w.toFloatArray(), out, in * kk * kk);
            Tensor codes = Tensor.fromHost(q.codes(), DType.UINT8, new int[]{out, in, kk, kk}, Device.CPU), scales = Tensor.of(q.scales(), out);
            Tensor bias = randn(DType.FLOAT32, out);
            double inputScale = QuantizedRows.scaleFor(format, x.abs().max().item());
            String what = format + " conv " + java.util.Arrays.toString(s);
            Tensor expected = CPU_BE.quantizedConv2d(format, x, codes, g, scales, bias, inputScale, false);
            Tensor expectedRelu = CPU_BE.quantizedConv2d(format, x, codes, g, scales, bias, inputScale, true);
            assertArrayEquals(expected.relu().toFloatArray(), expectedRelu.toFloatArray(), what + ": the folded ReLU is max(y, 0)");
            for (boolean direct : new boolean[]{true, false}) {   // int8's small convolutions through the direct kernel and through the product
                QuantizedCuda.useDirect = direct;
                try {
                    for (Tensor xg : new Tensor[]{gpu(x), gpu(x).toChannelsLast()}) {   // the input read through its strides
                        String how = what + (xg.prefersChannelsLast() ? " channels-last input" : "") + (direct ? "" : " no direct kernel");
                        Tensor actual = gpuBe.quantizedConv2d(format, xg, gpu(codes), g, gpu(scales), gpu(bias), inputScale, false);
                        close(expectedRelu, gpuBe.quantizedConv2d(format, xg, gpu(codes), g, gpu(scales), gpu(bias), inputScale, true),
                                sameCodesTol(format), how + " relu folded");
                        assertTrue(actual.isChannelsLast(), how + ": the output is channels-last");
                        close(expected, actual, sameCodesTol(format), how);
                        quantizationError(Convolution.conv2d(x, w, bias, g, false), actual, format, how + " against float32");
                    }
                } finally {
                    QuantizedCuda.useDirect = true;
                }
            }
        }
    }

    /** The dp4a kernel, int8's path where cuBLASLt takes no problem, gives the same int32 sums (convolutions in both layouts). */
    @org.junit.jupiter.api.Test void theDp4aFallbackMatchesTheCpu() {
        QuantizedCuda.useLt = false;
        QuantizedCuda.useDirect = false;
        try {
            for (int[] s : new int[][]{{3, 5, 7}, {255, 127, 300}}) {
                Tensor x = randn(DType.FLOAT32, s[0], s[2]);
                QuantizedRows q = QuantizedRows.of(QuantFormat.INT8, randn(DType.FLOAT32, s[1], s[2]).toFloatArray(), s[1], s[2]);
                Tensor codes = Tensor.fromHost(q.codes(), DType.UINT8, new int[]{s[1], s[2]}, Device.CPU), scales = Tensor.of(q.scales(), s[1]);
                close(CPU_BE.quantizedLinear(QuantFormat.INT8, x, codes, scales, null, 0.03, false),
                        gpuBe.quantizedLinear(QuantFormat.INT8, gpu(x), gpu(codes), gpu(scales), null, 0.03, false), 1e-5, "dp4a linear " + java.util.Arrays.toString(s));
            }
            Tensor img = randn(DType.FLOAT32, 2, 3, 9, 9);
            QuantizedRows q = QuantizedRows.of(QuantFormat.INT8, randn(DType.FLOAT32, 5, 27).toFloatArray(), 5, 27);
            Tensor codes = Tensor.fromHost(q.codes(), DType.UINT8, new int[]{5, 3, 3, 3}, Device.CPU), scales = Tensor.of(q.scales(), 5);
            Conv2dParams g = Conv2dParams.of(2, 1, 1, 1);
            for (Tensor xg : new Tensor[]{gpu(img), gpu(img).toChannelsLast()}) {
                close(CPU_BE.quantizedConv2d(QuantFormat.INT8, img, codes, g, scales, null, 0.03, true),
                        gpuBe.quantizedConv2d(QuantFormat.INT8, xg, gpu(codes), g, gpu(scales), null, 0.03, true), 1e-5, "dp4a conv");
            }
        } finally {
            QuantizedCuda.useLt = true;
            QuantizedCuda.useDirect = true;
        }
    }

    @ParameterizedTest @EnumSource(QuantFormat.class)
    void theQuantizedLayersRunOnTheGpuAsOnTheCpu(QuantFormat format) {
        QuantizedLinear lin = QuantizedLinear.of(format, new Linear(100, 30, new Generator(4)), 3.0);
        Tensor x = Tensor.randn(new Generator(5), 2, 7, 100);
        float[] cpu = lin.forward(x).toFloatArray();
        lin.to(GPU);
        Tensor y = lin.forward(gpu(x));
        assertArrayEquals(new int[]{2, 7, 30}, y.shape());
        assertArrayEquals(cpu, y.toFloatArray(), format == QuantFormat.INT8 ? 1e-4f : 1e-2f);

        QuantizedConv2d conv = QuantizedConv2d.of(format, new Conv2d(3, 8, 3, 1, 1, new Generator(6)), 2.0);
        Tensor img = Tensor.randn(new Generator(7), 2, 3, 10, 10);
        float[] cpuConv = conv.forward(img).toFloatArray();
        conv.to(GPU);
        Tensor yc = conv.forward(gpu(img));
        assertArrayEquals(new int[]{2, 8, 10, 10}, yc.shape());
        assertArrayEquals(cpuConv, yc.toFloatArray(), format == QuantFormat.INT8 ? 1e-4f : 1e-2f);
    }
}
