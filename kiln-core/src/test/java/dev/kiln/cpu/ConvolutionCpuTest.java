package dev.kiln.cpu;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The float32 convolution path (im2col + packed GEMM) against naive direct loops in double. Tolerance: an element may
 * differ by 1e-5 * sqrt(terms) times the sum of |products| that make it (float32 rounding; an indexing mistake is
 * off by a whole term).
 */
class ConvolutionCpuTest {
    private final Generator gen = new Generator(11);

    /** n, c, h, w, o, kh, kw, stride, pad, dilation, groups */
    private record Case(int n, int c, int h, int w, int o, int kh, int kw, Conv2dParams p) {
        int oh() { return p.outH(h, kh); }

        int ow() { return p.outW(w, kw); }

        int cg() { return c / p.groups(); }

        int og() { return o / p.groups(); }
    }

    private static Case parse(int n, int c, int h, int w, int o, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int g) {
        return new Case(n, c, h, w, o, kh, kw, new Conv2dParams(sh, sw, ph, pw, dh, dw, g));
    }

    /**
     * Calls f(img, oc, oy, ox, ic, iy, ix, ki, kj) for every (output, input, weight) triple the convolution multiplies,
     * the direct definition every reference below is built from.
     */
    private interface Term {
        void at(int img, int oc, int oy, int ox, int ic, int iy, int ix, int ki, int kj);
    }

    private static void forEachTerm(Case k, Term f) {
        Conv2dParams p = k.p;
        for (int img = 0; img < k.n; img++)
            for (int oc = 0; oc < k.o; oc++)
                for (int oy = 0; oy < k.oh(); oy++)
                    for (int ox = 0; ox < k.ow(); ox++)
                        for (int cc = 0; cc < k.cg(); cc++)
                            for (int ki = 0; ki < k.kh; ki++)
                                for (int kj = 0; kj < k.kw; kj++) {
                                    int iy = oy * p.strideH() - p.padH() + ki * p.dilationH();
                                    int ix = ox * p.strideW() - p.padW() + kj * p.dilationW();
                                    if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                                    f.at(img, oc, oy, ox, oc / k.og() * k.cg() + cc, iy, ix, ki, kj);
                                }
    }

    private static void assertClose(String what, double[] ref, double[] scale, int terms, float[] got) {
        assertEquals(ref.length, got.length, what + ": size");
        double tol = 1e-5 * Math.sqrt(Math.max(terms, 1));
        for (int i = 0; i < got.length; i++) {
            double err = Math.abs(got[i] - ref[i]);
            if (err > tol * scale[i] + 1e-30) fail(what + " element " + i + ": got " + got[i] + ", expected " + ref[i]);
        }
    }

    @ParameterizedTest(name = "n{0} c{1} {2}x{3} o{4} k{5}x{6} s{7},{8} p{9},{10} d{11},{12} g{13}")
    @CsvSource({
            "2, 1, 28, 28, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1",   // MNIST conv1 shape, smaller
            "3, 5, 9, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1",    // CIFAR style pad 1, odd channels
            "2, 4, 10, 9, 6, 3, 2, 2, 3, 1, 0, 1, 2, 2",    // stride, asymmetric kernel, dilation, groups
            "1, 6, 7, 8, 6, 3, 3, 2, 2, 2, 2, 2, 2, 3",     // big padding with dilation, 3 groups
            "2, 8, 5, 5, 12, 1, 1, 1, 1, 0, 0, 1, 1, 2",    // pointwise, grouped
            "3, 3, 6, 6, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1",     // 1x1 with stride (not the pointwise shortcut)
            "1, 2, 4, 4, 3, 5, 5, 1, 1, 2, 2, 1, 1, 1",     // kernel larger than the unpadded input
            "5, 16, 12, 12, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1", // enough rows and columns for several GEMM tiles
            "1, 16, 20, 20, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1"  // one image: the GEMM itself is split over threads
    })
    void conv2dForwardAndBackwardMatchDirectLoops(int n, int c, int h, int w, int o, int kh, int kw,
                                                  int sh, int sw, int ph, int pw, int dh, int dw, int g) {
        Case k = parse(n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, g);
        int[] xs = {n, c, h, w}, ws = {o, c / g, kh, kw}, ys = {n, o, k.oh(), k.ow()};
        // a non-contiguous input view: stored as (n, h, c, w), permuted back
        Tensor x = Tensor.randn(gen, n, h, c, w).permute(0, 2, 1, 3);
        Tensor wt = Tensor.randn(gen, ws), bias = Tensor.randn(gen, o), gy = Tensor.randn(gen, ys);
        float[] xv = x.toFloatArray(), wv = wt.toFloatArray(), bv = bias.toFloatArray(), gv = gy.toFloatArray();

        double[] y = new double[n * o * k.oh() * k.ow()], ys1 = new double[y.length];
        double[] gx = new double[n * c * h * w], gxs = new double[gx.length];
        double[] gw = new double[wv.length], gws = new double[gw.length];
        forEachTerm(k, (img, oc, oy, ox, ic, iy, ix, ki, kj) -> {
            int yi = ((img * o + oc) * k.oh() + oy) * k.ow() + ox, xi = ((img * c + ic) * h + iy) * w + ix;
            int wi = ((oc * k.cg() + ic % k.cg()) * kh + ki) * kw + kj;
            double fwd = (double) xv[xi] * wv[wi], bi = (double) gv[yi] * wv[wi], bw = (double) gv[yi] * xv[xi];
            y[yi] += fwd;
            ys1[yi] += Math.abs(fwd);
            gx[xi] += bi;
            gxs[xi] += Math.abs(bi);
            gw[wi] += bw;
            gws[wi] += Math.abs(bw);
        });
        for (int i = 0; i < y.length; i++) {
            double b = bv[i / (k.oh() * k.ow()) % o];
            y[i] += b;
            ys1[i] += Math.abs(b);
        }
        int terms = k.cg() * kh * kw;
        assertClose("forward", y, ys1, terms, ConvolutionCpu.conv2d(x, wt, bias, null, k.p, false).toFloatArray());
        // with a WeightCache bound (as a Predictor's): packed on the first call, read on the second
        WeightCache cache = new WeightCache();
        for (int call = 0; call < 2; call++) {
            assertClose("forward, cache call " + call, y, ys1, terms, cache.around(() -> ConvolutionCpu.conv2d(x, wt, bias, null, k.p, false)).toFloatArray());
        }
        assertClose("backward-input", gx, gxs, k.og() * kh * kw, ConvolutionCpu.conv2dBackwardInput(gy, wt, xs, k.p).toFloatArray());
        assertClose("backward-weight", gw, gws, n * k.oh() * k.ow(), ConvolutionCpu.conv2dBackwardWeight(gy, x, ws, k.p).toFloatArray());
    }

