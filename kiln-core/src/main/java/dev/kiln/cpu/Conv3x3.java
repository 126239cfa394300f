package dev.kiln.cpu;

import dev.kiln.backend.Conv2dParams;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Convolution family: float32 3x3 stride-1 convolutions with many channels (a ResNet's basic blocks, the
 * small CNNs' second layers), forward and both gradients, without im2col. Each image is copied once into a zero-padded
 * plane per channel, and {@link Conv3x3Kernel} multiplies the packed weights by that copy's rows in place: output
 * position q of a padded row (q = oy·Wp + ox) takes tap (ki, kj) of channel ch from ch·plane + q + ki·Wp + kj. The
 * positions past each row's last output column (2 of every Wp) are computed and dropped when the rows are copied out,
 * where im2col + GEMM wrote and packed a (9·C x P) matrix per image: half of a 32-channel layer's time on two cores.
 * The input gradient is the same convolution of the output gradient padded by 2 - pad, with the weights transposed
 * and turned half a circle; the weight gradient multiplies the same rows by the transposed output gradient. Images go to
 * threads, one at a time each; with fewer images than threads, one image at a time goes to all of them (its blocks of
 * output channels and runs of tiles; for the weight gradient, its input channels).
 */
final class Conv3x3 {
    private Conv3x3() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** This machine's kernel, or null (no machine code here, or kiln.cpu.asm off): then im2col + GEMM runs. */
    static final Conv3x3Kernel KERNEL = Conv3x3Kernel.PREFERRED;
    /** Fewer input channels take {@link DirectConv} or im2col, whose columns are then few. */
    static final int MIN_CHANNELS = 8;

    /** Whether a convolution with c input channels goes here (also for its gradients). */
    static boolean applies(int c, int kh, int kw, Conv2dParams p) {
        return KERNEL != null && kh == 3 && kw == 3 && p.strideH() == 1 && p.strideW() == 1 && p.dilationH() == 1
                && p.dilationW() == 1 && p.groups() == 1 && p.padH() <= 2 && p.padW() <= 2 && c >= MIN_CHANNELS;
    }

    /**
     * What the rows' copy-out adds and applies: bias[bOff + oc], a residual of the output's shape (contiguous, element i
     * at residual[rOff + i]), a ReLU.
     */
    record Epilogue(float[] bias, int bOff, float[] residual, int rOff, boolean relu) {
        static final Epilogue NONE = new Epilogue(null, 0, null, 0, false);
    }

    /**
     * y (n, o, h + 2ph - 2, w + 2pw - 2), contiguous, = the convolution of x (n, c, h, w, contiguous from xOff) with
     * wt (o, c, 3, 3, contiguous from wOff), then the epilogue: + bias, + residual, ReLU (NaN kept), each where given.
     */
    static void forward(Conv3x3Kernel kernel, float[] x, int xOff, int n, int c, int h, int w, float[] wt, int wOff, int o,
                        int ph, int pw, Epilogue epilogue, float[] y) {
        convolve(kernel, x, xOff, n, c, h, w, pack(kernel, wt, wOff, o, c, false), o, ph, pw, epilogue, y, 0, false);
    }

    /**
     * gx (x's shape (n, c, oh + 2 - 2ph, ow + 2 - 2pw), contiguous from gxOff) = (or += when add) the input gradient of
     * that convolution, from gy (n, o, oh, ow, contiguous from gyOff) and the same weights.
     */
    static void backwardInput(Conv3x3Kernel kernel, float[] gy, int gyOff, int n, int o, int oh, int ow, float[] wt, int wOff,
                              int c, int ph, int pw, float[] gx, int gxOff, boolean add) {
        convolve(kernel, gy, gyOff, n, o, oh, ow, pack(kernel, wt, wOff, c, o, true), c, 2 - ph, 2 - pw, Epilogue.NONE, gx, gxOff, add);
    }

    /**
     * gw (o, c, 3, 3), overwritten, = the weight gradient of that convolution, from x (n, c, h, w, contiguous from xOff)
     * and gy (n, o, h + 2ph - 2, w + 2pw - 2, contiguous from gyOff): per image, gy transposed to (position, o) with
     * the dropped positions zero, and for each block of NW output channels {@link Conv3x3Kernel#weights} over all
     * input channels. Each worker sums its images into its own accumulator; they are added in chunk order.
     */
    static void backwardWeight(Conv3x3Kernel kernel, float[] x, int xOff, int n, int c, int h, int w, float[] gy, int gyOff, int o,
                               int ph, int pw, float[] gw) {
        int hp = h + 2 * ph, wp = w + 2 * pw, oh = hp - 2, ow = wp - 2, plane = hp * wp, positions = oh * wp;
        int ld = (o + kernel.nw - 1) / kernel.nw * kernel.nw, padded = c * plane + 2;
        if (n < Parallel.THREADS) {
            // one image at a time, its input channels (disjoint rows of one accumulator) on all threads
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, padded), gyT = ThreadBuffers.get(ThreadBuffers.CONV_GY, positions * ld);
            float[] acc = new float[9 * c * ld];
            for (int img = 0; img < n; img++) {
                pad(x, xOff + img * c * h * w, c, h, w, ph, pw, xp, padded);
                transpose(gy, gyOff + img * o * oh * ow, o, oh, ow, wp, ld, gyT, positions);
                Parallel.range(c, 1, (lo, hi) -> {
                    for (int b = 0; b < ld; b += kernel.nw) kernel.weights(xp, lo * plane, hi - lo, wp, plane, gyT, b, ld, positions, acc, 9 * lo * ld + b);
                });
            }
            ConvolutionCpu.addTransposed(java.util.List.of(acc), gw, 1, o, 9 * c, ld);
            return;
        }
        var accs = new java.util.concurrent.ConcurrentSkipListMap<Integer, float[]>();
        Parallel.balanced(n, (lo, hi) -> {
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, padded), gyT = ThreadBuffers.get(ThreadBuffers.CONV_GY, positions * ld);
            float[] acc = new float[9 * c * ld];
            for (int img = lo; img < hi; img++) {
                pad(x, xOff + img * c * h * w, c, h, w, ph, pw, xp, padded);
                transpose(gy, gyOff + img * o * oh * ow, o, oh, ow, wp, ld, gyT, positions);
                for (int b = 0; b < ld; b += kernel.nw) kernel.weights(xp, 0, c, wp, plane, gyT, b, ld, positions, acc, b);
            }
            accs.put(lo, acc);
        });
        ConvolutionCpu.addTransposed(new java.util.ArrayList<>(accs.values()), gw, 1, o, 9 * c, ld);
    }

    /** One image's gy (o, oh, ow) into gyT as rows of ld per padded-row position (oy·wp + ox), zero where nothing is kept. */
    private static void transpose(float[] gy, int at, int o, int oh, int ow, int wp, int ld, float[] gyT, int positions) {
        java.util.Arrays.fill(gyT, 0, positions * ld, 0f);
        for (int oc = 0, s = at; oc < o; oc++) {
            for (int oy = 0; oy < oh; oy++) {
                for (int ox = 0; ox < ow; ox++, s++) gyT[(oy * wp + ox) * ld + oc] = gy[s];
            }
        }
    }

    /**
     * The weights for `outs` output channels from `ins` input channels in the kernel's A layout: for each block of MR
     * output channels, for each (ch, ki, kj), MR values (rows past outs zero). flipped: the input gradient's weights,
     * w'[oc][ch][t] = wt[ch][oc][8 - t].
     */
    private static float[] pack(Conv3x3Kernel kernel, float[] wt, int wOff, int outs, int ins, boolean flipped) {
        int mr = kernel.mr, k = 9 * ins, blocks = (outs + mr - 1) / mr;
        float[] packed = new float[blocks * mr * k];
        for (int oc = 0; oc < outs; oc++) {
            int base = oc / mr * mr * k + oc % mr;
            for (int ch = 0; ch < ins; ch++) {
                for (int t = 0; t < 9; t++) {
                    packed[base + (9 * ch + t) * mr] = flipped ? wt[wOff + (ch * outs + oc) * 9 + 8 - t] : wt[wOff + (oc * ins + ch) * 9 + t];
                }
            }
        }
        return packed;
    }

    private static void convolve(Conv3x3Kernel kernel, float[] in, int inOff, int n, int cin, int h, int w, float[] packed,
                                 int outs, int ph, int pw, Epilogue epilogue, float[] out, int outOff, boolean add) {
        int hp = h + 2 * ph, wp = w + 2 * pw, oh = hp - 2, ow = wp - 2, plane = hp * wp;
        int positions = oh * wp, tiles = (positions + kernel.nr - 1) / kernel.nr, ldc = tiles * kernel.nr;
        // the last tile reads up to ldc - positions + 2 floats past the last plane
        int padded = cin * plane + ldc - positions + 2, blocks = (outs + kernel.mr - 1) / kernel.mr, k = 9 * cin;
        if (n < Parallel.THREADS) {
            // one image at a time, its blocks' runs of tiles on all threads
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, padded);
            float[] rows = ThreadBuffers.get(ThreadBuffers.CONV_OUT, blocks * kernel.mr * ldc);
            for (int img = 0; img < n; img++) {
                pad(in, inOff + img * cin * h * w, cin, h, w, ph, pw, xp, padded);
                Parallel.range(blocks * tiles, 1, (lo, hi) -> {
                    for (int t = lo; t < hi; ) {
                        int b = t / tiles, first = t % tiles, count = Math.min(tiles - first, hi - t);
                        kernel.row(packed, b * kernel.mr * k, cin, xp, first * kernel.nr, wp, plane, rows,
                                b * kernel.mr * ldc + first * kernel.nr, ldc, count);
                        t += count;
                    }
                });
                int at = outOff + img * outs * oh * ow;
                Parallel.range(outs, 1, (lo, hi) -> copyOut(rows, ldc, wp, lo, hi, oh, ow, epilogue, out, at, add));
            }
            return;
        }
        Parallel.balanced(n, (lo, hi) -> {
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, padded);
            float[] rows = ThreadBuffers.get(ThreadBuffers.CONV_OUT, blocks * kernel.mr * ldc);
            for (int img = lo; img < hi; img++) {
                pad(in, inOff + img * cin * h * w, cin, h, w, ph, pw, xp, padded);
                for (int b = 0; b < blocks; b++) {
                    kernel.row(packed, b * kernel.mr * k, cin, xp, 0, wp, plane, rows, b * kernel.mr * ldc, ldc, tiles);
                }
                copyOut(rows, ldc, wp, 0, outs, oh, ow, epilogue, out, outOff + img * outs * oh * ow, add);
            }
        });
    }

    /** One image's c planes of h x w into xp as planes of (h + 2ph) x (w + 2pw) with zeros around, then zeros to `length`. */
    private static void pad(float[] x, int at, int c, int h, int w, int ph, int pw, float[] xp, int length) {
        int wp = w + 2 * pw, plane = (h + 2 * ph) * wp;
        for (int ch = 0; ch < c; ch++) {
            int d = ch * plane, s = at + ch * h * w;
            java.util.Arrays.fill(xp, d, d + ph * wp + pw, 0f);
            d += ph * wp + pw;
            for (int iy = 0; iy < h; iy++, d += wp, s += w) {
                System.arraycopy(x, s, xp, d, w);
                if (iy < h - 1) java.util.Arrays.fill(xp, d + w, d + wp, 0f);
            }
            java.util.Arrays.fill(xp, d - wp + w, (ch + 1) * plane, 0f);
        }
        java.util.Arrays.fill(xp, c * plane, length, 0f);
    }

    /**
     * out[oc][oy][0..ow) = (or += when add) rows[oc·ldc + oy·wp + 0..ow), then the epilogue, for oc in [from, to): each
     * padded row's kept positions. The epilogue's sums run in the order of the separate passes it replaces (conv + bias,
     * + residual, ReLU), so the values are theirs.
     */
    private static void copyOut(float[] rows, int ldc, int wp, int from, int to, int oh, int ow, Epilogue e, float[] out, int at, boolean add) {
        float[] bias = e.bias(), res = e.residual();
        for (int oc = from; oc < to; oc++) {
            float b = bias == null ? 0f : bias[e.bOff() + oc];
            for (int oy = 0; oy < oh; oy++) {
                int s = oc * ldc + oy * wp, d = at + (oc * oh + oy) * ow;
                if (add) Sgemm.addRow(rows, s, out, d, ow);
                else if (bias != null) biasRow(rows, s, b, out, d, ow);
                else System.arraycopy(rows, s, out, d, ow);
            }
            // the rest over the channel's whole plane: rows of 7-30 floats left most of a vector loop to its scalar tail
            int plane = at + oc * oh * ow;
            if (res != null) Sgemm.addRow(res, e.rOff() + plane, out, plane, oh * ow);
            if (e.relu()) ConvolutionCpu.reluRow(out, plane, oh * ow);
        }
    }

    /** dst[d..d+len) = src[s..s+len) + b. */
    private static void biasRow(float[] src, int s, float b, float[] dst, int d, int len) {
        FloatVector bv = FloatVector.broadcast(F, b);
        int j = 0;
        for (; j + F.length() <= len; j += F.length()) FloatVector.fromArray(F, src, s + j).add(bv).intoArray(dst, d + j);
        for (; j < len; j++) dst[d + j] = src[s + j] + b;
    }
}
