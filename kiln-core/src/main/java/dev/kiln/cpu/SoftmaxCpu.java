package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;

/**
 * CPU convolution (im2col + GEMM), pooling and softmax. The general paths read and write through
 * {@link HostArrays} so every floating dtype works; float32 takes fast paths ({@link ConvKernels},
 * {@link PoolKernels}). The general convolution path is also the reference the float32 one is tested against.
 */
final class NnKernels {
    private NnKernels() {}

    // ---------------------------------------------------------------- convolution

    /** cols (C*kh*kw, OH*OW) of one image's channels [c0, c0+cg). */
    private static Tensor im2col(Tensor x, int img, int c0, int cg, int kh, int kw, int oh, int ow, Conv2dParams p) {
        int h = x.shape()[2], w = x.shape()[3];
        Tensor cols = ElementKernels.newTensor(new int[]{cg * kh * kw, oh * ow}, x.dtype());
        Object src = ElementKernels.arr(x), dst = ElementKernels.arr(cols);
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
    private static void col2im(Tensor cols, Tensor gx, int img, int c0, int cg, int kh, int kw, int oh, int ow, Conv2dParams p) {
        int h = gx.shape()[2], w = gx.shape()[3], c = gx.shape()[1];
        Object src = ElementKernels.arr(cols), dst = ElementKernels.arr(gx);
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
        Tensor out = Gemm.matmul(a.detach().unsqueeze(0), b.detach().unsqueeze(0));
        return new Tensor(out.storage(), new int[]{m, n});
    }

    static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p) {
        if (x.dtype() == DType.FLOAT32) return ConvKernels.conv2d(x, w, bias, p);
        int n = x.shape()[0], cin = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
        int o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int oh = p.outH(h, kh), ow = p.outW(wd, kw), cg = cin / g, og = o / g;
        Tensor out = ElementKernels.newTensor(new int[]{n, o, oh, ow}, x.dtype());
        Tensor wc = w.detach().contiguous();
        for (int img = 0; img < n; img++) {
            for (int gi = 0; gi < g; gi++) {
                Tensor cols = im2col(x, img, gi * cg, cg, kh, kw, oh, ow, p);
                Tensor wg = wc.narrow(0, gi * og, og).reshape(og, cg * kh * kw);
                Tensor r = mm(wg, cols);
                ElementKernels.copy(out.detach().select(0, img).narrow(0, gi * og, og).reshape(og, oh * ow), r);
            }
        }
        if (bias != null) {
            Tensor bv = bias.detach().reshape(1, o, 1, 1).expand(n, o, oh, ow);
            ElementKernels.copy(out, ElementKernels.binary(dev.kiln.backend.BinaryOp.ADD, out, bv));
        }
        return out;
    }

    static Tensor conv2dBackwardInput(Tensor gy, Tensor w, int[] xShape, Conv2dParams p) {
        if (gy.dtype() == DType.FLOAT32) return ConvKernels.conv2dBackwardInput(gy, w, xShape, p);
        int n = xShape[0], cin = xShape[1], h = xShape[2], wd = xShape[3];
        int o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int oh = p.outH(h, kh), ow = p.outW(wd, kw), cg = cin / g, og = o / g;
        Tensor gx = ElementKernels.newTensor(xShape.clone(), gy.dtype());
        ElementKernels.fill(gx, 0);
        Tensor wc = w.detach().contiguous();
        Tensor gyc = gy.detach().contiguous();
        for (int img = 0; img < n; img++) {
            for (int gi = 0; gi < g; gi++) {
                Tensor wg = wc.narrow(0, gi * og, og).reshape(og, cg * kh * kw);
                Tensor gyg = gyc.select(0, img).narrow(0, gi * og, og).reshape(og, oh * ow);
                Tensor cols = mm(wg.t(), gyg);
                col2im(cols, gx, img, gi * cg, cg, kh, kw, oh, ow, p);
            }
        }
        return gx;
    }

    static Tensor conv2dBackwardWeight(Tensor gy, Tensor x, int[] wShape, Conv2dParams p) {
        if (gy.dtype() == DType.FLOAT32) return ConvKernels.conv2dBackwardWeight(gy, x, wShape, p);
        int n = x.shape()[0], cin = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
        int o = wShape[0], kh = wShape[2], kw = wShape[3], g = p.groups();
        int oh = p.outH(h, kh), ow = p.outW(wd, kw), cg = cin / g, og = o / g;
        Tensor gw = ElementKernels.newTensor(wShape.clone(), gy.dtype());
        ElementKernels.fill(gw, 0);
        Tensor gyc = gy.detach().contiguous();
        for (int img = 0; img < n; img++) {
            for (int gi = 0; gi < g; gi++) {
                Tensor cols = im2col(x, img, gi * cg, cg, kh, kw, oh, ow, p);
                Tensor gyg = gyc.select(0, img).narrow(0, gi * og, og).reshape(og, oh * ow);
                Tensor part = mm(gyg, cols.t());
                Tensor dst = gw.narrow(0, gi * og, og).reshape(og, cg * kh * kw);
                ElementKernels.copy(dst, ElementKernels.binary(dev.kiln.backend.BinaryOp.ADD, dst, part));
            }
        }
        return gw;
    }

