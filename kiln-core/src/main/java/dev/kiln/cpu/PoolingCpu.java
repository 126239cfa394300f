package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.Pool2dParams;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Pooling family: max and average pooling and their gradients, parallel over (image,
 * channel) planes. float32 runs on plain float[]; other dtypes take a general path through {@link HostArrays}
 * (double per element), which the float32 one must match exactly, NaN propagation in max included.
 */
final class PoolingCpu {
    private PoolingCpu() {}

    /** Returns {output, argmax indices (int64, flat over H*W per plane)}. */
    static Tensor[] maxPool2d(Tensor x, Pool2dParams p) { return x.dtype() == DType.FLOAT32 ? maxPool2dF32(x, p, true) : maxPool2dAny(x, p); }

    /** The output alone: the float32 kernels without their indices (other dtypes: {@link #maxPool2d}'s output). */
    static Tensor maxPool2dValues(Tensor x, Pool2dParams p) { return x.dtype() == DType.FLOAT32 ? maxPool2dF32(x, p, false)[0] : maxPool2dAny(x, p)[0]; }

    static Tensor maxPool2dBackward(Tensor gy, Tensor indices, int[] xShape) {
        return gy.dtype() == DType.FLOAT32 ? maxPool2dBackwardF32(gy, indices, xShape) : maxPool2dBackwardAny(gy, indices, xShape);
    }

    static Tensor avgPool2d(Tensor x, Pool2dParams p) { return x.dtype() == DType.FLOAT32 ? avgPool2dF32(x, p) : avgPool2dAny(x, p); }

    static Tensor avgPool2dBackward(Tensor gy, int[] xShape, Pool2dParams p) {
        return gy.dtype() == DType.FLOAT32 ? avgPool2dBackwardF32(gy, xShape, p) : avgPool2dBackwardAny(gy, xShape, p);
    }

    // ---------------------------------------------------------------- float32

    private static float[] data(Tensor t) { return (float[]) arrayOf(t); }