    @Test void forwardWithoutBiasAndThroughTheBackend() {
        Case k = parse(2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        Tensor x = Tensor.randn(gen, 2, 3, 8, 8), w = Tensor.randn(gen, 4, 3, 3, 3);
        float[] xv = x.toFloatArray(), wv = w.toFloatArray();
        double[] y = new double[2 * 4 * 8 * 8], s = new double[y.length];
        forEachTerm(k, (img, oc, oy, ox, ic, iy, ix, ki, kj) -> {
            double v = (double) xv[((img * 3 + ic) * 8 + iy) * 8 + ix] * wv[((oc * 3 + ic) * 3 + ki) * 3 + kj];
            y[((img * 4 + oc) * 8 + oy) * 8 + ox] += v;
            s[((img * 4 + oc) * 8 + oy) * 8 + ox] += Math.abs(v);
        });
        assertClose("forward", y, s, 27, CpuBackend.INSTANCE.conv2d(x, w, null, k.p).toFloatArray());
    }

    /**
     * The weight gradient over many images (chunks of them on every thread, each summing into its own buffer) is the same
     * to the bit every time: the buffers are added in chunk order, not in the order the threads finish them.
     */
    @Test void weightGradientIsTheSameEveryRun() {
        Case k = parse(64, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        Tensor x = Tensor.randn(gen, k.n, k.c, k.h, k.w), gy = Tensor.randn(gen, k.n, k.o, k.oh(), k.ow());
        int[] ws = {k.o, k.c, k.kh, k.kw};
        float[] first = ConvolutionCpu.conv2dBackwardWeight(gy, x, ws, k.p).toFloatArray();
        for (int run = 0; run < 30; run++) {
            assertArrayEquals(first, ConvolutionCpu.conv2dBackwardWeight(gy, x, ws, k.p).toFloatArray(), 0f, "run " + run);
        }
    }

    /**
     * The input gradient added into the input's other gradient (a residual block's skip path): into the addend itself,
     * at its offset, for 3x3, strided, grouped and pointwise convolutions, one image (the threads split each product)
     * and several (the threads split the images); equal to the plain gradient plus the addend.
     */
    @Test void inputGradientAddsIntoTheAddend() {
        Case[] cases = {parse(1, 6, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1), parse(5, 6, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                parse(4, 4, 11, 10, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2), parse(3, 8, 5, 5, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1),
                parse(1, 8, 5, 5, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1)};
        for (Case k : cases) {
            int[] xs = {k.n, k.c, k.h, k.w};
            Tensor w = Tensor.randn(gen, k.o, k.cg(), k.kh, k.kw), gy = Tensor.randn(gen, k.n, k.o, k.oh(), k.ow());
            Tensor big = Tensor.randn(gen, k.n + 1, k.c, k.h, k.w), addend = big.narrow(0, 1, k.n);   // at an offset
            double[] want = ConvolutionCpu.conv2dBackwardInput(gy, w, xs, k.p).add(addend).toDoubleArray();
            double[] before = big.narrow(0, 0, 1).toDoubleArray();
            Tensor got = ConvolutionCpu.conv2dBackwardInput(gy, w, xs, k.p, addend);
            String what = k.toString();
            assertSame(addend, got, what + ": summed in place");
            assertArrayEquals(want, got.toDoubleArray(), 1e-4, what);
            assertArrayEquals(before, big.narrow(0, 0, 1).toDoubleArray(), 0.0, what + ": memory before the addend untouched");
        }
    }
}
