package dev.kiln.cpu;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The direct first-layer convolution in both tile widths (8 and 4 lanes, whatever this machine prefers) against
 * the definition in double, on fresh random inputs: odd output widths (tail tiles), channel counts that are not a
 * multiple of the 4-channel tile, padding, with and without bias.
 */
class DirectConvTest {
    @ParameterizedTest(name = "{0}-lane n{1} c{2} {3}x{4} o{5} k{6}x{7} p{8},{9}")
    @CsvSource({
            "8, 2, 1, 28, 28, 32, 3, 3, 0, 0", "4, 2, 1, 28, 28, 32, 3, 3, 0, 0",
            "8, 3, 3, 17, 19, 6, 3, 3, 1, 1", "4, 3, 3, 17, 19, 6, 3, 3, 1, 1",
            "8, 1, 2, 9, 40, 5, 5, 3, 2, 1", "4, 1, 2, 9, 40, 5, 5, 3, 2, 1",
            "8, 2, 3, 16, 16, 8, 3, 3, 1, 1", "4, 1, 1, 5, 5, 3, 1, 1, 0, 0"})
    void matchesTheDefinition(int lanes, int n, int c, int h, int w, int o, int kh, int kw, int ph, int pw) {
        DirectConv.Rows rows = lanes == 8 ? new DirectConv.Rows8() : new DirectConv.Rows4();
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        int oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1, xOff = r.nextInt(4), wOff = r.nextInt(4), bOff = r.nextInt(4);
        float[] x = gaussian(r, xOff + n * c * h * w), wt = gaussian(r, wOff + o * c * kh * kw), bias = gaussian(r, bOff + o);
        boolean withBias = r.nextBoolean();
        float[] y = new float[n * o * oh * ow];
        DirectConv.forward(rows, x, xOff, n, c, h, w, wt, wOff, o, kh, kw, ph, pw, withBias ? bias : null, bOff, y);
        for (int img = 0; img < n; img++)
            for (int oc = 0; oc < o; oc++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double s = withBias ? bias[bOff + oc] : 0, t = Math.abs(s);
                        for (int ic = 0; ic < c; ic++)
                            for (int ki = 0; ki < kh; ki++)
                                for (int kj = 0; kj < kw; kj++) {
                                    int iy = oy - ph + ki, ix = ox - pw + kj;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    double v = (double) x[xOff + ((img * c + ic) * h + iy) * w + ix] * wt[wOff + ((oc * c + ic) * kh + ki) * kw + kj];
                                    s += v;
                                    t += Math.abs(v);
                                }
                        assertEquals(s, y[((img * o + oc) * oh + oy) * ow + ox], 1e-5 * Math.sqrt(c * kh * kw) * t + 1e-30,
                                "y[" + img + "][" + oc + "][" + oy + "][" + ox + "]");
                    }
    }

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }
}
