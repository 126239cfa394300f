package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * Part of the Convolution family: {@link ConvolutionCpu}'s path for dtypes other than float32, im2col + matmul on
 * tensors, one (image, group) pair at a time, through {@link HostArrays} (double per element). It is also the reference
 * the float32 paths are tested against.
 */
final class ConvolutionAny {
    private ConvolutionAny() {}

    /** cols (C*kh*kw, OH*OW) of one image's channels [c0, c0+cg). */
    private static Tensor im2colAny(Tensor x, int img, int c0, int cg, int kh, int kw, int oh, int ow, Conv2dParams p) {
        int h = x.shape()[2], w = x.shape()[3];
        Tensor cols = newTensor(new int[]{cg * kh * kw, oh * ow}, x.dtype());
        Object src = arrayOf(x), dst = arrayOf(cols);
        int[] st = x.strides();
        int base = x.offset() + img * st[0];
        DType t = x.dtype();
        boolean f32 = t == DType.FLOAT32;
        Parallel.range(cg * kh * kw, 4, (lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int c = row / (kh * kw), ki = (row / kw) % kh, kj = row % kw;
                int cb = base + (c0 + c) * st[1];
                int ob = row * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * p.strideH() - p.padH() + ki * p.dilationH();
                    for (int ox = 0; ox < ow; ox++) {
                        int ix = ox * p.strideW() - p.padW() + kj * p.dilationW();
                        boolean in = iy >= 0 && iy < h && ix >= 0 && ix < w;
                        int si = cb + iy * st[2] + ix * st[3];
                        if (f32) ((float[]) dst)[ob + oy * ow + ox] = in ? ((float[]) src)[si] : 0f;
                        else HostArrays.set(dst, t, ob + oy * ow + ox, in ? HostArrays.get(src, t, si) : 0);
                    }
                }
            }
        });
        return cols;
    }

    /** Adds cols (C*kh*kw, OH*OW) back into image img's channels [c0, c0+cg) of the contiguous gradient gx. */
    private static void col2imAny(Tensor cols, Tensor gx, int img, int c0, int cg, int kh, int kw, int oh, int ow, Conv2dParams p) {
        int h = gx.shape()[2], w = gx.shape()[3], c = gx.shape()[1];
        Object src = arrayOf(cols), dst = arrayOf(gx);
        DType t = gx.dtype();
        // parallel over channels: each channel's rows write only that channel's plane
        Parallel.range(cg, 1, (lo, hi) -> {
            for (int ch = lo; ch < hi; ch++) {
                int plane = (img * c + c0 + ch) * h * w;
                for (int ki = 0; ki < kh; ki++) {
                    for (int kj = 0; kj < kw; kj++) {
                        int row = (ch * kh + ki) * kw + kj;
                        for (int oy = 0; oy < oh; oy++) {
                            int iy = oy * p.strideH() - p.padH() + ki * p.dilationH();
                            if (iy < 0 || iy >= h) continue;
                            for (int ox = 0; ox < ow; ox++) {
                                int ix = ox * p.strideW() - p.padW() + kj * p.dilationW();
                                if (ix < 0 || ix >= w) continue;
                                int di = plane + iy * w + ix, si = row * oh * ow + oy * ow + ox;
                                HostArrays.set(dst, t, di, HostArrays.get(dst, t, di) + HostArrays.get(src, t, si));
                            }
                        }
                    }
                }
            }
        });
    }

    private static Tensor mm(Tensor a, Tensor b) {
        int m = a.shape()[0], n = b.shape()[1];
        Tensor out = MatmulCpu.matmul(a.detach().unsqueeze(0), b.detach().unsqueeze(0));
        return new Tensor(out.storage(), new int[]{m, n});
    }

    static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p) {
        int n = x.shape()[0], cin = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
        int o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int oh = p.outH(h, kh), ow = p.outW(wd, kw), cg = cin / g, og = o / g;
        Tensor out = newTensor(new int[]{n, o, oh, ow}, x.dtype());
        Tensor wc = w.detach().contiguous();
        for (int img = 0; img < n; img++) {
            for (int gi = 0; gi < g; gi++) {
                Tensor cols = im2colAny(x, img, gi * cg, cg, kh, kw, oh, ow, p);
                Tensor wg = wc.narrow(0, gi * og, og).reshape(og, cg * kh * kw);
                Tensor r = mm(wg, cols);
                ElementwiseCpu.copy(out.detach().select(0, img).narrow(0, gi * og, og).reshape(og, oh * ow), r);
            }
        }
        if (bias != null) {
            Tensor bv = bias.detach().reshape(1, o, 1, 1).expand(n, o, oh, ow);
            ElementwiseCpu.copy(out, ElementwiseCpu.binary(BinaryOp.ADD, out, bv));
        }
        return out;
    }

    static Tensor backwardInput(Tensor gy, Tensor w, int[] xShape, Conv2dParams p) {
        int n = xShape[0], cin = xShape[1], h = xShape[2], wd = xShape[3];
        int o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int oh = p.outH(h, kh), ow = p.outW(wd, kw), cg = cin / g, og = o / g;
        Tensor gx = newTensor(xShape.clone(), gy.dtype());
        ElementwiseCpu.fill(gx, 0);
        Tensor wc = w.detach().contiguous();
        Tensor gyc = gy.detach().contiguous();
        for (int img = 0; img < n; img++) {
            for (int gi = 0; gi < g; gi++) {
                Tensor wg = wc.narrow(0, gi * og, og).reshape(og, cg * kh * kw);
                Tensor gyg = gyc.select(0, img).narrow(0, gi * og, og).reshape(og, oh * ow);
                Tensor cols = mm(wg.t(), gyg);
                col2imAny(cols, gx, img, gi * cg, cg, kh, kw, oh, ow, p);
            }
        }
        return gx;
    }

    static Tensor backwardWeight(Tensor gy, Tensor x, int[] wShape, Conv2dParams p) {
        int n = x.shape()[0], cin = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
        int o = wShape[0], kh = wShape[2], kw = wShape[3], g = p.groups();
        int oh = p.outH(h, kh), ow = p.outW(wd, kw), cg = cin / g, og = o / g;
        Tensor gw = newTensor(wShape.clone(), gy.dtype());
        ElementwiseCpu.fill(gw, 0);
        Tensor gyc = gy.detach().contiguous();
        for (int img = 0; img < n; img++) {
            for (int gi = 0; gi < g; gi++) {
                Tensor cols = im2colAny(x, img, gi * cg, cg, kh, kw, oh, ow, p);
                Tensor gyg = gyc.select(0, img).narrow(0, gi * og, og).reshape(og, oh * ow);
                Tensor part = mm(gyg, cols.t());
                Tensor dst = gw.narrow(0, gi * og, og).reshape(og, cg * kh * kw);
                ElementwiseCpu.copy(dst, ElementwiseCpu.binary(BinaryOp.ADD, dst, part));
            }
        }
        return gw;
    }
}