    /** With `indices` false, {output, null}: the maximum of each window without where it was (ix null below). */
    private static Tensor[] maxPool2dF32(Tensor x, Pool2dParams p, boolean indices) {
        int n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        int oh = p.outH(h), ow = p.outW(w);
        Tensor xc = x.detach().contiguous();
        Tensor out = newTensor(new int[]{n, c, oh, ow}, DType.FLOAT32);
        Tensor idx = indices ? newTensor(new int[]{n, c, oh, ow}, DType.INT64) : null;
        float[] src = data(xc), dst = data(out);
        long[] ix = indices ? (long[]) arrayOf(idx) : null;
        int base = xc.offset();
        Parallel.range(n * c, 4, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                if (p.kernelH() == 2 && p.kernelW() == 2 && p.strideH() == 2 && p.strideW() == 2 && p.padH() == 0 && p.padW() == 0) {
                    if (ix == null) maxPlane2x2Values(src, base + pl * h * w, w, dst, pl * oh * ow, oh, ow);
                    else maxPlane2x2(src, base + pl * h * w, w, dst, ix, pl * oh * ow, oh, ow);
                } else if (ix == null && p.kernelH() == 3 && p.kernelW() == 3 && p.strideH() == 2 && p.strideW() == 2 && p.padH() == 1 && p.padW() == 1) {
                    maxPlane3x3Values(src, base + pl * h * w, h, w, dst, pl * oh * ow, oh, ow);
                } else {
                    maxPlane(p, src, base + pl * h * w, h, w, dst, ix, pl * oh * ow, oh, ow);
                }
            }
        });
        return new Tensor[]{out, idx};
    }

    /** One plane: the first maximum of each window wins; a NaN wins over any number, the last NaN over other NaNs (as PyTorch). */
    private static void maxPlane(Pool2dParams p, float[] src, int in0, int h, int w, float[] dst, long[] ix, int out0, int oh, int ow) {
        for (int oy = 0; oy < oh; oy++) {
            int y0 = Math.max(0, oy * p.strideH() - p.padH()), y1 = Math.min(h, oy * p.strideH() - p.padH() + p.kernelH());
            for (int ox = 0; ox < ow; ox++) {
                int x0 = Math.max(0, ox * p.strideW() - p.padW()), x1 = Math.min(w, ox * p.strideW() - p.padW() + p.kernelW());
                float best = Float.NEGATIVE_INFINITY;
                int bi = -1;
                for (int iy = y0; iy < y1; iy++) {
                    for (int xx = x0; xx < x1; xx++) {
                        float v = src[in0 + iy * w + xx];
                        // selects, not a branch: which value wins is data-dependent and mispredicts half the time
                        boolean take = bi < 0 | v > best | v != v;
                        best = take ? v : best;
                        bi = take ? iy * w + xx : bi;
                    }
                }
                dst[out0 + oy * ow + ox] = best;
                if (ix != null) ix[out0 + oy * ow + ox] = bi;
            }
        }
    }

    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I8 = IntVector.SPECIES_256;
    /** Lane selectors that split 16 consecutive floats (two 8-lane vectors) into even and odd columns. */
    private static final FloatVector EVEN = FloatVector.fromArray(F8, new float[]{0, 2, 4, 6, 8, 10, 12, 14}, 0);
    private static final FloatVector ODD = FloatVector.fromArray(F8, new float[]{1, 3, 5, 7, 9, 11, 13, 15}, 0);
    private static final IntVector TWICE_IOTA = IntVector.fromArray(I8, new int[]{0, 2, 4, 6, 8, 10, 12, 14}, 0);
    /**
     * The vector 2x2 path needs 256-bit vectors; its widening index store takes one 512-bit long vector where the
     * hardware has them, else two 256-bit halves (AVX2). (-Dkiln.pool.vector=false: the scalar loop everywhere.)
     */
    static final boolean VECTOR_2X2 = FloatVector.SPECIES_PREFERRED.length() >= 8 && !"false".equals(System.getProperty("kiln.pool.vector"));
    private static final boolean WIDE_LONGS = LongVector.SPECIES_PREFERRED.length() >= 8;

    /**
     * The common 2x2 stride-2 unpadded window, 8 outputs at a time: even and odd columns of the two input rows are
     * the window's four candidates, compared in maxPlane's order with the same NaN rule. The scalar loop nest spent
     * ~15 ns per output on its data-dependent compare chain.
     */
    private static void maxPlane2x2(float[] src, int in0, int w, float[] dst, long[] ix, int out0, int oh, int ow) {
        for (int oy = 0; oy < oh; oy++) {
            int top = 2 * oy * w, o = out0 + oy * ow, ox = 0;
            for (; VECTOR_2X2 && 2 * (ox + 8) <= w; ox += 8) {
                int i = top + 2 * ox, r0 = in0 + i, r1 = r0 + w;
                FloatVector r0a = FloatVector.fromArray(F8, src, r0), r0b = FloatVector.fromArray(F8, src, r0 + 8);
                FloatVector r1a = FloatVector.fromArray(F8, src, r1), r1b = FloatVector.fromArray(F8, src, r1 + 8);
                FloatVector best = EVEN.selectFrom(r0a, r0b);
                IntVector bi = TWICE_IOTA.add(i);
                FloatVector v = ODD.selectFrom(r0a, r0b);
                VectorMask<Float> take = takes(best, v);
                best = best.blend(v, take);
                bi = bi.blend(TWICE_IOTA.add(i + 1), take.cast(I8));
                v = EVEN.selectFrom(r1a, r1b);
                take = takes(best, v);
                best = best.blend(v, take);
                bi = bi.blend(TWICE_IOTA.add(i + w), take.cast(I8));
                v = ODD.selectFrom(r1a, r1b);
                take = takes(best, v);
                best = best.blend(v, take);
                bi = bi.blend(TWICE_IOTA.add(i + w + 1), take.cast(I8));
                best.intoArray(dst, o + ox);
                if (WIDE_LONGS) {
                    ((LongVector) bi.convertShape(VectorOperators.I2L, LongVector.SPECIES_512, 0)).intoArray(ix, o + ox);
                } else {
                    ((LongVector) bi.convertShape(VectorOperators.I2L, LongVector.SPECIES_256, 0)).intoArray(ix, o + ox);
                    ((LongVector) bi.convertShape(VectorOperators.I2L, LongVector.SPECIES_256, 1)).intoArray(ix, o + ox + 4);
                }
            }
            for (; ox < ow; ox++) {
                // the remaining windows of the row, one by one in the same order
                int i = top + 2 * ox, bi = i;
                float best = src[in0 + i];
                for (int d = 1; d <= w + 1; d = d == 1 ? w : d + 1) {
                    float v = src[in0 + i + d];
                    if (v > best || v != v) {
                        best = v;
                        bi = i + d;
                    }
                }
                dst[o + ox] = best;
                ix[o + ox] = bi;
            }
        }
    }

    /** {@link #maxPlane2x2}'s outputs alone: the same compares in the same order (so the same value, NaN included). */
    private static void maxPlane2x2Values(float[] src, int in0, int w, float[] dst, int out0, int oh, int ow) {
        for (int oy = 0; oy < oh; oy++) {
            int top = 2 * oy * w, o = out0 + oy * ow, ox = 0;
            for (; VECTOR_2X2 && 2 * (ox + 8) <= w; ox += 8) {
                int r0 = in0 + top + 2 * ox, r1 = r0 + w;
                FloatVector r0a = FloatVector.fromArray(F8, src, r0), r0b = FloatVector.fromArray(F8, src, r0 + 8);
                FloatVector r1a = FloatVector.fromArray(F8, src, r1), r1b = FloatVector.fromArray(F8, src, r1 + 8);
                FloatVector best = EVEN.selectFrom(r0a, r0b);
                FloatVector v = ODD.selectFrom(r0a, r0b);
                best = best.blend(v, takes(best, v));
                v = EVEN.selectFrom(r1a, r1b);
                best = best.blend(v, takes(best, v));
                v = ODD.selectFrom(r1a, r1b);
                best = best.blend(v, takes(best, v));
                best.intoArray(dst, o + ox);
            }
            for (; ox < ow; ox++) {
                int i = in0 + top + 2 * ox;
                float best = src[i];
                for (int d = 1; d <= w + 1; d = d == 1 ? w : d + 1) {
                    float v = src[i + d];
                    if (v > best || v != v) best = v;
                }
                dst[o + ox] = best;
            }
        }
    }

    /**
     * 3x3 windows at stride 2, pad 1 (a ResNet stem's), outputs alone: where a window lies inside its rows, 8 outputs
     * at a time, columns 2ox - 1, 2ox and 2ox + 1 of each row being the odd lanes one back and the even and odd lanes
     * of 16 floats from 2ox; the candidates taken in maxPlane's order with its rule, so its values (the scalar loop
     * with indices was ~10% of a batch-1 ResNet-18). The windows at the rows' ends one by one, in the same order.
     */
    private static void maxPlane3x3Values(float[] src, int in0, int h, int w, float[] dst, int out0, int oh, int ow) {
        for (int oy = 0; oy < oh; oy++) {
            int y0 = Math.max(0, 2 * oy - 1), y1 = Math.min(h, 2 * oy + 2), o = out0 + oy * ow, ox = 1;
            for (; VECTOR_2X2 && 2 * ox + 16 <= w; ox += 8) {
                FloatVector best = null;
                for (int iy = y0; iy < y1; iy++) {
                    int r = in0 + iy * w + 2 * ox;
                    FloatVector v0 = FloatVector.fromArray(F8, src, r), v1 = FloatVector.fromArray(F8, src, r + 8);
                    FloatVector back = EVEN.selectFrom(FloatVector.fromArray(F8, src, r - 1), FloatVector.fromArray(F8, src, r + 7));
                    best = best == null ? back : best.blend(back, takes(best, back));
                    FloatVector v = EVEN.selectFrom(v0, v1);
                    best = best.blend(v, takes(best, v));
                    v = ODD.selectFrom(v0, v1);
                    best = best.blend(v, takes(best, v));
                }
                best.intoArray(dst, o + ox);
            }
            for (int x = 0; x < ow; x = x == 0 ? Math.max(ox, 1) : x + 1) {
                int x0 = Math.max(0, 2 * x - 1), x1 = Math.min(w, 2 * x + 2);
                float best = src[in0 + y0 * w + x0];
                for (int iy = y0; iy < y1; iy++) {
                    for (int xx = iy == y0 ? x0 + 1 : x0; xx < x1; xx++) {
                        float v = src[in0 + iy * w + xx];
                        if (v > best || v != v) best = v;
                    }
                }
                dst[o + x] = best;
            }
        }
    }

    /** The lanes where a later candidate v takes the window from best: greater, or NaN (the maxPlane order's rule). */
    private static VectorMask<Float> takes(FloatVector best, FloatVector v) {
        return v.compare(VectorOperators.GT, best).or(v.test(VectorOperators.IS_NAN));
    }

    private static Tensor maxPool2dBackwardF32(Tensor gy, Tensor indices, int[] xShape) {
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int q = gy.shape()[2] * gy.shape()[3];
        Tensor gx = newTensor(xShape.clone(), DType.FLOAT32);
        Tensor gyc = gy.detach().contiguous(), ic = indices.detach().contiguous();
        float[] src = data(gyc), dst = data(gx);
        long[] ix = (long[]) arrayOf(ic);
        int gb = gyc.offset(), ib = ic.offset();
        Parallel.range(n * c, 4, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int d0 = pl * h * w, s0 = pl * q;
                for (int i = 0; i < q; i++) dst[d0 + (int) ix[ib + s0 + i]] += src[gb + s0 + i];
            }
        });
        return gx;
    }

    /** The divisor of window (oy, ox): the whole window when padding counts, else only its part inside the image. */
    private static int count(Pool2dParams p, int oy, int ox, int h, int w) {
        int y0 = oy * p.strideH() - p.padH(), x0 = ox * p.strideW() - p.padW();
        if (p.countIncludePad()) {
            return (Math.min(y0 + p.kernelH(), h + p.padH()) - y0) * (Math.min(x0 + p.kernelW(), w + p.padW()) - x0);
        }
        return (Math.min(y0 + p.kernelH(), h) - Math.max(y0, 0)) * (Math.min(x0 + p.kernelW(), w) - Math.max(x0, 0));
    }

    private static Tensor avgPool2dF32(Tensor x, Pool2dParams p) {
        int n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        int oh = p.outH(h), ow = p.outW(w);
        Tensor xc = x.detach().contiguous();
        Tensor out = newTensor(new int[]{n, c, oh, ow}, DType.FLOAT32);
        float[] src = data(xc), dst = data(out);
        int base = xc.offset();
        Parallel.range(n * c, 4, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int in0 = base + pl * h * w, out0 = pl * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = Math.max(0, oy * p.strideH() - p.padH()), y1 = Math.min(h, oy * p.strideH() - p.padH() + p.kernelH());
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = Math.max(0, ox * p.strideW() - p.padW()), x1 = Math.min(w, ox * p.strideW() - p.padW() + p.kernelW());
                        float s = 0;
                        for (int iy = y0; iy < y1; iy++) {
                            for (int xx = x0; xx < x1; xx++) s += src[in0 + iy * w + xx];
                        }
                        dst[out0 + oy * ow + ox] = s / count(p, oy, ox, h, w);
                    }
                }
            }
        });
        return out;
    }

    private static Tensor avgPool2dBackwardF32(Tensor gy, int[] xShape, Pool2dParams p) {
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int oh = gy.shape()[2], ow = gy.shape()[3];
        Tensor gx = newTensor(xShape.clone(), DType.FLOAT32);
        Tensor gyc = gy.detach().contiguous();
        float[] src = data(gyc), dst = data(gx);
        int gb = gyc.offset();
        Parallel.range(n * c, 4, (lo, hi) -> {
            for (int pl = lo; pl < hi; pl++) {
                int d0 = pl * h * w, s0 = gb + pl * oh * ow;
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = Math.max(0, oy * p.strideH() - p.padH()), y1 = Math.min(h, oy * p.strideH() - p.padH() + p.kernelH());
                    for (int ox = 0; ox < ow; ox++) {
                        int x0 = Math.max(0, ox * p.strideW() - p.padW()), x1 = Math.min(w, ox * p.strideW() - p.padW() + p.kernelW());
                        float g = src[s0 + oy * ow + ox] / count(p, oy, ox, h, w);
                        for (int iy = y0; iy < y1; iy++) {
                            for (int xx = x0; xx < x1; xx++) dst[d0 + iy * w + xx] += g;
                        }
                    }
                }
            }
        });
        return gx;
    }

    // ---------------------------------------------------------------- other dtypes

    private static Tensor[] maxPool2dAny(Tensor x, Pool2dParams p) {
        int n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        int oh = p.outH(h), ow = p.outW(w);
        Tensor xc = x.detach().contiguous();
        Tensor out = newTensor(new int[]{n, c, oh, ow}, x.dtype());
        Tensor idx = newTensor(new int[]{n, c, oh, ow}, DType.INT64);
        Object src = arrayOf(xc), dst = arrayOf(out);
        long[] ix = (long[]) arrayOf(idx);
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

    private static Tensor maxPool2dBackwardAny(Tensor gy, Tensor indices, int[] xShape) {
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int oh = gy.shape()[2], ow = gy.shape()[3];
        Tensor gx = newTensor(xShape.clone(), gy.dtype());
        Tensor gyc = gy.detach().contiguous(), ic = indices.detach().contiguous();
        Object src = arrayOf(gyc), dst = arrayOf(gx);
        long[] ix = (long[]) arrayOf(ic);
        DType t = gy.dtype();
        int gb = gyc.offset(), ib = ic.offset();
        Parallel.range(n * c, 1, (lo, hi) -> {
            double[] sums = new double[h * w];
            for (int pl = lo; pl < hi; pl++) {
                java.util.Arrays.fill(sums, 0);
                for (int q = 0; q < oh * ow; q++) sums[(int) ix[ib + pl * oh * ow + q]] += HostArrays.get(src, t, gb + pl * oh * ow + q);
                store(dst, t, pl * h * w, sums);
            }
        });
        return gx;
    }

    private static Tensor avgPool2dAny(Tensor x, Pool2dParams p) {
        int n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
        int oh = p.outH(h), ow = p.outW(w);
        Tensor xc = x.detach().contiguous();
        Tensor out = newTensor(new int[]{n, c, oh, ow}, x.dtype());
        Object src = arrayOf(xc), dst = arrayOf(out);
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
                        HostArrays.set(dst, t, pl * oh * ow + oy * ow + ox, s / count(p, oy, ox, h, w));
                    }
                }
            }
        });
        return out;
    }

    private static Tensor avgPool2dBackwardAny(Tensor gy, int[] xShape, Pool2dParams p) {
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int oh = gy.shape()[2], ow = gy.shape()[3];
        Tensor gx = newTensor(xShape.clone(), gy.dtype());
        Tensor gyc = gy.detach().contiguous();
        Object src = arrayOf(gyc), dst = arrayOf(gx);
        DType t = gy.dtype();
        int gb = gyc.offset();
        Parallel.range(n * c, 1, (lo, hi) -> {
            double[] sums = new double[h * w];
            for (int pl = lo; pl < hi; pl++) {
                java.util.Arrays.fill(sums, 0);
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        double g = HostArrays.get(src, t, gb + pl * oh * ow + oy * ow + ox) / count(p, oy, ox, h, w);
                        for (int ky = 0; ky < p.kernelH(); ky++) {
                            int iy = oy * p.strideH() - p.padH() + ky;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < p.kernelW(); kx++) {
                                int xx = ox * p.strideW() - p.padW() + kx;
                                if (xx < 0 || xx >= w) continue;
                                sums[iy * w + xx] += g;
                            }
                        }
                    }
                }
                store(dst, t, pl * h * w, sums);
            }
        });
        return gx;
    }

    /**
     * One plane's gradient, summed in double, into dst from d0: rounded once to the dtype (a 16-bit sum rounded after
     * each window's add drifted from the GPU's, which rounds once: PoolingGpuTest's bfloat16 case failed by that).
     */
    private static void store(Object dst, DType t, int d0, double[] sums) {
        for (int i = 0; i < sums.length; i++) HostArrays.set(dst, t, d0 + i, sums[i]);
    }
}
