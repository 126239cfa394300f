package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Fp8E4M3;
import dev.kiln.backend.QuantFormat;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Matmul;

/**
 * The quantized products on the CPU. int8: the input quantized as {@link Int8Gemm#code} does, the product on
 * {@link Int8GemmAvx2}'s machine code where it runs (a convolution: its weights against tiles of output positions
 * gathered from the image's channels-last codes), else through {@link Int8Gemm} (a convolution: its exact integer sums
 * through the float GEMM over columns of codes, {@link Int8Gemm#exactSums}). FP8: the CPU has no FP8 arithmetic, so the codes of the input
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
        Tensor result = CpuStorage.newTensor(new int[]{m, n}, DType.FLOAT32);   // written in place: Tensor.fromHost would copy it
        Int8Gemm.linear(floats(x), m, k, (float) inputScale, bytes(codes), n, ws, b, relu, (float[]) CpuStorage.arrayOf(result));
        return result;
    }

    static Tensor conv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams g, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        return conv2d(format, x, codes, g, weightScale, bias, inputScale, relu, Int8GemmAvx2.available());
    }

    /** onKernel: int8 on {@link Int8GemmAvx2} (where it runs), else through the float GEMM; the same outputs to the bit. */
    static Tensor conv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams g, Tensor weightScale, Tensor bias, double inputScale, boolean relu,
                         boolean onKernel) {
        int n = x.size(0), in = x.size(1), h = x.size(2), w = x.size(3), out = codes.size(0), kh = codes.size(2), kw = codes.size(3);
        int oh = g.outH(h, kh), ow = g.outW(w, kw), p = oh * ow, k = in * kh * kw;
        float scale = (float) inputScale;
        float[] ws = weightScale.toFloatArray(), b = bias == null ? null : bias.toFloatArray();
        if (format == QuantFormat.FP8_E4M3) {
            Tensor y = Convolution.conv2d(fp8Values(x, scale), decoded(codes), null, g, false);
            return scaled(y, p, out, scale, ws, b, relu);
        }
        if (onKernel) return conv2dOnKernel(floats(x), bytes(codes), n, in, h, w, out, kh, kw, g, scale, ws, b, relu);
        float[] xf = floats(x), wf = Int8Gemm.floats(bytes(codes), 0, out * k);
        double inv = 1.0 / scale;
        // the exact sums through the float GEMM (Int8Gemm.exactSums); one image per task: its columns (k x P, a row per
        // (c, i, j) tap: runs of the input row) stay in cache for the product W (out x k) · columns, its NCHW output. (The
        // float convolution of the codes, exact too for k <= 1024, measured slower over the whole cnn: 103-105 against
        // 89-93 ms at batch 256.)
        Tensor result = CpuStorage.newTensor(new int[]{n, out, oh, ow}, DType.FLOAT32);
        float[] y = (float[]) CpuStorage.arrayOf(result);
        Parallel.balanced(n, (i0, i1) -> {
            float[] cols = new float[k * p], sums = new float[out * p], image = new float[in * h * w];
            int[] acc = k > Int8Gemm.EXACT_K ? new int[out * p] : null, imageCodes = new int[in * h * w];
            for (int img = i0; img < i1; img++) {
                Int8Gemm.codes(xf, img * in * h * w, in * h * w, inv, imageCodes);   // each task quantizes its own images
                for (int i = 0; i < image.length; i++) image[i] = imageCodes[i];
                columns(image, 0, in, h, w, kh, kw, g, oh, ow, cols);
                if (acc != null) java.util.Arrays.fill(acc, 0);
                Int8Gemm.exactSums(out, p, k, new Sgemm.Mat(wf, 0, k, 1), new Sgemm.Mat(cols, 0, p, 1), sums, acc, true);
                if (acc != null) for (int i = 0; i < acc.length; i++) sums[i] = acc[i];   // as Int8Gemm.output takes an int sum
                for (int j = 0; j < out; j++) epilogue(sums, j * p, y, (img * out + j) * p, p, scale, ws[j], b == null ? 0 : b[j], relu);
            }
        });
        return result;
    }

    /**
     * The int8 convolution on the machine-code kernel ({@link Int8GemmAvx2}), one image per task: the image quantized
     * channels-last into ints of four codes (each code split into max(x, 0) and max(-x, 0) when the image has a negative
     * code; channels padded with 0 to whole ints), the kernel's tiles of output positions gathered from those ints, the
     * weights' rows times them into int32 sums channel by channel, then the epilogue into NCHW.
     */
    private static Tensor conv2dOnKernel(float[] xf, byte[] codes, int n, int in, int h, int w, int out, int kh, int kw, Conv2dParams g,
                                         float scale, float[] ws, float[] b, boolean relu) {
        int oh = g.outH(h, kh), ow = g.outW(w, kw), p = oh * ow, mr = Int8GemmAvx2.MR, nr = Int8GemmAvx2.NR;
        int panels = (out + mr - 1) / mr, tiles = (p + nr - 1) / nr, ldc = tiles * nr, hw = h * w;
        double inv = 1.0 / scale;
        Tensor result = CpuStorage.newTensor(new int[]{n, out, oh, ow}, DType.FLOAT32);   // written in place: Tensor.fromHost would copy it
        float[] y = (float[]) CpuStorage.arrayOf(result);
        int[] idxPlain = tapIndices(h, w, Int8GemmAvx2.slots(in, false) / 4, kh, kw, g, oh, ow),
                idxSplit = tapIndices(h, w, Int8GemmAvx2.slots(in, true) / 4, kh, kw, g, oh, ow);
        byte[] weightsPlain = Int8GemmAvx2.weightPanels(codes, out, in, kh * kw, false);
        Parallel.balanced(n, (i0, i1) -> {
            ConvBuffers buf = BUFFERS.get();
            for (int img = i0; img < i1; img++) {
                int[][] planes = buf.planes(in, hw);
                boolean split = false;   // a negative code: the kernel takes max(v, 0) and max(-v, 0)
                for (int c = 0; c < in; c++) split |= Int8Gemm.codes(xf, (img * in + c) * hw, hw, inv, planes[c]);
                int slots = Int8GemmAvx2.slots(in, split), steps = slots / 4, quads = kh * kw * steps;
                int[] words = buf.words((hw + 1) * steps), packed = buf.packed(tiles * quads * nr), sums = buf.sums(panels * mr * ldc);
                java.util.Arrays.fill(words, hw * steps, (hw + 1) * steps, 0);   // the zero pixel that taps outside the image read
                channelsLastWords(planes, in, hw, split, slots, buf.pixels(hw * slots), words);
                // what an earlier image or call left in a tile's columns past the last position lands in sums the epilogue does not read
                positionTiles(words, steps, kh * kw, tiles, quads, split ? idxSplit : idxPlain, packed);
                byte[] weights = split ? Int8GemmAvx2.weightPanels(codes, out, in, kh * kw, true) : weightsPlain;
                Int8GemmAvx2.product(weights, 0, panels, quads, packed, tiles, sums, ldc, false);
                for (int j = 0; j < out; j++) Int8Gemm.outputs(sums, j * ldc, y, (img * out + j) * p, p, scale, ws[j], b == null ? 0 : b[j], relu);
            }
        });
        return result;
    }

    /** A thread's buffers for {@link #conv2dOnKernel}, grown on demand, reused from image to image and call to call. */
    private static final class ConvBuffers {
        private byte[] pixels = new byte[0];
        private int[] words = new int[0], packed = new int[0], sums = new int[0];
        private int[][] planes = new int[0][0];

        byte[] pixels(int n) { return pixels.length >= n ? pixels : (pixels = new byte[n]); }
        int[] words(int n) { return words.length >= n ? words : (words = new int[n]); }
        int[][] planes(int count, int n) { return planes.length >= count && planes[0].length >= n ? planes : (planes = new int[count][n]); }
        int[] packed(int n) { return packed.length >= n ? packed : (packed = new int[n]); }
        int[] sums(int n) { return sums.length >= n ? sums : (sums = new int[n]); }
    }

    private static final ThreadLocal<ConvBuffers> BUFFERS = ThreadLocal.withInitial(ConvBuffers::new);

    /**
     * An image's codes (planes[c], one per channel) channels-last as ints of four: each pixel's `slots` codes (the codes,
     * or with `split` max(v, 0) then max(-v, 0) of each, then zeros) are slots / 4 ints of words, in memory order. Without
     * a split and with in a multiple of 4, four channels' codes go straight into each int; otherwise through the bytes of
     * `pixels`.
     */
    private static void channelsLastWords(int[][] planes, int in, int hw, boolean split, int slots, byte[] pixels, int[] words) {
        int steps = slots / 4;
        if (!split && in % 4 == 0) {
            for (int c = 0; c < in; c += 4) {
                int[] p0 = planes[c], p1 = planes[c + 1], p2 = planes[c + 2], p3 = planes[c + 3];
                for (int s = 0, at = c / 4; s < hw; s++, at += steps) words[at] = p0[s] & 0xFF | (p1[s] & 0xFF) << 8 | (p2[s] & 0xFF) << 16 | p3[s] << 24;
            }
            return;
        }
        java.util.Arrays.fill(pixels, 0, hw * slots, (byte) 0);   // the padding slots (an earlier image's layout may differ)
        for (int c = 0; c < in; c++) {
            for (int s = 0; s < hw; s++) Int8GemmAvx2.putCode(pixels, s * slots + c, planes[c][s], in, split);
        }
        for (int i = 0; i < hw * steps; i++) words[i] = (int) Int8GemmAvx2.INTS.get(pixels, 4 * i);
    }

    /**
     * Where each column of each tile reads under each tap: idx[(tile · taps + tap) · 16 + col] is the index in the
     * channels-last ints of the pixel under tap (i, j) of output position tile · 16 + col, or `zero` (the zero ints after
     * the pixels) outside the image and past the last position. The same for every image of a call.
     */
    private static int[] tapIndices(int h, int w, int steps, int kh, int kw, Conv2dParams g, int oh, int ow) {
        int nr = Int8GemmAvx2.NR, p = oh * ow, taps = kh * kw, tiles = (p + nr - 1) / nr, zero = h * w * steps;
        int[] idx = new int[tiles * taps * nr];
        for (int pos = 0; pos < tiles * nr; pos++) {
            int oy = pos / ow, ox = pos % ow, tile = pos / nr, col = pos % nr;
            for (int i = 0; i < kh; i++) {
                int iy = oy * g.strideH() - g.padH() + i * g.dilationH();
                for (int j = 0; j < kw; j++) {
                    int ix = ox * g.strideW() - g.padW() + j * g.dilationW();
                    boolean inside = pos < p && iy >= 0 && iy < h && ix >= 0 && ix < w;
                    idx[(tile * taps + i * kw + j) * nr + col] = inside ? (iy * w + ix) * steps : zero;
                }
            }
        }
        return idx;
    }

    /** Lanes of the gathers that build a tile's steps. */
    private static final jdk.incubator.vector.VectorSpecies<Integer> GATHER = jdk.incubator.vector.IntVector.SPECIES_PREFERRED;

    /**
     * The kernel's tiles of the output positions straight from channels-last pixels of `steps` ints each: position pos
     * is column pos % 16 of tile pos / 16, and step q of its row the 4 codes at k = 4q in tap-major order (what
     * {@link Int8GemmAvx2#pack} would make of im2col's rows, without the rows between). Each tile's step is 16 columns
     * gathered from the pixels under one tap ({@link #tapIndices}).
     */
    private static void positionTiles(int[] words, int steps, int taps, int tiles, int quads, int[] idx, int[] packed) {
        int nr = Int8GemmAvx2.NR;
        for (int tile = 0; tile < tiles; tile++) {
            for (int tap = 0; tap < taps; tap++) for (int t = 0; t < steps; t++) {
                int dst = (tile * quads + tap * steps + t) * nr, from = (tile * taps + tap) * nr;
                for (int c = 0; c < nr; c += GATHER.length()) {
                    jdk.incubator.vector.IntVector.fromArray(GATHER, words, t, idx, from + c).intoArray(packed, dst + c);
                }
            }
        }
    }

    /** One output channel's len sums into y ({@link Int8Gemm#output}). */
    private static void epilogue(float[] sums, int from, float[] y, int to, int len, float scale, float wj, float bj, boolean relu) {
        for (int i = 0; i < len; i++) y[to + i] = Int8Gemm.output(sums[from + i], scale, wj, bj, relu);
    }

    /** x's float32 values in NCHW (row-major) order, read in place when x is a whole contiguous float32 array (not copied per call). */
    private static float[] floats(Tensor x) {
        if (x.dtype() == DType.FLOAT32 && x.isContiguous() && x.offset() == 0 && x.storage().numel() == x.numel()) return (float[]) CpuStorage.arrayOf(x);
        return x.toFloatArray();
    }

    /** The codes' bytes, read in place when the tensor is a whole contiguous array (not copied per call). */
    private static byte[] bytes(Tensor codes) {
        Tensor c = codes.isContiguous() && codes.offset() == 0 ? codes : codes.contiguousCopy();
        return (byte[]) CpuStorage.arrayOf(c);
    }

    /** x / scale rounded to E4M3 (as its code would decode), in code units. */
    private static Tensor fp8Values(Tensor x, float scale) {
        float[] in = floats(x);
        Tensor result = CpuStorage.newTensor(x.shape(), DType.FLOAT32);
        float[] v = (float[]) CpuStorage.arrayOf(result);
        for (int i = 0; i < v.length; i++) v[i] = FP8[Fp8E4M3.encode(in[i] / scale) & 0xFF];
        return result;
    }

    private static Tensor decoded(Tensor codes) {
        byte[] c = bytes(codes);
        Tensor result = CpuStorage.newTensor(codes.shape(), DType.FLOAT32);
        float[] v = (float[]) CpuStorage.arrayOf(result);
        for (int i = 0; i < v.length; i++) v[i] = FP8[c[i] & 0xFF];
        return result;
    }

    /** y (code units; channel j of every block of {@code inner} values, j < n) times inputScale · ws[j], plus b[j]; max(., 0) when relu. */
    private static Tensor scaled(Tensor y, int inner, int n, float inputScale, float[] ws, float[] b, boolean relu) {
        float[] in = floats(y);
        Tensor result = CpuStorage.newTensor(y.shape(), DType.FLOAT32);
        float[] v = (float[]) CpuStorage.arrayOf(result);
        for (int i = 0; i < v.length; i++) {
            int j = (i / inner) % n;
            v[i] = Int8Gemm.output(in[i], inputScale, ws[j], b == null ? 0 : b[j], relu);
        }
        return result;
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
