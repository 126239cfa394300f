package dev.kiln.cpu;

import dev.kiln.backend.Conv2dParams;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static dev.kiln.cpu.Conv3x3Kernel.Taps.STRIDE_1;
import static dev.kiln.cpu.Conv3x3Kernel.Taps.STRIDE_2;

/**
 * The 3x3 convolution without im2col ({@link Conv3x3}), stride 1 and 2, with each machine-code kernel this processor runs
 * (AVX2's 6 x 16 tiles and, where there is AVX-512, the 8 x 32 ones), against direct loops in double: forward with
 * and without bias (and with a residual and ReLU, bit for bit the separate passes), the input gradient written and
 * added, and the weight gradient (output channel counts that leave
 * a partial block of 8 or 32 too). Output channel counts that leave a partial block of
 * rows, images narrower than a tile, pads 0 to 2. Tolerance as ConvolutionCpuTest's: 1e-5 · sqrt(terms) times the
 * sum of the |products| that make an element. Batches of fewer images than threads take the split-image path.
 */
class Conv3x3Test {
    private static List<Conv3x3Kernel> kernels() {
        List<Conv3x3Kernel> ks = new ArrayList<>();
        for (int bits : new int[]{256, 512}) {
            Conv3x3Kernel k = Conv3x3Kernel.forBits(bits);
            if (k != null) ks.add(k);
        }
        return ks;
    }

    /** One term of a convolution: output yi takes input xi times weight wi (indices into contiguous (n, o, oh, ow), (n, c, h, w), (o, c, k, k)). */
    private interface Term {
        void at(int yi, int xi, int wi);
    }

    /** Every term of a k x k convolution at stride s with pads ph and pw, the direct definition (taps on the padding skipped). */
    private static void forEachTerm(int n, int c, int h, int w, int o, int k, int s, int ph, int pw, Term f) {
        int oh = (h + 2 * ph - k) / s + 1, ow = (w + 2 * pw - k) / s + 1;
        for (int img = 0; img < n; img++)
            for (int oc = 0; oc < o; oc++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                        for (int ch = 0; ch < c; ch++)
                            for (int ki = 0; ki < k; ki++)
                                for (int kj = 0; kj < k; kj++) {
                                    int iy = oy * s + ki - ph, ix = ox * s + kj - pw;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    f.at(((img * o + oc) * oh + oy) * ow + ox, ((img * c + ch) * h + iy) * w + ix, ((oc * c + ch) * k + ki) * k + kj);
                                }
    }

    private static float[] random(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextDouble() * 2 - 1);
        return a;
    }

