package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Convolution family: the direct float32 forward of {@link ConvolutionCpu} for convolutions with few
 * input channels (the first layer: 1 or 3 channels), where im2col + GEMM does not pay: the GEMM depth is only
 * cin*kh*kw (9 or 27), so packing and the im2col copy cost as much as the arithmetic. Here each input row is read
 * in place from a zero-padded copy of the image, vectorised over output columns: a register tile of 4 output
 * channels x 2 vectors of columns takes, per kernel tap, two unaligned loads of the input row, 4 weight broadcasts
 * and 8 FMAs (8 accumulators + 2 + 4 = 14 registers, so it fits AVX2's 16).
 * <p>
 * Stride 1, dilation 1, one group. The tile kernel exists once per vector width ({@link Rows8}: 256-bit vectors, used
 * on 256-bit and wider machines; {@link Rows4}: 128-bit), each with a static final species so C2 compiles straight
 * vector code; {@link #ROWS} is chosen once from the preferred species and tests run both.
 */
final class DirectConv {
    private DirectConv() {}

    /** Output channels per register tile. */
    static final int OB = 4;

    /** The tile kernel for this machine. */
    static final Rows ROWS = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256 ? new Rows8() : new Rows4();

    /** Whether the direct kernel takes this convolution: few input taps, stride 1, no dilation, one group. */
    static boolean applies(int cin, int kh, int kw, int sh, int sw, int dh, int dw, int groups) {
        return groups == 1 && sh == 1 && sw == 1 && dh == 1 && dw == 1 && cin * kh * kw <= 32 && cin <= 4;
    }

    /** One width's tile kernel. */
    abstract static sealed class Rows permits Rows8, Rows4 {
        /** Columns per tile (two vectors). */
        abstract int cols();

        /**
         * For 4 output channels, every column block of width cols() below width: out[oo + b*os + j] = bias[bo + b] +
         * sum over taps t of x[xo + off[t] + j] * w[wo + t*4 + b] (the weights interleaved by channel, per tap).
         */
        abstract void rows(float[] x, int xo, int[] off, int taps, float[] w, int wo, float[] bias, int bo,
                           float[] out, int oo, int os, int width);
    }

    /** 8-lane tiles (256-bit vectors). */
    static final class Rows8 extends Rows {
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
        private static final int L = 8;

        @Override int cols() { return 2 * L; }

        @Override void rows(float[] x, int xo, int[] off, int taps, float[] w, int wo, float[] bias, int bo,
                            float[] out, int oo, int os, int width) {
            for (int j = 0; j < width; j += 2 * L) {
                FloatVector a0 = FloatVector.broadcast(F, bias[bo]), b0 = FloatVector.broadcast(F, bias[bo + 1]);
                FloatVector c0 = FloatVector.broadcast(F, bias[bo + 2]), d0 = FloatVector.broadcast(F, bias[bo + 3]);
                FloatVector a1 = a0, b1 = b0, c1 = c0, d1 = d0;
                int r = xo + j;
                for (int t = 0, q = wo; t < taps; t++, q += OB) {
                    int at = r + off[t];
                    FloatVector x0 = FloatVector.fromArray(F, x, at), x1 = FloatVector.fromArray(F, x, at + L);
                    FloatVector v = FloatVector.broadcast(F, w[q]);
                    a0 = x0.fma(v, a0);
                    a1 = x1.fma(v, a1);
                    v = FloatVector.broadcast(F, w[q + 1]);
                    b0 = x0.fma(v, b0);
                    b1 = x1.fma(v, b1);
                    v = FloatVector.broadcast(F, w[q + 2]);
                    c0 = x0.fma(v, c0);
                    c1 = x1.fma(v, c1);
                    v = FloatVector.broadcast(F, w[q + 3]);
                    d0 = x0.fma(v, d0);
                    d1 = x1.fma(v, d1);
                }
                int o = oo + j;
                a0.intoArray(out, o);
                a1.intoArray(out, o + L);
                b0.intoArray(out, o + os);
                b1.intoArray(out, o + os + L);
                c0.intoArray(out, o + 2 * os);
                c1.intoArray(out, o + 2 * os + L);
                d0.intoArray(out, o + 3 * os);
                d1.intoArray(out, o + 3 * os + L);
            }
        }
    }

    /**
     * 4-lane tiles (128-bit vectors): Rows8 with the other species, a copy on purpose: C2 vectorises only for a species
     * that is a constant of the class, so each width is its own class.
     */
    static final class Rows4 extends Rows {
        private static final VectorSpecies<Float> F = FloatVector.SPECIES_128;
        private static final int L = 4;

        @Override int cols() { return 2 * L; }

        @Override void rows(float[] x, int xo, int[] off, int taps, float[] w, int wo, float[] bias, int bo,
                            float[] out, int oo, int os, int width) {
            for (int j = 0; j < width; j += 2 * L) {
                FloatVector a0 = FloatVector.broadcast(F, bias[bo]), b0 = FloatVector.broadcast(F, bias[bo + 1]);
                FloatVector c0 = FloatVector.broadcast(F, bias[bo + 2]), d0 = FloatVector.broadcast(F, bias[bo + 3]);
                FloatVector a1 = a0, b1 = b0, c1 = c0, d1 = d0;
                int r = xo + j;
                for (int t = 0, q = wo; t < taps; t++, q += OB) {
                    int at = r + off[t];
                    FloatVector x0 = FloatVector.fromArray(F, x, at), x1 = FloatVector.fromArray(F, x, at + L);
                    FloatVector v = FloatVector.broadcast(F, w[q]);
                    a0 = x0.fma(v, a0);
                    a1 = x1.fma(v, a1);
                    v = FloatVector.broadcast(F, w[q + 1]);
                    b0 = x0.fma(v, b0);
                    b1 = x1.fma(v, b1);
                    v = FloatVector.broadcast(F, w[q + 2]);
                    c0 = x0.fma(v, c0);
                    c1 = x1.fma(v, c1);
                    v = FloatVector.broadcast(F, w[q + 3]);
                    d0 = x0.fma(v, d0);
                    d1 = x1.fma(v, d1);
                }
                int o = oo + j;
                a0.intoArray(out, o);
                a1.intoArray(out, o + L);
                b0.intoArray(out, o + os);
                b1.intoArray(out, o + os + L);
                c0.intoArray(out, o + 2 * os);
                c1.intoArray(out, o + 2 * os + L);
                d0.intoArray(out, o + 3 * os);
                d1.intoArray(out, o + 3 * os + L);
            }
        }
    }

    /** Per-thread buffers: the padded image, the padded weights and one tile row of output. */
    private static final class Buffers {
        float[] x = new float[0], row = new float[0];
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    /**
     * y (n, o, oh, ow) = conv(x, w) + bias for x (n, cin, h, w) contiguous from xOff, w (o, cin, kh, kw) contiguous
     * from wOff, bias (o) from bOff or null; stride 1, dilation 1, padding (ph, pw). Images are spread over threads.
     */
    static void forward(Rows k, float[] x, int xOff, int n, int cin, int h, int w, float[] wt, int wOff, int o, int kh,
                        int kw, int ph, int pw, float[] bias, int bOff, float[] y) {
        int oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1, taps = cin * kh * kw;
        int cols = k.cols(), owPad = Sgemm.roundUp(ow, cols);
        // padded input row: left padding, the row, then zeros out to every column a tile can read
        int rs = owPad + kw - 1, hp = h + 2 * ph, plane = hp * rs;
        // weights padded to whole tiles of OB channels (zeros), so the kernel never looks at o
        int oPad = Sgemm.roundUp(o, OB);
        // weights as [channel block][tap][4 channels], zero beyond o; tap t = (ic, ki, kj) reads x at off[t]
        float[] wp = new float[oPad * taps], bp = new float[oPad];
        for (int oc = 0; oc < o; oc++) {
            for (int t = 0; t < taps; t++) wp[(oc / OB * taps + t) * OB + oc % OB] = wt[wOff + oc * taps + t];
        }
        int[] off = new int[taps];
        for (int ic = 0, t = 0; ic < cin; ic++) {
            for (int ki = 0; ki < kh; ki++) {
                for (int kj = 0; kj < kw; kj++) off[t++] = ic * plane + ki * rs + kj;
            }
        }
        if (bias != null) System.arraycopy(bias, bOff, bp, 0, o);
        boolean inPlace = owPad == ow; // whole tiles: the kernel writes y itself
        Parallel.balanced(n, (lo, hi) -> {
            Buffers b = BUFFERS.get();
            if (b.x.length < cin * plane) b.x = new float[cin * plane];
            if (b.row.length < OB * owPad) b.row = new float[OB * owPad];
            float[] xp = b.x, row = b.row;
            java.util.Arrays.fill(xp, 0, cin * plane, 0f); // the borders; the inside is overwritten per image
            for (int img = lo; img < hi; img++) {
                for (int ic = 0; ic < cin; ic++) {
                    for (int iy = 0; iy < h; iy++) {
                        System.arraycopy(x, xOff + ((img * cin + ic) * h + iy) * w, xp, ic * plane + (iy + ph) * rs + pw, w);
                    }
                }
                int yImg = img * o * oh * ow;
                for (int oc0 = 0; oc0 < o; oc0 += OB) {
                    int nb = Math.min(OB, o - oc0);
                    for (int oy = 0; oy < oh; oy++) {
                        int yRow = yImg + (oc0 * oh + oy) * ow;
                        if (inPlace && nb == OB) {
                            k.rows(xp, oy * rs, off, taps, wp, oc0 * taps, bp, oc0, y, yRow, oh * ow, ow);
                            continue;
                        }
                        k.rows(xp, oy * rs, off, taps, wp, oc0 * taps, bp, oc0, row, 0, owPad, ow);
                        for (int bch = 0; bch < nb; bch++) System.arraycopy(row, bch * owPad, y, yRow + bch * oh * ow, ow);
                    }
                }
            }
        });
    }
}
