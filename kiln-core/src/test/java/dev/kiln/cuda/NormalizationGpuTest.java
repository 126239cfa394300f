package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.BatchNormParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.nn.F;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * normalization.cu's layer norm (below) and batch norm (with the residual add and ReLU) on cuda:0 against the CPU's, on fresh random inputs:
 * values, the saved statistics, running statistics, and all four gradients, training and eval, for float64 and
 * float32 (with float parameters of their own dtype) and for 16-bit activations with float32 parameters, as
 * autocast runs it (compared with the CPU on the same rounded inputs). Skips without a GPU.
 */
class NormalizationGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(NormalizationGpuTest.class); }

    @Test void batchNormForwardAndBackward() {
        // not 2 values per channel: then xhat is +-1 and dx cancels to rounding noise, which no relative tolerance fits
        int[][] shapes = {{8, 5, 7, 9}, {3, 64, 14, 14}, {16, 3}, {3, 7, 1, 1}, {256, 4, 33, 35}};
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            DType pt = t == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
            double tol = t == DType.FLOAT64 ? 1e-10 : t == DType.FLOAT32 ? 1e-4 : 2e-2;
            for (int[] s : shapes) {
                for (boolean training : new boolean[]{true, false}) {
                    for (int variant = 0; variant < 3; variant++) {   // plain; ReLU; residual + ReLU, no affine
                        boolean relu = variant > 0, res = variant == 2, affine = variant != 2;
                        String what = t + " " + java.util.Arrays.toString(s) + (training ? " training" : " eval") + " variant " + variant;
                        int c = s[1];
                        Tensor x = randn(t, s), r = res ? randn(t, s) : null, g = randn(t, s);
                        Tensor w = affine ? randn(pt, c) : null, b = affine ? randn(pt, c) : null;
                        Tensor rmC = randn(pt, c), rvC = positive(pt, c);
                        Tensor rmG = gpu(rmC), rvG = gpu(rvC);
                        BatchNormParams p = new BatchNormParams(training, 0.1, 1e-5, relu);
                        // the CPU reference in float32 (for 16-bit) on exactly the values the GPU sees
                        DType ct = t == DType.FLOAT64 || t == DType.FLOAT32 ? DType.FLOAT64 : DType.FLOAT32;   // float32 against the double loops
                        Tensor nC = Tensor.full(new int[0], 41, DType.INT64, Device.CPU), nG = gpu(nC);
                        Tensor[] yc = CPU_BE.batchNorm(x.to(ct), w, b, rmC, rvC, nC, r == null ? null : r.to(ct), p);
                        Tensor[] yg = gpuBe.batchNorm(gpu(x), w == null ? null : gpu(w), b == null ? null : gpu(b), rmG, rvG, nG, r == null ? null : gpu(r), p);
                        assertEquals(training ? 42 : 41, nC.item(), what + " batches counted (cpu)");
                        assertEquals(training ? 42 : 41, nG.item(), what + " batches counted");
                        close(yc[0].to(t), yg[0], tol, what + " y");
                        close(yc[1], yg[1], tol, what + " mean");
                        close(yc[2], yg[2], tol, what + " invstd");
                        close(rmC, rmG, tol, what + " running mean");
                        close(rvC, rvG, tol, what + " running var");
                        // the ReLU mask from the GPU's y on both sides: an element within rounding of 0 may fall either way
                        Tensor mask = relu ? yg[0].cpu().to(ct) : null;
                        Tensor[] gc = CPU_BE.batchNormBackward(g.to(ct), mask, x.to(ct), w, b, yc[1], yc[2], p, res, true, paramGrad(w, Device.CPU), paramGrad(w, Device.CPU));
                        Tensor[] gg = gpuBe.batchNormBackward(gpu(g), relu ? yg[0] : null, gpu(x), w == null ? null : gpu(w), b == null ? null : gpu(b), yg[1], yg[2], p, res, true, paramGrad(w, GPU), paramGrad(w, GPU));
                        double gtol = t == DType.BFLOAT16 || t == DType.FLOAT16 ? 6e-2 : tol;
                        close(gc[0].to(t), gg[0], gtol, what + " dx");
                        if (affine) {
                            close(gc[1], gg[1], gtol, what + " dweight");
                            close(gc[2], gg[2], gtol, what + " dbias");
                        }
                        if (res) close(gc[3].to(t), gg[3], gtol, what + " dresidual");
                    }
                }
            }
        }
    }

    /** Where batch norm's backward writes a parameter gradient: a slice at an offset of a larger tensor (as a gradient buffer). */
    private static Tensor paramGrad(Tensor w, Device d) {
        if (w == null) return null;
        return Tensor.zeros(new int[]{w.shape()[0] + 5}, w.dtype(), d).narrow(0, 5, w.shape()[0]);
    }

    @Test void layerNormForwardAndBackward() {
        // rows of 128·k up to 1,024 float32s take the kernels holding a row in registers (layer_norm_*_v_f32)
        int[][] shapes = {{7, 5}, {3, 17, 384}, {2, 1}, {4, 2051}, {1000, 64}, {9, 128}, {5, 1024}, {3, 1152}};
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            DType pt = t == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32, ct = pt;
            double tol = t == DType.FLOAT64 ? 1e-10 : t == DType.FLOAT32 ? 1e-4 : 2e-2;
            for (int[] s : shapes) {
                for (boolean affine : new boolean[]{true, false}) {
                    int n = s[s.length - 1];
                    String what = "layer norm " + t + " " + java.util.Arrays.toString(s) + (affine ? " affine" : "");
                    Tensor x = randn(t, s).mul(2).add(0.5), g = randn(t, s), w = affine ? randn(pt, n) : null, b = affine ? randn(pt, n) : null;
                    Tensor[] yc = CPU_BE.layerNorm(x.to(ct), w, b, n, 1e-5, ct);
                    Tensor[] yg = gpuBe.layerNorm(gpu(x), w == null ? null : gpu(w), b == null ? null : gpu(b), n, 1e-5, t);
                    close(yc[0].to(t), yg[0], tol, what + " y");
                    close(yc[1], yg[1], tol, what + " mean");
                    close(yc[2], yg[2], tol, what + " invstd");
                    // the GPU's parameter gradients into slices of one flat tensor at an offset (gradient buffers)
                    Tensor dwc = Tensor.empty(new int[]{n}, pt, Device.CPU), dbc = Tensor.empty(new int[]{n}, pt, Device.CPU);
                    Tensor flat = Tensor.zeros(new int[]{2 * n + 3}, pt, GPU), dwg = flat.narrow(0, 3, n), dbg = flat.narrow(0, 3 + n, n);
                    // with the affine ones x's pending gradient from another consumer is added as dx is written
                    Tensor add = affine ? randn(t, s) : null;
                    Tensor dxc = CPU_BE.layerNormBackward(g.to(ct), x.to(ct), w, yc[1], yc[2], n, true, add == null ? null : add.to(ct),
                            w == null ? null : dwc, dbc);
                    Tensor dxg = gpuBe.layerNormBackward(gpu(g), gpu(x), w == null ? null : gpu(w), yg[1], yg[2], n, true,
                            add == null ? null : gpu(add), w == null ? null : dwg, dbg);
                    double gtol = t == DType.BFLOAT16 || t == DType.FLOAT16 ? 6e-2 : tol;
                    if (n > 1) close(dxc.to(t), dxg, gtol, what + " dx");
                    if (affine) close(dwc, dwg, gtol, what + " dweight");
                    close(dbc, dbg, gtol, what + " dbias");
                }
            }
        }
    }

    /**
     * float32 rows normalised straight into bf16 / fp16 (layer_norm_fwd_to_*): the CPU's float32 output rounded, and the
     * gradients; x also feeds a residual, whose gradient the input gradient's pass adds (layer_norm_input_grad_from_*).
     */
    @Test void layerNormIntoSixteenBits() {
        for (DType out : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
            for (int[] s : new int[][]{{3, 17, 384}, {5, 2051}}) {
                int n = s[s.length - 1];
                compareGraph("layer norm float32 -> " + out + " " + java.util.Arrays.toString(s), 2e-2,
                        in -> dev.kiln.nn.F.layerNorm(in[0], new int[]{n}, in[1], in[2], 1e-5, out).to(DType.FLOAT32).add(in[0].mul(0.5)),
                        randn(DType.FLOAT32, s).mul(2).add(0.5), randn(DType.FLOAT32, n), randn(DType.FLOAT32, n));
            }
        }
    }

    /**
     * Batch norm (+ residual + ReLU) on channels-last inputs, outputs and gradients channels-last, equal to the CPU's:
     * the 16-byte _v kernels where channels divide into 16-byte groups (one to eight groups per thread row, several
     * channel blocks at 512), the _cl ones elsewhere (6 channels); {16, 24, 20, 20}'s inputs sit at a mean of 4 (the
     * shifted sums' case). Every training case counts the batch once (num_batches_tracked, in the finish kernel). The
     * ReLU-only case (variant 1) has the _v kernels recompute the mask from x; the misaligned gradient runs it from y.
     */
    @Test void rmsNormAndGroupNormAgainstTheCpu() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            double tl = t == DType.FLOAT64 ? 1e-12 : 1e-5;
            compareGraph("rms_norm " + t, tl, in -> F.rmsNorm(in[0], new int[]{64}, in[1], 1e-6), randn(t, 8, 16, 64), randn(t, 64));
            compareGraph("rms_norm no weight " + t, tl, in -> F.rmsNorm(in[0], new int[]{3, 10}, null, Double.NaN), randn(t, 5, 3, 10));
            compareGraph("group_norm " + t, tl, in -> F.groupNorm(in[0], 4, in[1], in[2], 1e-5), randn(t, 6, 32, 7, 7), randn(t, 32), randn(t, 32));
        }
        // 16-bit inputs normalise in float32 and come back in their dtype
        Tensor x = randn(DType.FLOAT32, 4, 128).to(DType.BFLOAT16);
        Tensor c = F.rmsNorm(x, new int[]{128}, null, Double.NaN), g = F.rmsNorm(gpu(x), new int[]{128}, null, Double.NaN);
        assertEquals(DType.BFLOAT16, g.dtype());
        close(c, g, 1e-2, "rms_norm bf16");
    }

    @Test void batchNormChannelsLast() {
        int[][] shapes = {{8, 32, 7, 9}, {3, 64, 14, 14}, {4, 6, 5, 5}, {2, 40, 3, 1}, {16, 24, 20, 20}, {3, 512, 3, 3}};
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double tol = t == DType.FLOAT32 ? 1e-4 : 2e-2, gtol = t == DType.FLOAT32 ? 1e-4 : 6e-2;
            DType ct = t == DType.FLOAT32 ? DType.FLOAT64 : DType.FLOAT32;   // float32 against the double loops
            for (int[] s : shapes) {
                for (boolean training : new boolean[]{true, false}) {
                    for (int variant = 0; variant < 3; variant++) {
                        boolean relu = variant > 0, res = variant == 2, affine = variant != 2;
                        String what = "channels-last " + t + " " + java.util.Arrays.toString(s) + (training ? " training" : " eval") + " variant " + variant;
                        int c = s[1];
                        Tensor x = randn(DType.FLOAT32, s).add(c == 24 ? 4.0 : 0.0).to(t), r = res ? randn(t, s) : null, g = randn(t, s);
                        // parameters and running statistics float32 on both sides, as for every dtype but float64
                        Tensor w = affine ? randn(DType.FLOAT32, c) : null, b = affine ? randn(DType.FLOAT32, c) : null;
                        Tensor rmC = randn(DType.FLOAT32, c), rvC = positive(DType.FLOAT32, c), rmG = gpu(rmC), rvG = gpu(rvC);
                        BatchNormParams p = new BatchNormParams(training, 0.1, 1e-5, relu);
                        Tensor nG = Tensor.full(new int[0], 7, DType.INT64, GPU);
                        Tensor[] yc = CPU_BE.batchNorm(x.to(ct), w, b, rmC, rvC, null, r == null ? null : r.to(ct), p);
                        Tensor[] yg = gpuBe.batchNorm(gpuCl(x), w == null ? null : gpu(w), b == null ? null : gpu(b), rmG, rvG, nG,
                                r == null ? null : gpuCl(r), p);
                        assertEquals(training ? 8 : 7, nG.item(), what + " batches counted");
                        assertChannelsLast(yg[0], what + " y");
                        close(yc[0].to(t), yg[0], tol, what + " y");
                        close(yc[1], yg[1], tol, what + " mean");
                        close(yc[2], yg[2], tol, what + " invstd");
                        close(rmC, rmG, tol, what + " running mean");
                        close(rvC, rvG, tol, what + " running var");
                        Tensor mask = relu ? yg[0].cpu().to(ct) : null;
                        Tensor[] gc = CPU_BE.batchNormBackward(g.to(ct), mask, x.to(ct), w, b, yc[1], yc[2], p, res, true, paramGrad(w, Device.CPU), paramGrad(w, Device.CPU));
                        // the output gradient channels-last, contiguous (the kernels take either), and channels-last 4 bytes
                        // off 16-byte alignment: the y-reading kernels then, where the aligned cases recompute the ReLU's mask
                        for (Tensor gIn : new Tensor[]{gpuCl(g), gpu(g), misaligned(g)}) {
                            Tensor[] gg = gpuBe.batchNormBackward(gIn, relu ? yg[0] : null, gpuCl(x), w == null ? null : gpu(w), b == null ? null : gpu(b), yg[1], yg[2], p, res, true, paramGrad(w, GPU), paramGrad(w, GPU));
                            assertChannelsLast(gg[0], what + " dx");
                            close(gc[0].to(t), gg[0], gtol, what + " dx");
                            if (affine) {
                                close(gc[1], gg[1], gtol, what + " dweight");
                                close(gc[2], gg[2], gtol, what + " dbias");
                            }
                            if (res) close(gc[3].to(t), gg[3], gtol, what + " dresidual");
                        }
                    }
                }
            }
        }
    }

    /**
     * batch_norm_relu_max_pool's kernels (channels-last, 16-byte aligned x: the fused forward, the sums over the pooled
     * pixels, the input gradient by quads for the 3x3/2 pad 1 pool, by pixels for the 2x2/2 one) against the CPU's two
     * ops (float64, float32) and against the GPU's own two ops (every float type: the fused forward rounds as they do
     * and picks the same maxima), training and eval, with and without affine parameters. Inputs on a 1/16 lattice so that no two values of a
     * window are within rounding of each other (where the CPU, in double, and the GPU would pick different maxima).
     */
    @Test void batchNormReluMaxPool() {
        int[][] shapes = {{2, 64, 12, 12}, {3, 32, 9, 11}, {2, 8, 5, 4}, {2, 64, 56, 56}};
        Pool2dParams[] pools = {Pool2dParams.of(3, 2, 1), Pool2dParams.of(2, 2, 0)};
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            DType pt = t == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
            double tol = t == DType.FLOAT64 ? 1e-10 : t == DType.FLOAT32 ? 1e-4 : 3e-2;
            for (int[] s : shapes) {
                for (Pool2dParams pool : pools) {
                    for (boolean training : new boolean[]{true, false}) {
                        for (boolean affine : new boolean[]{true, false}) {
                            String what = t + " " + java.util.Arrays.toString(s) + " pool " + pool.kernelH() + (training ? " training" : " eval")
                                    + (affine ? " affine" : "");
                            int c = s[1];
                            Tensor x = lattice(s).to(t);
                            Tensor w = affine ? positive(pt, c) : null, b = affine ? randn(pt, c) : null;
                            Tensor rmC = randn(pt, c), rvC = positive(pt, c);
                            Tensor rmG = gpu(rmC), rvG = gpu(rvC), rm2 = gpu(rmC), rv2 = gpu(rvC);
                            BatchNormParams p = new BatchNormParams(training, 0.1, 1e-5, true);
                            Tensor nG = Tensor.full(new int[0], 3, DType.INT64, GPU);
                            Tensor wG = w == null ? null : gpu(w), bG = b == null ? null : gpu(b);
                            Tensor[] fused = gpuBe.batchNormReluMaxPool(gpuCl(x), wG, bG, rmG, rvG, nG, p, pool);
                            assertNull(fused[4], what + ": the fused kernel did not run");
                            assertEquals(training ? 4 : 3, nG.item(), what + " batches counted");
                            assertChannelsLast(fused[0], what + " y");
                            Tensor g = randn(t, fused[0].shape());
                            Tensor[] gf = gpuBe.batchNormReluMaxPoolBackward(gpuCl(g), fused[3], null, gpuCl(x), wG, bG, fused[1], fused[2], p, pool,
                                    true, paramGrad(w, GPU), paramGrad(w, GPU));
                            assertChannelsLast(gf[0], what + " dx");
                            // the GPU's two ops: the same values
                            Tensor[] bn = gpuBe.batchNorm(gpuCl(x), wG, bG, rm2, rv2, null, null, p);
                            Tensor[] pooled = gpuBe.maxPool2d(bn[0], pool);
                            close(pooled[0].cpu(), fused[0], 0, what + " y against the GPU's two ops");
                            Tensor[] g2 = gpuBe.batchNormBackward(gpuBe.maxPool2dBackward(gpuCl(g), pooled[1], s, pool), bn[0], gpuCl(x), wG, bG,
                                    bn[1], bn[2], p, false, true, paramGrad(w, GPU), paramGrad(w, GPU));
                            double two = t == DType.FLOAT64 ? 1e-12 : t == DType.FLOAT32 ? 1e-5 : 2e-2;
                            close(g2[0].cpu(), gf[0], two, what + " dx against the GPU's two ops");
                            if (affine) {
                                close(g2[1].cpu(), gf[1], two, what + " dweight against the GPU's two ops");
                                close(g2[2].cpu(), gf[2], two, what + " dbias against the GPU's two ops");
                            }
                            if (t != DType.FLOAT64 && t != DType.FLOAT32) continue;
                            // the CPU's two ops, in double
                            Tensor[] yc = CPU_BE.batchNormReluMaxPool(x.to(DType.FLOAT64), w == null ? null : w.to(DType.FLOAT64),
                                    b == null ? null : b.to(DType.FLOAT64), rmC.to(DType.FLOAT64), rvC.to(DType.FLOAT64), null, p, pool);
                            close(yc[0], fused[0], tol, what + " y");
                            close(yc[1], fused[1], tol, what + " mean");
                            close(yc[2], fused[2], tol, what + " invstd");
                            Tensor[] gc = CPU_BE.batchNormReluMaxPoolBackward(g.to(DType.FLOAT64), yc[3], yc[4], x.to(DType.FLOAT64),
                                    w == null ? null : w.to(DType.FLOAT64), b == null ? null : b.to(DType.FLOAT64), yc[1], yc[2], p, pool, true,
                                    paramGrad(w == null ? null : w.to(DType.FLOAT64), Device.CPU), paramGrad(w == null ? null : w.to(DType.FLOAT64), Device.CPU));
                            close(gc[0], gf[0], tol, what + " dx");
                            if (affine) {
                                close(gc[1], gf[1], tol, what + " dweight");
                                close(gc[2], gf[2], tol, what + " dbias");
                            }
                        }
                    }
                }
            }
        }
        // NCHW input: the backend runs the two ops (and says so by returning the batch norm's output)
        Tensor x = randn(DType.FLOAT32, 2, 16, 6, 6);
        BatchNormParams p = new BatchNormParams(true, 0.1, 1e-5, true);
        Tensor[] r = gpuBe.batchNormReluMaxPool(gpu(x), null, null, null, null, null, p, Pool2dParams.of(3, 2, 1));
        Tensor[] rc = CPU_BE.batchNormReluMaxPool(x, null, null, null, null, null, p, Pool2dParams.of(3, 2, 1));
        assertNotNull(r[4], "NCHW: the two ops");
        close(rc[0], r[0], 1e-4, "NCHW y");
    }

    /**
     * Standard normal values rounded to sixteenths (exact in every float type for |v| < 8), none equal to its
     * channel's mean: there the normalised value is exactly 0 in double but may come out either side of 0 in float32,
     * so the ReLU's mask (and the gradient through it) would legitimately differ between the CPU and the GPU.
     */
    private Tensor lattice(int... shape) {
        double[] v = randn(DType.FLOAT64, shape).toDoubleArray();
        for (int i = 0; i < v.length; i++) v[i] = Math.rint(v[i] * 16) / 16;
        int n = shape[0], c = shape[1], hw = v.length / (n * c);
        for (int ch = 0; ch < c; ch++) {
            for (boolean moved = true; moved; ) {
                double sum = 0;
                for (int b = 0; b < n; b++) for (int j = 0; j < hw; j++) sum += v[(b * c + ch) * hw + j];
                double mean = sum / (n * hw);
                moved = false;
                for (int b = 0; b < n && !moved; b++) {
                    for (int j = 0; j < hw && !moved; j++) {
                        int at = (b * c + ch) * hw + j;
                        if (v[at] == mean) { v[at] += 1.0 / 16; moved = true; }   // the mean moves by less than 1/16
                    }
                }
            }
        }
        return Tensor.of(v, shape);
    }
}