    @ParameterizedTest(name = "n{0} c{1} {2}x{3} o{4} pad {5},{6} stride {7}")
    @CsvSource({
            "3, 8, 7, 7, 8, 1, 1, 1",       // one block of rows (AVX-512), a 7x7 map: 63 padded positions, 2 tiles of 32
            "2, 9, 6, 11, 13, 0, 1, 1",     // partial row blocks (13 = 8 + 5, 6 + 6 + 1), no vertical padding
            "2, 16, 3, 3, 20, 2, 2, 1",     // the widest padding: outputs 5x5; input gradient from a gy padded by 0
            "4, 12, 14, 14, 24, 1, 1, 1",   // several tiles a row of positions
            "3, 8, 5, 6, 40, 1, 1, 1",      // the weight gradient's blocks of 32 (AVX-512) and 8 output channels: 32 + 8
            "1, 8, 1, 3, 7, 1, 0, 1",       // a single input row: one output row of 1 column
            "1, 20, 13, 17, 37, 1, 1, 1",   // one image (fewer than threads): its tiles, blocks and channels split over them
            "3, 8, 8, 8, 8, 1, 1, 2",       // stride 2, even sides: 4x4 outputs, every input row and column reached
            "2, 10, 7, 9, 13, 1, 1, 2",     // stride 2, odd sides: the last output row and column see the zero past the edge
            "4, 16, 14, 14, 40, 1, 1, 2",   // stride 2 over several tiles, 32 + 8 output channels
            "1, 12, 11, 6, 9, 1, 1, 2",     // stride 2, one image over all threads (its four input-gradient parts too)
            "2, 8, 1, 2, 8, 1, 1, 2",       // stride 2, one input row: one output row
            "2, 8, 3, 71, 9, 1, 1, 2",      // stride 2, rows longer than two vectors: split and interleaved a vector at a time
            "1, 8, 2, 40, 8, 1, 1, 2",      // the same, an even row: its last step overlaps the one before
            "2, 11, 6, 6, 11, 1, 1, 1"      // 11 channels both ways: at 256 bits two blocks of 6, at 512 one of 8 and one of 4
    })
    void matchesDirectLoops(int n, int c, int h, int w, int o, int ph, int pw, int s) {
        List<Conv3x3Kernel> ks = kernels();
        assumeTrue(!ks.isEmpty(), "no machine-code 3x3 kernel runs on this processor");
        SplittableRandom r = new SplittableRandom(7 + n * 31 + c);
        int oh = (h + 2 * ph - 3) / s + 1, ow = (w + 2 * pw - 3) / s + 1;
        float[] x = random(r, 3 + n * c * h * w), wt = random(r, 1 + o * c * 9), bias = random(r, 2 + o);
        float[] gy = random(r, 5 + n * o * oh * ow), addend = random(r, n * c * h * w);
        // reference: y[img][oc][oy][ox] = bias + sum x[img][ch][oy+ki-ph][ox+kj-pw] w[oc][ch][ki][kj]; gx its adjoint
        double[] y = new double[n * o * oh * ow], yScale = new double[y.length], gx = new double[n * c * h * w], gxScale = new double[gx.length];
        double[] gw = new double[o * c * 9], gwScale = new double[gw.length];
        for (int i = 0; i < y.length; i++) {
            double b = bias[2 + i / (oh * ow) % o];
            y[i] = b;
            yScale[i] = Math.abs(b);
        }
        forEachTerm(n, c, h, w, o, 3, s, ph, pw, (yi, xi, wi) -> {
            double wv = wt[1 + wi];
            y[yi] += x[3 + xi] * wv;
            yScale[yi] += Math.abs(x[3 + xi] * wv);
            gx[xi] += gy[5 + yi] * wv;
            gxScale[xi] += Math.abs(gy[5 + yi] * wv);
            gw[wi] += (double) gy[5 + yi] * x[3 + xi];
            gwScale[wi] += Math.abs((double) gy[5 + yi] * x[3 + xi]);
        });
        for (Conv3x3Kernel k : ks) {
            String what = k + " ";
            float[] out = new float[y.length];
            java.util.Arrays.fill(out, Float.NaN);   // every element must be written
            Conv3x3.forward(k, x, 3, n, c, h, w, wt, 1, o, 3, s, ph, pw, new Conv3x3.Epilogue(bias, 2, null, 0, false), out);
            assertClose(what + "forward", y, yScale, 9 * c, out, 0);
            // the whole epilogue: + bias + residual, then ReLU (exactly the separate passes' values: compared bit for bit)
            float[] residual = random(r, 6 + y.length), fused = new float[y.length], plain = out.clone();
            Conv3x3.forward(k, x, 3, n, c, h, w, wt, 1, o, 3, s, ph, pw, new Conv3x3.Epilogue(bias, 2, residual, 6, true), fused);
            for (int i = 0; i < y.length; i++) {
                float v = plain[i] + residual[6 + i];
                assertEquals(Float.floatToIntBits(v <= 0 ? 0f : v), Float.floatToIntBits(fused[i]), what + "residual and ReLU, element " + i);
            }
            Conv3x3.forward(k, x, 3, n, c, h, w, wt, 1, o, 3, s, ph, pw, Conv3x3.Epilogue.NONE, out);
            double[] noBias = y.clone(), noBiasScale = yScale.clone();
            for (int i = 0; i < y.length; i++) {
                double b = bias[2 + i / (oh * ow) % o];
                noBias[i] -= b;
                noBiasScale[i] += Math.abs(b);
            }
            assertClose(what + "forward without bias", noBias, noBiasScale, 9 * c, out, 0);
            float[] g = new float[gx.length + 4];
            java.util.Arrays.fill(g, Float.NaN);
            Conv3x3.backwardInput(k, gy, 5, n, o, wt, 1, c, h, w, s, ph, pw, g, 4, false);
            assertClose(what + "input gradient", gx, gxScale, 9 * o, g, 4);
            float[] sum = new float[gx.length + 4];
            System.arraycopy(addend, 0, sum, 4, addend.length);
            Conv3x3.backwardInput(k, gy, 5, n, o, wt, 1, c, h, w, s, ph, pw, sum, 4, true);
            double[] plus = gx.clone(), plusScale = gxScale.clone();
            for (int i = 0; i < plus.length; i++) {
                plus[i] += addend[i];
                plusScale[i] += Math.abs(addend[i]);
            }
            assertClose(what + "input gradient added", plus, plusScale, 9 * o, sum, 4);
            float[] wg = new float[gw.length];
            java.util.Arrays.fill(wg, Float.NaN);
            Conv3x3.backwardWeight(k, x, 3, n, c, h, w, gy, 5, o, s, ph, pw, wg);
            assertClose(what + "weight gradient", gw, gwScale, n * oh * ow, wg, 0);
        }
    }

