package dev.kiln.cpu;

import dev.kiln.quant.Int8;
import dev.kiln.quant.QuantizedRows;
import org.junit.jupiter.api.Assumptions;
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

    /**
     * The vectorised quantizer against the scalar rule (x / scale in double, half away from zero, clamped to ±127; NaN
     * 0) on random values and the edges: exact halves of both signs, just either side of them, ±0, NaN, ±infinity,
     * beyond ±127.5, and a length off the vector step (the scalar tail).
     */
    @Test void vectorCodesFollowTheScalarRule() {
        Random r = new Random(8);
        float scale = 0.05f;
        double inv = 1.0 / scale;
        float[] x = new float[1003];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 3);
        float[] edges = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 6.375f, -6.375f, 1e9f, -1e9f,
                (float) (0.5 / inv), (float) (-0.5 / inv), (float) (2.5 / inv), (float) (-2.5 / inv), (float) (127.5 / inv), (float) (-127.5 / inv)};
        for (int i = 0; i < edges.length; i++) {
            x[3 * i] = edges[i];
            x[3 * i + 1] = Math.nextUp(edges[i]);
            x[3 * i + 2] = Math.nextDown(edges[i]);
        }
        int[] got = new int[x.length];
        boolean negative = Int8Gemm.codes(x, 0, x.length, inv, got);
        boolean anyBelow = false;
        for (int i = 0; i < x.length; i++) {
            assertEquals(Int8Gemm.code(x[i], inv), got[i], "x = " + x[i]);
            anyBelow |= got[i] < 0;
        }
        assertEquals(anyBelow, negative);
        byte[] q = Int8Gemm.quantize(x, scale);
        for (int i = 0; i < x.length; i++) assertEquals((byte) Int8Gemm.code(x[i], inv), q[i], "quantize, x = " + x[i]);
        int[] none = new int[5];
        assertFalse(Int8Gemm.codes(new float[]{0, 1, 2, Float.NaN, 0.01f}, 0, 5, inv, none), "no code below 0");
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

    /**
     * Every kernel gives the same outputs to the bit: the byte kernel (any m), the float slices and the machine code (from
     * 16 rows), with codes of both signs (the machine code splits them) and with none below zero (it does not).
     */
    @Test void everyKernelGivesTheSameOutputs() {
        Random r = new Random(4);
        int m = 24, n = 21, k = 50;
        for (boolean signed : new boolean[]{true, false}) {
            byte[] a = codes(r, m * k), b = codes(r, n * k);
            if (!signed) for (int i = 0; i < a.length; i++) a[i] = (byte) Math.abs(a[i]);
            float[] sb = new float[n], bias = new float[n];
            for (int j = 0; j < n; j++) {
                sb[j] = 0.5f + j;
                bias[j] = j - 10;
            }
            for (boolean relu : new boolean[]{false, true}) {
                float[] viaFloats = new float[m * n], viaBytes = new float[m * n];
                Int8Gemm.viaFloats(a, m, k, b, n, 0.5f, sb, bias, relu, viaFloats);
                Int8Gemm.bytes(a, m, k, b, n, 0.5f, sb, bias, relu, viaBytes);
                assertArrayEquals(viaBytes, viaFloats, 0f);
                if (Int8GemmAvx2.available()) {
                    float[] viaKernel = new float[m * n];
                    Int8Gemm.viaKernel(a, m, k, b, n, 0.5f, sb, bias, relu, viaKernel);
                    assertArrayEquals(viaBytes, viaKernel, 0f, "machine code, signed " + signed + ", relu " + relu);
                }
                float[] ref = reference(a, m, k, b, n, 0.5f, sb, bias);
                for (int i = 0; i < m * n; i++) {
                    float want = relu ? Math.max(0, ref[i]) : ref[i];
                    assertEquals(want, viaFloats[i], 1e-4f * Math.max(1, Math.abs(want)));
                }
            }
        }
    }

    /** The quantized linear layer from float inputs: the same outputs on the machine code as quantize, then the byte kernel. */
    @Test void linearFromFloatsEqualsQuantizeThenProduct() {
        Random r = new Random(5);
        for (int[] s : new int[][]{{16, 37, 9}, {40, 300, 70}, {5, 64, 8}}) {
            int m = s[0], k = s[1], n = s[2];
            float[] x = new float[m * k];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            x[3] = Float.NaN;   // code 0 everywhere
            byte[] b = codes(r, n * k);
            float[] sb = new float[n];
            java.util.Arrays.fill(sb, 0.01f);
            float[] got = new float[m * n], want = new float[m * n];
            Int8Gemm.linear(x, m, k, 0.02f, b, n, sb, null, true, got);
            Int8Gemm.bytes(Int8Gemm.quantize(x, 0.02f), m, k, b, n, 0.02f, sb, null, true, want);
            assertArrayEquals(want, got, 0f, m + "x" + k + "x" + n);
        }
    }

    /**
     * Each machine-code step form this processor runs (AVX2, and VNNI where present), with either operand unsigned, called
     * directly on random depths, tile counts, offsets and row strides: exact int32 sums of the extreme codes, and nothing
     * written outside the tiles.
     */
    @Test void machineCodeKernelsGiveExactSums() {
        Assumptions.assumeTrue(Int8GemmAvx2.available(), () -> "no int8 machine code here: " + Int8GemmAvx2.UNAVAILABLE);
        Random r = new Random(6);
        int mr = Int8GemmAvx2.MR, nr = Int8GemmAvx2.NR;
        for (Int8GemmAvx2.Vnni form : Int8GemmAvx2.forms()) for (boolean unsignedA : new boolean[]{true, false}) for (int trial = 0; trial < 30; trial++) {
            int quads = trial == 0 ? 0 : r.nextInt(80), tiles = 1 + r.nextInt(4), ao = r.nextInt(9), bo = r.nextInt(9), co = r.nextInt(9);
            int ldc = tiles * nr + r.nextInt(5), kp = 4 * quads;
            byte[] a = new byte[ao + mr * kp + r.nextInt(3)];
            byte[] rowsB = new byte[tiles * nr * kp];
            for (int i = 0; i < a.length; i++) a[i] = (byte) (unsignedA ? r.nextInt(128) : r.nextInt(255) - 127);
            for (int i = 0; i < rowsB.length; i++) rowsB[i] = (byte) (unsignedA ? r.nextInt(255) - 127 : r.nextInt(128));
            if (quads > 0) {   // the extremes: 127 · ±127 in every product of row 0 against column 0
                for (int t = 0; t < kp; t++) {
                    a[ao + t] = 127;
                    rowsB[t] = (byte) (unsignedA ? -127 : 127);
                }
            }
            int[] packed = Int8GemmAvx2.pack(rowsB, tiles * nr, quads), b = new int[bo + packed.length];
            System.arraycopy(packed, 0, b, bo, packed.length);
            int[] c = new int[co + (mr - 1) * ldc + tiles * nr + 3];
            java.util.Arrays.fill(c, 0x5A5A5A5A);
            Int8GemmAvx2.rows(a, ao, quads, b, bo, c, co, ldc, tiles, unsignedA, form);
            for (int i = 0; i < c.length; i++) {
                int rel = i - co, row = Math.floorDiv(rel, ldc), col = rel - row * ldc;
                boolean inTile = rel >= 0 && row < mr && col < tiles * nr;
                if (!inTile) {
                    assertEquals(0x5A5A5A5A, c[i], form + ": index " + i + " outside the tiles was written");
                    continue;
                }
                long sum = 0;
                for (int t = 0; t < kp; t++) sum += a[ao + row * kp + t] * rowsB[col * kp + t];
                assertEquals(sum, c[i], form + (unsignedA ? " unsigned A" : " unsigned B") + ": quads " + quads + ", row " + row + ", column " + col);
            }
        }
    }

    /**
     * A fresh JVM at 256 bits (where SgemmKernel's initialiser builds the AVX2 machine-code kernel) whose first product is
     * int8, and one whose first is float: the kernel classes must initialise in either order (a kernel class calling a
     * static of SgemmKernelAvx2 once made the int8-first order fail with an ExceptionInInitializerError).
     */
    @Test void theMachineCodeKernelsStartInEitherOrder() throws Exception {
        Assumptions.assumeTrue(MachineCode.x86Features().contains("avx2"), "no AVX2 here");
        for (String first : new String[]{"int8", "float"}) {
            java.util.List<String> cmd = java.util.List.of(ProcessHandle.current().info().command().orElseThrow(),
                    "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:UseAVX=2", "-XX:TieredStopAtLevel=1",
                    "-cp", System.getProperty("kiln.test.classpath", System.getProperty("java.class.path")), FirstProduct.class.getName(), first);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), first + " first: did not finish");
            assertEquals(0, p.exitValue(), first + " first:\n" + out);
            assertTrue(out.contains("products agree"), first + " first:\n" + out);
        }
    }

    /** The child of {@link #theMachineCodeKernelsStartInEitherOrder}: an int8 and a float product, in the order asked. */
    static final class FirstProduct {
        public static void main(String[] args) {
            int m = 20, k = 40, n = 18;
            Random r = new Random(9);
            byte[] a = codes(r, m * k), b = codes(r, n * k);
            float[] ones = new float[n], c = new float[m * n];
            java.util.Arrays.fill(ones, 1f);
            float[] af = Int8Gemm.floats(a, 0, m * k), bt = new float[k * n], cf = new float[m * n];
            for (int j = 0; j < n; j++) for (int t = 0; t < k; t++) bt[t * n + j] = b[j * k + t];
            Runnable int8 = () -> Int8Gemm.gemm(a, m, k, b, n, 1f, ones, null, false, c);
            Runnable fp32 = () -> Sgemm.PREFERRED.gemm(m, n, k, new Sgemm.Mat(af, 0, k, 1), new Sgemm.Mat(bt, 0, n, 1), cf, 0, n, false,
                    Sgemm.PREFERRED.localScratch());
            if (args[0].equals("int8")) { int8.run(); fp32.run(); } else { fp32.run(); int8.run(); }
            for (int i = 0; i < m * n; i++) if (c[i] != cf[i]) throw new AssertionError("output " + i + ": int8 " + c[i] + ", float " + cf[i]);
            System.out.println("products agree (" + Int8GemmAvx2.describe() + ", " + CpuBackend.INSTANCE.gemmKernel() + ")");
        }
    }

    @Test void machineCodeKernelRefusesIndicesPastTheArrays() {
        Assumptions.assumeTrue(Int8GemmAvx2.available(), () -> "no int8 machine code here: " + Int8GemmAvx2.UNAVAILABLE);
        int mr = Int8GemmAvx2.MR, nr = Int8GemmAvx2.NR, quads = 3;
        byte[] a = new byte[mr * 4 * quads];
        int[] b = new int[quads * nr], c = new int[mr * nr];
        Int8GemmAvx2.rows(a, 0, quads, b, 0, c, 0, nr, 1, true, Int8GemmAvx2.IN_USE);
        assertThrows(IndexOutOfBoundsException.class, () -> Int8GemmAvx2.rows(a, 1, quads, b, 0, c, 0, nr, 1, true, Int8GemmAvx2.IN_USE));
        assertThrows(IndexOutOfBoundsException.class, () -> Int8GemmAvx2.rows(a, 0, quads, b, 1, c, 0, nr, 1, true, Int8GemmAvx2.IN_USE));
        assertThrows(IndexOutOfBoundsException.class, () -> Int8GemmAvx2.rows(a, 0, quads, b, 0, c, 1, nr, 1, true, Int8GemmAvx2.IN_USE));
        assertThrows(IndexOutOfBoundsException.class, () -> Int8GemmAvx2.rows(a, 0, quads, b, 0, c, 0, nr, 2, true, Int8GemmAvx2.IN_USE));
    }

    /**
     * The int8 convolution on the machine code against the float-GEMM path, to the bit: one channel with negative inputs
     * (split, padded to a whole int), 32 channels with padding and stride 2, 6 channels (not whole ints), dilation 2, a
     * batch whose images split and do not in turn (buffers reused across layouts), a NaN input, and the folded ReLU.
     */
    @Test void convolutionOnTheKernelEqualsTheFloatPath() {
        Assumptions.assumeTrue(Int8GemmAvx2.available(), () -> "no int8 machine code here: " + Int8GemmAvx2.UNAVAILABLE);
        Random r = new Random(7);
        // n, c, h, w, out, k, stride, pad, dilation, input: 0 of both signs, 1 non-negative, 2 odd images non-negative
        int[][] cases = {{3, 1, 12, 11, 32, 3, 1, 0, 1, 0}, {2, 32, 9, 10, 20, 3, 2, 1, 1, 1}, {2, 6, 8, 8, 17, 3, 1, 1, 2, 0},
                {2, 8, 7, 9, 5, 1, 1, 0, 1, 1}, {1, 16, 6, 6, 64, 5, 1, 2, 1, 1}, {4, 6, 7, 7, 9, 3, 1, 1, 1, 2}, {4, 1, 9, 9, 8, 3, 1, 0, 1, 2}};
        for (int[] cs : cases) {
            int n = cs[0], c = cs[1], h = cs[2], w = cs[3], out = cs[4], k = cs[5];
            dev.kiln.backend.Conv2dParams g = dev.kiln.backend.Conv2dParams.of(cs[6], cs[7], cs[8], 1);
            float[] x = new float[n * c * h * w];
            for (int i = 0; i < x.length; i++) {
                boolean positive = cs[9] == 1 || cs[9] == 2 && i / (c * h * w) % 2 == 1;
                x[i] = (float) (positive ? Math.abs(r.nextGaussian()) : r.nextGaussian());
            }
            x[x.length / 2] = Float.NaN;
            byte[] wc = codes(r, out * c * k * k);
            float[] ws = new float[out], bias = new float[out];
            for (int j = 0; j < out; j++) {
                ws[j] = 0.001f * (1 + j);
                bias[j] = 0.1f * j - 0.5f;
            }
            dev.kiln.Tensor xt = dev.kiln.Tensor.of(x, n, c, h, w), codes = dev.kiln.Tensor.fromHost(wc, dev.kiln.DType.UINT8, new int[]{out, c, k, k}, dev.kiln.Device.CPU);
            for (boolean relu : new boolean[]{false, true}) {
                float[] kernel = QuantizedCpu.conv2d(dev.kiln.backend.QuantFormat.INT8, xt, codes, g, dev.kiln.Tensor.of(ws, out), dev.kiln.Tensor.of(bias, out), 0.03, relu, true).toFloatArray();
                float[] floats = QuantizedCpu.conv2d(dev.kiln.backend.QuantFormat.INT8, xt, codes, g, dev.kiln.Tensor.of(ws, out), dev.kiln.Tensor.of(bias, out), 0.03, relu, false).toFloatArray();
                assertArrayEquals(floats, kernel, 0f, java.util.Arrays.toString(cs) + " relu " + relu);
            }
        }
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
