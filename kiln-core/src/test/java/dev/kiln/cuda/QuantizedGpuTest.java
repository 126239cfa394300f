package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.Linear;
import dev.kiln.quant.QuantizedLinear;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The int8 linear product on cuda:0 (quantized.cu, dp4a) against the CPU's. Skips without a GPU. */
class QuantizedGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(QuantizedGpuTest.class); }

    private static Tensor codes(Random r, int n, int k) {
        byte[] c = new byte[n * k];
        for (int i = 0; i < c.length; i++) c[i] = (byte) (r.nextInt(255) - 127);
        return Tensor.fromHost(c, DType.UINT8, new int[]{n, k}, Device.CPU);
    }

    @Test void int8LinearMatchesTheCpuAtEveryTileEdge() {
        Random r = new Random(1);
        // rows and columns off the 16 x 16 tile, k off the 64-byte chunk and the 4-byte word, and one large case
        for (int[] s : new int[][]{{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {16, 16, 64}, {64, 10, 784}, {256, 512, 784}}) {
            int m = s[0], n = s[1], k = s[2];
            Tensor x = Tensor.randn(new Generator(m + n + k), m, k), w = codes(r, n, k);
            Tensor scales = Tensor.rand(new Generator(2), n).add(0.01), bias = Tensor.randn(new Generator(3), n);
            double inputScale = 4.0 / 127;
            for (Tensor b : new Tensor[]{bias, null}) {
                Tensor expected = CPU_BE.int8Linear(x, w, scales, b, inputScale);
                Tensor actual = gpuBe.int8Linear(gpu(x), gpu(w), gpu(scales), b == null ? null : gpu(b), inputScale);
                // the int32 sums are exact on both; only the float epilogue may round differently (an FMA)
                close(expected, actual, 1e-5, "int8_linear " + m + "x" + n + "x" + k + (b == null ? " no bias" : ""));
            }
        }
    }

    @Test void theQuantizedLayerRunsOnTheGpuAsOnTheCpu() {
        Linear lin = new Linear(100, 30, new Generator(4));
        Tensor x = Tensor.randn(new Generator(5), 2, 7, 100);
        QuantizedLinear q = QuantizedLinear.of(lin, 3.0);
        float[] cpu = q.forward(x).toFloatArray();
        q.to(GPU);
        Tensor y = q.forward(gpu(x));
        assertArrayEquals(new int[]{2, 7, 30}, y.shape());
        assertArrayEquals(cpu, y.toFloatArray(), 1e-4f);
    }
}