    /**
     * The other stride-2 forwards over phase planes: a ResNet stem's 7x7 with pad 3 (49 taps over the four planes,
     * three rows on through a register of its own) and a shortcut's 1x1 with pad 0 (plane P00 alone), against direct
     * loops in double, with bias, and with a {@link WeightCache} bound: its first call packs and keeps, its second reads
     * the kept copy, both the uncached bits; other weights in the same cache are packed anew; clear drops them.
     */
    @ParameterizedTest(name = "{0}x{0} n{1} c{2} {3}x{4} o{5}")
    @CsvSource({
            "7, 1, 3, 32, 32, 16",    // one image over all threads, RGB, rows of 16 outputs + 3
            "7, 2, 3, 15, 9, 13",     // odd sides: the last output row and column see the zero past the edge; partial blocks
            "7, 3, 1, 7, 40, 8",      // one channel; rows longer than two vectors when split
            "7, 1, 2, 1, 1, 9",       // one pixel: one output, its 49 taps all but one on padding
            "1, 1, 16, 14, 14, 24",   // a shortcut, one image over all threads
            "1, 3, 8, 7, 9, 40"       // odd sides: the last row and column are read, the ones past them not
    })
    void otherStride2ForwardsMatchDirectLoops(int k, int n, int c, int h, int w, int o) {
        List<Conv3x3Kernel> ks = kernels();
        assumeTrue(!ks.isEmpty(), "no machine-code 3x3 kernel runs on this processor");
        SplittableRandom r = new SplittableRandom(11 + n * 31 + c);
        int s = 2, p = (k - 1) / 2, oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
        float[] x = random(r, 3 + n * c * h * w), wt = random(r, 1 + o * c * k * k), bias = random(r, 2 + o);
        double[] y = new double[n * o * oh * ow], yScale = new double[y.length];
        for (int i = 0; i < y.length; i++) {
            double b = bias[2 + i / (oh * ow) % o];
            y[i] = b;
            yScale[i] = Math.abs(b);
        }
        forEachTerm(n, c, h, w, o, k, s, p, p, (yi, xi, wi) -> {
            double v = x[3 + xi] * (double) wt[1 + wi];
            y[yi] += v;
            yScale[yi] += Math.abs(v);
        });
        for (Conv3x3Kernel kernel : ks) {
            float[] out = new float[y.length];
            java.util.Arrays.fill(out, Float.NaN);   // every element must be written
            Conv3x3.Epilogue e = new Conv3x3.Epilogue(bias, 2, null, 0, false);
            Conv3x3.forward(kernel, x, 3, n, c, h, w, wt, 1, o, k, s, p, p, e, out);
            assertClose(kernel + " forward", y, yScale, k * k * c, out, 0);
            WeightCache cache = new WeightCache();
            for (int call = 0; call < 2; call++) {
                float[] cached = new float[y.length];
                cache.around(() -> {
                    Conv3x3.forward(kernel, x, 3, n, c, h, w, wt, 1, o, k, s, p, p, e, cached);
                    return null;
                });
                assertArrayEquals(out, cached, kernel + " the cache's call " + call);
                assertEquals(1, cache.size(), "one weight packed once");
            }
            float[] other = wt.clone(), fromOther = new float[y.length], plainOther = new float[y.length];
            other[1] += 1;
            cache.around(() -> {
                Conv3x3.forward(kernel, x, 3, n, c, h, w, other, 1, o, k, s, p, p, e, fromOther);
                return null;
            });
            Conv3x3.forward(kernel, x, 3, n, c, h, w, other, 1, o, k, s, p, p, e, plainOther);
            assertArrayEquals(plainOther, fromOther, kernel + " another weight array in the same cache");
            assertEquals(2, cache.size());
            cache.clear();
            assertEquals(0, cache.size(), "cleared");
        }
    }

