package dev.kiln.cpu;

import dev.kiln.quant.Int8;
import dev.kiln.quant.QuantizedRows;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The int8 GEMM against plain references: exact against integer dot products, and within the quantization bound of float. */
class Int8GemmTest {
    /** The plain reference: long dot products, scaled. */
    private static float[] reference(byte[] a, int m, int k, byte[] b, int n, float sa, float[] sb, float[] bias) {
        float[] c = new float[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
            long s = 0;
            for (int t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
            c[i * n + j] = s * sa * sb[j] + (bias == null ? 0 : bias[j]);
        }
        return c;
    }

    private static byte[] codes(Random r, int n) {
        byte[] x = new byte[n];
        for (int i = 0; i < n; i++) x[i] = (byte) (r.nextInt(255) - 127);
        return x;
    }

    @Test void integerProductsAreExactAtEveryShapeEdge() {
        Random r = new Random(1);
        // odd m and n (the 2x2 kernel's edges), k below, at and off a vector step, and large enough to use threads; from
        // 16 rows the exact float slices, k over one, two and three slices (1024, 1025, 2049)
        int[][] shapes = {{1, 1, 1}, {1, 7, 5}, {3, 5, 33}, {2, 2, 64}, {5, 9, 100}, {15, 40, 3000}, {16, 3, 1025}, {17, 5, 2049},
                {40, 64, 288}, {64, 33, 784}, {256, 130, 1200}, {33, 7, 1024}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            byte[] a = codes(r, m * k), b = codes(r, n * k);
            float[] ones = new float[n];
            java.util.Arrays.fill(ones, 1f);
            float[] c = new float[m * n];
            Int8Gemm.gemm(a, m, k, b, n, 1f, ones, null, false, c);
            assertArrayEquals(reference(a, m, k, b, n, 1f, ones, null), c, 0f, m + "x" + n + "x" + k);
        }
    }

    @Test void theLargestCodesDoNotOverflow() {
        int k = 4099; // 127 * 127 * 4099 = 66.1M: beyond a short and a float's exact integers, well within an int
        for (int m : new int[]{2, Int8Gemm.FLOAT_ROWS}) {   // the byte kernel, and the float slices (each 1024 · 127² < 2^24)
            byte[] a = new byte[m * k], b = new byte[2 * k];
            java.util.Arrays.fill(a, (byte) 127);
            java.util.Arrays.fill(b, (byte) -127);
            b[5] = 127;   // one product of the other sign, so a rounding of the sum would show
            float[] c = new float[m * 2];
            Int8Gemm.gemm(a, m, k, b, 2, 1f, new float[]{1, 1}, null, false, c);
            int exact = -127 * 127 * k + 2 * 127 * 127;   // exact in int; as a float it rounds to a multiple of 8
            for (int i = 0; i < m; i++) {
                assertEquals((float) exact, c[2 * i], 0f, m + " rows: row " + i);
                assertEquals(-127f * 127 * k, c[2 * i + 1], 0f, m + " rows: row " + i);
            }
        }
    }

    @Test void scalesBiasAndReluAreTheEpilogue() {
        Random r = new Random(2);
        for (int m : new int[]{3, 20}) {   // the byte kernel and the float slices
            int n = 4, k = 19;
            byte[] a = codes(r, m * k), b = codes(r, n * k);
            float[] sb = {0.5f, 0.25f, 2f, 1f}, bias = {1, -2, 3, -4};
            float[] c = new float[m * n], relu = new float[m * n];
            Int8Gemm.gemm(a, m, k, b, n, 0.1f, sb, bias, false, c);
            Int8Gemm.gemm(a, m, k, b, n, 0.1f, sb, bias, true, relu);
            float[] ref = reference(a, m, k, b, n, 0.1f, sb, bias);
            for (int i = 0; i < c.length; i++) {
                assertEquals(ref[i], c[i], 1e-4f * Math.max(1, Math.abs(ref[i])));
                assertEquals(Math.max(0, c[i]), relu[i]);
            }
        }
    }

    /** Both kernels give the same outputs to the bit (the float slices from 16 rows, the byte kernel at any m). */
    @Test void bothKernelsGiveTheSameOutputs() {
        Random r = new Random(4);
        int m = 24, n = 6, k = 50;
        byte[] a = codes(r, m * k), b = codes(r, n * k);
        float[] sb = {1, 2, 3, 4, 5, 6};
        float[] viaFloats = new float[m * n], viaBytes = new float[m * n];
        Int8Gemm.gemm(a, m, k, b, n, 0.5f, sb, null, false, viaFloats);
        Int8Gemm.bytes(a, m, k, b, n, 0.5f, sb, null, false, viaBytes);
        assertArrayEquals(viaBytes, viaFloats, 0f);
        float[] ref = reference(a, m, k, b, n, 0.5f, sb, null);
        for (int i = 0; i < m * n; i++) assertEquals(ref[i], viaFloats[i], 1e-4f * Math.max(1, Math.abs(ref[i])));
    }

    /**
     * Quantized against the float product: with |δa| <= sa/2 and |δb_j| <= sb_j/2 per element, each output is off by at most
     * sum_t (|a_t| sb_j/2 + |b_t| sa/2 + sa sb_j/4); the test asserts that bound (plus float rounding) for every output.
     */
    @Test void quantizedProductStaysWithinTheRoundingBoundOfTheFloatProduct() {
        Random r = new Random(3);
        int m = 16, n = 24, k = 300;
        float[] a = new float[m * k], w = new float[n * k];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextGaussian() * 0.05);
        float amax = 0;
        for (float v : a) amax = Math.max(amax, Math.abs(v));
        float sa = Int8.scaleFor(amax);
        QuantizedRows q = Int8.quantizeRows(w, n, k);
        float[] c = new float[m * n];
        Int8Gemm.gemm(Int8.quantize(a, sa), m, k, q.codes(), n, sa, q.scales(), null, false, c);
        double worstRelative = 0;
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
            double exact = 0, bound = 0, size = 0;
            for (int t = 0; t < k; t++) {
                exact += (double) a[i * k + t] * w[j * k + t];
                bound += Math.abs(a[i * k + t]) * q.scales()[j] / 2 + Math.abs(w[j * k + t]) * sa / 2 + sa * q.scales()[j] / 4;
                size += Math.abs((double) a[i * k + t] * w[j * k + t]);
            }
            double err = Math.abs(c[i * n + j] - exact);
            assertTrue(err <= bound * 1.0001 + 1e-5, "output " + i + "," + j + ": error " + err + " > bound " + bound);
            worstRelative = Math.max(worstRelative, err / size);
        }
        assertTrue(worstRelative < 0.02, "error relative to sum |a w|: " + worstRelative);
    }
}
