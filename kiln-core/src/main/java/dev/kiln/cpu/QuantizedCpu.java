package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Fp8E4M3;
import dev.kiln.backend.QuantFormat;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Matmul;

/**
 * The quantized products on the CPU. int8: the input quantized by {@link Int8Gemm#quantize}, the product by
 * {@link Int8Gemm} (a convolution: its exact integer sums through the float GEMM over columns of codes,
 * {@link Int8Gemm#exactSums}). FP8: the CPU has no FP8 arithmetic, so the codes of the input
 * and weight are decoded to the float32 values they stand for (exact: an E4M3 value has 4 significant bits) and the
 * float32 matmul or convolution multiplies them; the result equals the GPU's FP8 tensor-core product up to the order of
 * the float32 sums.
 */
final class QuantizedCpu {
    private QuantizedCpu() {}

    /** Every E4M3 code's value. */
    private static final float[] FP8 = new float[256];
    static {
        for (int c = 0; c < 256; c++) FP8[c] = Fp8E4M3.decode((byte) c);
    }

    static Tensor linear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        int m = x.size(0), k = x.size(1), n = codes.size(0);
        float[] ws = weightScale.toFloatArray(), b = bias == null ? null : bias.toFloatArray();
        if (format == QuantFormat.FP8_E4M3) {
            Tensor y = Matmul.linear(fp8Values(x, (float) inputScale), decoded(codes), null);
            return scaled(y, 1, n, (float) inputScale, ws, b, relu);
        }
        byte[] xq = Int8Gemm.quantize(x.toFloatArray(), (float) inputScale);
        float[] out = new float[m * n];
        Int8Gemm.gemm(xq, m, k, bytes(codes), n, (float) inputScale, ws, b, relu, out);
        return Tensor.fromHost(out, DType.FLOAT32, new int[]{m, n}, Device.CPU);
    }

    static Tensor conv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams g, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        int n = x.size(0), in = x.size(1), h = x.size(2), w = x.size(3), out = codes.size(0), kh = codes.size(2), kw = codes.size(3);
        int oh = g.outH(h, kh), ow = g.outW(w, kw), p = oh * ow, k = in * kh * kw;
        float scale = (float) inputScale;
        float[] ws = weightScale.toFloatArray(), b = bias == null ? null : bias.toFloatArray();
        if (format == QuantFormat.FP8_E4M3) {
            Tensor y = Convolution.conv2d(fp8Values(x, scale), decoded(codes), null, g, false);
            return scaled(y, p, out, scale, ws, b, relu);
        }
        float[] qx = Int8Gemm.quantizeToFloats(x.toFloatArray(), scale), wf = Int8Gemm.floats(bytes(codes), 0, out * k);
        // the exact sums through the float GEMM (Int8Gemm.exactSums); one image per task: its columns (k x P, a row per
        // (c, i, j) tap: runs of the input row) stay in cache for the product W (out x k) · columns, its NCHW output. (The
        // float convolution of the codes, exact too for k <= 1024, measured slower over the whole cnn: 103-105 against
        // 89-93 ms at batch 256.)
        float[] y = new float[n * out * p];
        Parallel.balanced(n, (i0, i1) -> {
            float[] cols = new float[k * p], sums = new float[out * p];
            int[] acc = k > Int8Gemm.EXACT_K ? new int[out * p] : null;
            for (int img = i0; img < i1; img++) {
                columns(qx, img, in, h, w, kh, kw, g, oh, ow, cols);
                if (acc != null) java.util.Arrays.fill(acc, 0);
                Int8Gemm.exactSums(out, p, k, new Sgemm.Mat(wf, 0, k, 1), new Sgemm.Mat(cols, 0, p, 1), sums, acc, true);
                if (acc != null) for (int i = 0; i < acc.length; i++) sums[i] = acc[i];   // as Int8Gemm.output takes an int sum
                for (int j = 0; j < out; j++) epilogue(sums, j * p, y, (img * out + j) * p, p, scale, ws[j], b == null ? 0 : b[j], relu);
            }
        });
        return Tensor.fromHost(y, DType.FLOAT32, new int[]{n, out, oh, ow}, Device.CPU);
    }

    /** One output channel's len sums into y ({@link Int8Gemm#output}). */
    private static void epilogue(float[] sums, int from, float[] y, int to, int len, float scale, float wj, float bj, boolean relu) {
        for (int i = 0; i < len; i++) y[to + i] = Int8Gemm.output(sums[from + i], scale, wj, bj, relu);
    }

    /** The codes' bytes, read in place when the tensor is a whole contiguous array (not copied per call). */
    private static byte[] bytes(Tensor codes) {
        Tensor c = codes.isContiguous() && codes.offset() == 0 ? codes : codes.contiguousCopy();
        return (byte[]) CpuStorage.arrayOf(c);
    }

    /** x / scale rounded to E4M3 (as its code would decode), in code units. */
    private static Tensor fp8Values(Tensor x, float scale) {
        float[] v = x.toFloatArray();
        for (int i = 0; i < v.length; i++) v[i] = FP8[Fp8E4M3.encode(v[i] / scale) & 0xFF];
        return Tensor.fromHost(v, DType.FLOAT32, x.shape(), Device.CPU);
    }

    private static Tensor decoded(Tensor codes) {
        byte[] c = bytes(codes);
        float[] v = new float[(int) codes.numel()];
        for (int i = 0; i < v.length; i++) v[i] = FP8[c[i] & 0xFF];
        return Tensor.fromHost(v, DType.FLOAT32, codes.shape(), Device.CPU);
    }

    /** y (code units; channel j of every block of {@code inner} values, j < n) times inputScale · ws[j], plus b[j]; max(., 0) when relu. */
    private static Tensor scaled(Tensor y, int inner, int n, float inputScale, float[] ws, float[] b, boolean relu) {
        float[] v = y.toFloatArray();
        for (int i = 0; i < v.length; i++) {
            int j = (i / inner) % n;
            v[i] = Int8Gemm.output(v[i], inputScale, ws[j], b == null ? 0 : b[j], relu);
        }
        return Tensor.fromHost(v, DType.FLOAT32, y.shape(), Device.CPU);
    }

    /**
     * Image {@code img}'s columns: row (c, i, j) of the k = C·kh·kw rows holds, for each output position, the code under
     * tap (i, j) of channel c (0 outside the image), so each row is runs of one input row.
     */
    private static void columns(float[] qx, int img, int in, int h, int w, int kh, int kw, Conv2dParams g, int oh, int ow, float[] cols) {
        int p = oh * ow;
        for (int c = 0; c < in; c++) for (int i = 0; i < kh; i++) for (int j = 0; j < kw; j++) {
            int row = ((c * kh + i) * kw + j) * p, plane = (img * in + c) * h * w;
            for (int y = 0; y < oh; y++) {
                int iy = y * g.strideH() - g.padH() + i * g.dilationH(), dst = row + y * ow;
                if (iy < 0 || iy >= h) {
                    java.util.Arrays.fill(cols, dst, dst + ow, 0f);
                    continue;
                }
                int src = plane + iy * w, x0 = j * g.dilationW() - g.padW(), sw = g.strideW();
                // positions whose ix = x * sw + x0 lies in [0, w): [xa, xb); with stride 1 a plain copy
                int xa = x0 >= 0 ? 0 : Math.min(ow, (-x0 + sw - 1) / sw), xb = Math.max(xa, Math.min(ow, x0 >= w ? 0 : (w - 1 - x0) / sw + 1));
                for (int x = 0; x < xa; x++) cols[dst + x] = 0f;   // padding: a few elements, not worth a fill call
                if (sw == 1) {
                    System.arraycopy(qx, src + x0 + xa, cols, dst + xa, xb - xa);
                } else {
                    for (int x = xa; x < xb; x++) cols[dst + x] = qx[src + x * sw + x0];
                }
                for (int x = xb; x < ow; x++) cols[dst + x] = 0f;
            }
        }
    }
}