    /**
     * A weight array copied anew for every call (a channels-last filter is) must not pile packings up in a cache: once
     * the copies are unreachable their packings go (the arrays are held weakly), while a held weight's stays.
     */
    @org.junit.jupiter.api.Test
    void packingsOfDroppedWeightsGoWithThem() throws InterruptedException {
        Conv3x3Kernel kernel = Conv3x3.KERNEL;
        assumeTrue(kernel != null, "no machine-code 3x3 kernel runs on this processor");
        SplittableRandom r = new SplittableRandom(3);
        int n = 1, c = 8, h = 6, o = 8;
        float[] x = random(r, n * c * h * h), held = random(r, o * c * 9), y = new float[n * o * h * h];
        WeightCache cache = new WeightCache();
        cache.around(() -> {
            Conv3x3.forward(kernel, x, 0, n, c, h, h, held, 0, o, 3, 1, 1, 1, Conv3x3.Epilogue.NONE, y);
            for (int call = 0; call < 5; call++) Conv3x3.forward(kernel, x, 0, n, c, h, h, held.clone(), 0, o, 3, 1, 1, 1, Conv3x3.Epilogue.NONE, y);
            return null;
        });
        for (int i = 0; i < 100 && cache.size() > 1; i++) {   // the collector clears weak references when it runs
            System.gc();
            Thread.sleep(10);
        }
        assertEquals(1, cache.size(), "only the held weight's packing is left");
    }