    // ---------------------------------------------------------------- pooling

    static Tensor[] maxPool2d(Tensor x, Pool2dParams p) {
        if (x.dtype() == DType.FLOAT32) return PoolKernels.maxPool2d(x, p);
        int n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        int oh = p.outH(h), ow = p.outW(w);
        Tensor xc = x.detach().contiguous();
        Tensor out = ElementKernels.newTensor(new int[]{n, c, oh, ow}, x.dtype());
        Tensor idx = ElementKernels.newTensor(new int[]{n, c, oh, ow}, DType.INT64);
        Object src = ElementKernels.arr(xc), dst = ElementKernels.arr(out);
        long[] ix = (long[]) ElementKernels.arr(idx);
        DType t = x.dtype();
        int base = xc.offset();
        Parallel.range(n * c, 1, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int in0 = base + pl * h * w, out0 = pl * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        double best = Double.NEGATIVE_INFINITY;
                        int bi = -1;
                        for (int ky = 0; ky < p.kernelH(); ky++) {
                            int iy = oy * p.strideH() - p.padH() + ky;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < p.kernelW(); kx++) {
                                int xx = ox * p.strideW() - p.padW() + kx;
                                if (xx < 0 || xx >= w) continue;
                                double v = HostArrays.get(src, t, in0 + iy * w + xx);
                                // as PyTorch: the first maximum wins, a NaN beats any number, the last NaN wins
                                if (bi < 0 || v > best || Double.isNaN(v)) {
                                    best = v;
                                    bi = iy * w + xx;
                                }
                            }
                        }
                        HostArrays.set(dst, t, out0 + oy * ow + ox, best);
                        ix[out0 + oy * ow + ox] = bi;
                    }
                }
            }
        });
        return new Tensor[]{out, idx};
    }

    static Tensor maxPool2dBackward(Tensor gy, Tensor indices, int[] xShape) {
        if (gy.dtype() == DType.FLOAT32) return PoolKernels.maxPool2dBackward(gy, indices, xShape);
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int oh = gy.shape()[2], ow = gy.shape()[3];
        Tensor gx = ElementKernels.newTensor(xShape.clone(), gy.dtype());
        ElementKernels.fill(gx, 0);
        Tensor gyc = gy.detach().contiguous(), ic = indices.detach().contiguous();
        Object src = ElementKernels.arr(gyc), dst = ElementKernels.arr(gx);
        long[] ix = (long[]) ElementKernels.arr(ic);
        DType t = gy.dtype();
        int gb = gyc.offset(), ib = ic.offset();
        Parallel.range(n * c, 1, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                for (int q = 0; q < oh * ow; q++) {
                    int di = pl * h * w + (int) ix[ib + pl * oh * ow + q];
                    HostArrays.set(dst, t, di, HostArrays.get(dst, t, di) + HostArrays.get(src, t, gb + pl * oh * ow + q));
                }
            }
        });
        return gx;
    }

    private static int poolCount(Pool2dParams p, int oy, int ox, int h, int w) {
        if (p.countIncludePad()) {
            int y0 = oy * p.strideH() - p.padH(), x0 = ox * p.strideW() - p.padW();
            int y1 = Math.min(y0 + p.kernelH(), h + p.padH()), x1 = Math.min(x0 + p.kernelW(), w + p.padW());
            return (y1 - y0) * (x1 - x0);
        }
        int y0 = Math.max(oy * p.strideH() - p.padH(), 0), x0 = Math.max(ox * p.strideW() - p.padW(), 0);
        int y1 = Math.min(oy * p.strideH() - p.padH() + p.kernelH(), h), x1 = Math.min(ox * p.strideW() - p.padW() + p.kernelW(), w);
        return (y1 - y0) * (x1 - x0);
    }

    static Tensor avgPool2d(Tensor x, Pool2dParams p) {
        if (x.dtype() == DType.FLOAT32) return PoolKernels.avgPool2d(x, p);
        int n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        int oh = p.outH(h), ow = p.outW(w);
        Tensor xc = x.detach().contiguous();
        Tensor out = ElementKernels.newTensor(new int[]{n, c, oh, ow}, x.dtype());
        Object src = ElementKernels.arr(xc), dst = ElementKernels.arr(out);
        DType t = x.dtype();
        int base = xc.offset();
        Parallel.range(n * c, 1, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        double s = 0;
                        for (int ky = 0; ky < p.kernelH(); ky++) {
                            int iy = oy * p.strideH() - p.padH() + ky;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < p.kernelW(); kx++) {
                                int xx = ox * p.strideW() - p.padW() + kx;
                                if (xx >= 0 && xx < w) s += HostArrays.get(src, t, base + pl * h * w + iy * w + xx);
                            }
                        }
                        HostArrays.set(dst, t, pl * oh * ow + oy * ow + ox, s / poolCount(p, oy, ox, h, w));
                    }
                }
            }
        });
        return out;
    }

    static Tensor avgPool2dBackward(Tensor gy, int[] xShape, Pool2dParams p) {
        if (gy.dtype() == DType.FLOAT32) return PoolKernels.avgPool2dBackward(gy, xShape, p);
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int oh = gy.shape()[2], ow = gy.shape()[3];
        Tensor gx = ElementKernels.newTensor(xShape.clone(), gy.dtype());
        ElementKernels.fill(gx, 0);
        Tensor gyc = gy.detach().contiguous();
        Object src = ElementKernels.arr(gyc), dst = ElementKernels.arr(gx);
        DType t = gy.dtype();
        int gb = gyc.offset();
        Parallel.range(n * c, 1, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        double g = HostArrays.get(src, t, gb + pl * oh * ow + oy * ow + ox) / poolCount(p, oy, ox, h, w);
                        for (int ky = 0; ky < p.kernelH(); ky++) {
                            int iy = oy * p.strideH() - p.padH() + ky;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < p.kernelW(); kx++) {
                                int xx = ox * p.strideW() - p.padW() + kx;
                                if (xx < 0 || xx >= w) continue;
                                int di = pl * h * w + iy * w + xx;
                                HostArrays.set(dst, t, di, HostArrays.get(dst, t, di) + g);
                            }
                        }
                    }
                }
            }
        });
        return gx;
    }

    // ---------------------------------------------------------------- softmax

        static Tensor softmax(Tensor x, int dim, boolean log) {
        if (x.dim() == 0) return softmax(x.detach().reshape(1), 0, log).reshape();
        int[] perm = dev.kiln.Shape.moveToEnd(x.dim(), dim);
        Tensor xp = x.detach().permute(perm).contiguousCopy();
        int n = x.shape()[dim], rows = (int) (x.numel() / Math.max(n, 1));
        Tensor yp = ElementKernels.newTensor(xp.shape(), x.dtype());
        Object a = ElementKernels.arr(xp), y = ElementKernels.arr(yp);
        DType t = x.dtype();
        Parallel.range(rows, Math.max(1, 2048 / Math.max(n, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int o = r * n;
                double mx = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) mx = Math.max(mx, HostArrays.get(a, t, o + j));
                double s = 0;
                for (int j = 0; j < n; j++) s += Math.exp(HostArrays.get(a, t, o + j) - mx);
                double ls = Math.log(s);
                for (int j = 0; j < n; j++) {
                    double z = HostArrays.get(a, t, o + j) - mx;
                    HostArrays.set(y, t, o + j, log ? z - ls : Math.exp(z) / s);
                }
            }
        });
        return yp.permute(dev.kiln.Shape.inversePermutation(perm)).contiguousCopy();
    }

    static Tensor softmaxBackward(Tensor gy, Tensor y, int dim, boolean log) {
        int[] perm = dev.kiln.Shape.moveToEnd(y.dim(), dim);
        Tensor gp = gy.detach().permute(perm).contiguousCopy(), yp = y.detach().permute(perm).contiguousCopy();
        int n = y.shape()[dim], rows = (int) (y.numel() / Math.max(n, 1));
        Tensor out = ElementKernels.newTensor(gp.shape(), y.dtype());
        Object g = ElementKernels.arr(gp), yy = ElementKernels.arr(yp), o = ElementKernels.arr(out);
        DType t = y.dtype();
        Parallel.range(rows, Math.max(1, 2048 / Math.max(n, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int b = r * n;
                double s = 0;
                for (int j = 0; j < n; j++) s += log ? HostArrays.get(g, t, b + j) : HostArrays.get(g, t, b + j) * HostArrays.get(yy, t, b + j);
                for (int j = 0; j < n; j++) {
                    double gj = HostArrays.get(g, t, b + j), yj = HostArrays.get(yy, t, b + j);
                    HostArrays.set(o, t, b + j, log ? gj - Math.exp(yj) * s : yj * (gj - s));
                }
            }
        });
        return out.permute(dev.kiln.Shape.inversePermutation(perm)).contiguousCopy();
    }
}