    /**
     * The weight-gradient kernel alone, on positions whose output-gradient rows are all nonzero (through a convolution
     * the last position of a padded row is a dropped one, so an odd count's last step multiplies zeros there): even
     * and odd counts (at 256 bits the code takes two positions a step, then the odd one), stride 1 and 2 taps, against
     * the kernel's formula in double; acc's rows are added to.
     */
    @ParameterizedTest(name = "positions {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 2, 15, 16})
    void weightKernelSumsEveryPosition(int positions) {
        SplittableRandom r = new SplittableRandom(11 + positions);
        for (Conv3x3Kernel k : kernels()) {
            for (Conv3x3Kernel.Taps taps : new Conv3x3Kernel.Taps[]{STRIDE_1, STRIDE_2}) {
                int channels = 3, rowLen = 6, phase = 40, plane = 4 * phase, ld = 2 * k.nw, nw = k.nw, n = taps.count();
                float[] x = random(r, (channels - 1) * plane + (int) taps.reach(rowLen, phase) - 1 + positions);
                float[] gyT = random(r, positions * nw), acc = random(r, (n * channels - 1) * ld + nw), want = acc.clone();
                k.weights(taps, x, 0, channels, rowLen, plane, phase, gyT, 0, ld, positions, acc, 0);
                for (int ch = 0; ch < channels; ch++)
                    for (int t = 0; t < n; t++)
                        for (int j = 0; j < nw; j++) {
                            double sum = want[(n * ch + t) * ld + j], scale = Math.abs(sum);
                            for (int q = 0; q < positions; q++) {
                                double term = (double) x[ch * plane + q + taps.rows[t] * rowLen + taps.phases[t] * phase + taps.cols[t]] * gyT[q * nw + j];
                                sum += term;
                                scale += Math.abs(term);
                            }
                            assertEquals(sum, acc[(n * ch + t) * ld + j], 1e-5 * scale, k + " channel " + ch + " tap " + t + " column " + j);
                        }
            }
        }
    }

    /**
     * Output channels are cut into tiles of MR rows and 4-row ones for what is left: every block one of the two, all
     * channels covered with at most three rows of zeros, and the 256-bit kernel's 32 channels as 6 + 6 + 6 + 6 + 4 + 4.
     */
    @org.junit.jupiter.api.Test
    void blocksOfOutputChannels() {
        for (Conv3x3Kernel k : kernels()) {
            for (int outs = 1; outs <= 70; outs++) {
                int[] h = k.blocks(outs);
                int sum = 0;
                for (int b : h) {
                    assertTrue(b == k.mr || b == Conv3x3Kernel.SHORT, k + ": a block of " + b);
                    sum += b;
                }
                assertTrue(sum >= outs && sum - outs <= 3, k + ": " + outs + " channels in " + java.util.Arrays.toString(h));
            }
        }
        Conv3x3Kernel avx2 = Conv3x3Kernel.forBits(256);
        assumeTrue(avx2 != null, "no 256-bit machine code here");
        assertArrayEquals(new int[]{6, 6, 6, 6, 4, 4}, avx2.blocks(32));
        assertArrayEquals(new int[]{4, 4}, avx2.blocks(8));
        assertArrayEquals(new int[]{6, 6}, avx2.blocks(11));
        assertArrayEquals(new int[]{6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 4}, avx2.blocks(64));
    }

    /** The machine code reads and writes unchecked: a call whose arrays end one float early is refused before it runs. */
    @org.junit.jupiter.api.Test
    void refusesOnePastTheEnd() {
        for (Conv3x3Kernel k : kernels()) {
            int channels = 2, rowLen = 5, plane = 25, tiles = 2, ldc = tiles * k.nr;
            float[] a = new float[9 * channels * k.mr], c = new float[(k.mr - 1) * ldc + tiles * k.nr];
            float[] x = new float[(channels - 1) * plane + 2 * rowLen + 2 + tiles * k.nr];
            k.row(STRIDE_1, k.mr, a, 0, channels, x, 0, rowLen, plane, 0, c, 0, ldc, tiles);   // exactly long enough
            assertThrows(IndexOutOfBoundsException.class, () -> k.row(STRIDE_1, k.mr, a, 0, channels, java.util.Arrays.copyOf(x, x.length - 1), 0, rowLen, plane, 0, c, 0, ldc, tiles));
            assertThrows(IndexOutOfBoundsException.class, () -> k.row(STRIDE_1, k.mr, a, 1, channels, x, 0, rowLen, plane, 0, c, 0, ldc, tiles));
            assertThrows(IndexOutOfBoundsException.class, () -> k.row(STRIDE_1, k.mr, a, 0, channels, x, 0, rowLen, plane, 0, c, 1, ldc, tiles));
            int positions = 15, ld = k.nw;
            float[] gyT = new float[(positions - 1) * ld + k.nw], acc = new float[(9 * channels - 1) * ld + k.nw];
            float[] xw = new float[(channels - 1) * plane + 2 * rowLen + 2 + positions];
            k.weights(STRIDE_1, xw, 0, channels, rowLen, plane, 0, gyT, 0, ld, positions, acc, 0);
            assertThrows(IndexOutOfBoundsException.class, () -> k.weights(STRIDE_1, xw, 1, channels, rowLen, plane, 0, gyT, 0, ld, positions, acc, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> k.weights(STRIDE_1, xw, 0, channels, rowLen, plane, 0, gyT, 1, ld, positions, acc, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> k.weights(STRIDE_1, xw, 0, channels, rowLen, plane, 0, gyT, 0, ld, positions, acc, 1));
            // stride 2: the farthest tap is three phase planes on (phase 30 here), and no code makes 4-tap weight gradients
            int phase = 30;
            float[] xs = new float[(channels - 1) * plane + 3 * phase + 1 + tiles * k.nr - 1];
            k.row(STRIDE_2, k.mr, a, 0, channels, xs, 0, rowLen, plane, phase, c, 0, ldc, tiles);
            assertThrows(IndexOutOfBoundsException.class, () -> k.row(STRIDE_2, k.mr, a, 0, channels, java.util.Arrays.copyOf(xs, xs.length - 1), 0, rowLen, plane, phase, c, 0, ldc, tiles));
            // the stem's farthest tap here, (5, 5): three phase planes and two rows on, two floats
            float[] a7 = new float[49 * channels * k.mr], x7 = new float[(channels - 1) * plane + 3 * phase + 2 * rowLen + 2 + tiles * k.nr];
            k.row(Conv3x3Kernel.Taps.STRIDE_2_7X7, k.mr, a7, 0, channels, x7, 0, rowLen, plane, phase, c, 0, ldc, tiles);
            assertThrows(IndexOutOfBoundsException.class, () -> k.row(Conv3x3Kernel.Taps.STRIDE_2_7X7, k.mr, a7, 0, channels,
                    java.util.Arrays.copyOf(x7, x7.length - 1), 0, rowLen, plane, phase, c, 0, ldc, tiles));
            assertThrows(IllegalArgumentException.class, () -> k.weights(Conv3x3Kernel.Taps.STRIDE_2_INPUT[3], xw, 0, channels, rowLen, plane, 0, gyT, 0, ld, positions, acc, 0));
            assertThrows(IllegalArgumentException.class, () -> k.row(STRIDE_1, k.mr, a, 0, 0, x, 0, rowLen, plane, 0, c, 0, ldc, tiles));
        }
    }

    @org.junit.jupiter.api.Test
    void takesOnlyWhatItComputes() {
        Conv2dParams same = Conv2dParams.of(1, 1, 1, 1);
        boolean any = Conv3x3.KERNEL != null;
        assertEquals(any, Conv3x3.applies(16, 3, 3, same));
        assertEquals(any, Conv3x3.applies(16, 3, 3, Conv2dParams.of(2, 1, 1, 1)), "stride 2, pad 1");
        assertFalse(Conv3x3.applies(16, 3, 3, Conv2dParams.of(2, 0, 1, 1)), "stride 2, pad 0");
        assertFalse(Conv3x3.applies(16, 3, 3, Conv2dParams.of(3, 1, 1, 1)), "stride 3");
        assertFalse(Conv3x3.applies(16, 3, 3, Conv2dParams.of(1, 2, 2, 1)), "dilation 2");
        assertFalse(Conv3x3.applies(16, 3, 3, Conv2dParams.of(1, 1, 1, 2)), "groups");
        assertFalse(Conv3x3.applies(16, 3, 3, Conv2dParams.of(1, 3, 1, 1)), "pad 3");
        assertFalse(Conv3x3.applies(16, 5, 5, same), "5x5");
        assertFalse(Conv3x3.applies(Conv3x3.MIN_CHANNELS - 1, 3, 3, same), "few channels");
        Conv2dParams stem = Conv2dParams.of(2, 3, 1, 1);
        assertEquals(any, Conv3x3.appliesForward(3, 7, 7, stem), "a stem's forward, three channels");
        assertFalse(Conv3x3.applies(3, 7, 7, stem), "a stem's gradients take im2col");
        assertFalse(Conv3x3.appliesForward(3, 7, 7, Conv2dParams.of(1, 3, 1, 1)), "7x7 at stride 1");
        assertFalse(Conv3x3.appliesForward(3, 7, 7, Conv2dParams.of(2, 2, 1, 1)), "7x7 with pad 2");
        assertFalse(Conv3x3.appliesForward(3, 7, 7, Conv2dParams.of(2, 3, 1, 3)), "7x7 in groups");
        Conv2dParams shortcut = Conv2dParams.of(2, 0, 1, 1);
        assertEquals(any, Conv3x3.appliesForward(16, 1, 1, shortcut), "a shortcut's forward");
        assertFalse(Conv3x3.applies(16, 1, 1, shortcut), "a shortcut's gradients take im2col");
        assertFalse(Conv3x3.appliesForward(Conv3x3.MIN_CHANNELS - 1, 1, 1, shortcut), "a 1x1 of few channels");
        assertFalse(Conv3x3.appliesForward(16, 1, 1, Conv2dParams.of(1, 0, 1, 1)), "1x1 at stride 1 (a product already)");
    }

    private static void assertClose(String what, double[] ref, double[] scale, int terms, float[] got, int at) {
        double tol = 1e-5 * Math.sqrt(terms);
        for (int i = 0; i < ref.length; i++) {
            double err = Math.abs(got[at + i] - ref[i]);
            if (!(err <= tol * scale[i] + 1e-30)) fail(what + " element " + i + ": got " + got[at + i] + ", expected " + ref[i]);
        }
    }
}
