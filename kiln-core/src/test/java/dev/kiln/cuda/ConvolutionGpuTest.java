package dev.kiln.cuda;

import dev.kiln.MemoryScope;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
/** Convolutions on cuda:0 against the CPU: cuDNN and im2col paths, the bias + ReLU epilogue, the direct small-channel kernels. Skips without a GPU. */
class ConvolutionGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(ConvolutionGpuTest.class); }

    @Test void conv2dForwardAndBackward() {
        conv2dCases("cuDNN where present");
        Dnn.setEnabled(false);
        try {
            conv2dCases("im2col + GEMM");
        } finally {
            Dnn.setEnabled(true);
        }
    }

    void conv2dCases(String path) {
        Object[][] cases = {
                {new int[]{2, 3, 9, 9}, new int[]{4, 3, 3, 3}, Conv2dParams.of(1, 1, 1, 1)},
                {new int[]{3, 4, 11, 8}, new int[]{6, 2, 3, 2}, new Conv2dParams(2, 1, 1, 0, 1, 2, 2)},
                {new int[]{1, 8, 7, 7}, new int[]{8, 1, 5, 5}, Conv2dParams.of(1, 2, 1, 8)},
                {new int[]{2, 16, 12, 12}, new int[]{32, 16, 1, 1}, Conv2dParams.of(1, 0, 1, 1)}};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            double tl = t == DType.FLOAT64 ? 1e-11 : 1e-4;
            for (Object[] c : cases) {
                int[] xs = (int[]) c[0], ws = (int[]) c[1];
                Conv2dParams p = (Conv2dParams) c[2];
                Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, ws[0]);
                String what = path + ": conv2d " + java.util.Arrays.toString(xs) + " " + java.util.Arrays.toString(ws) + " " + p + " " + t;
                Tensor yc = CPU_BE.conv2d(x, w, bias, p), yg = gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), p);
                close(yc, yg, tl, what);
                close(CPU_BE.conv2d(x.permute(0, 1, 3, 2), w, null, p), gpuBe.conv2d(gpu(x).permute(0, 1, 3, 2), gpu(w), null, p), tl, what + " (transposed input, no bias)");
                Tensor gy = randn(t, yc.shape());
                close(CPU_BE.conv2dBackwardInput(gy, w, xs, p), gpuBe.conv2dBackwardInput(gpu(gy), gpu(w), xs, p), tl, what + " backward input");
                close(CPU_BE.conv2dBackwardWeight(gy, x, ws, p), gpuBe.conv2dBackwardWeight(gpu(gy), gpu(x), ws, p), tl, what + " backward weight");
            }
        }
    }

    /**
     * The conv epilogue (bias + ReLU in place) and its backward (ReLU mask + bias gradient), float32/64 and bfloat16,
     * for inner sizes that take the 4-wide kernels (36) and those that do not (35), with and without bias.
     */

    /**
     * The CPU's convolution with a residual added before the optional ReLU. 16-bit values are computed in float32 and
     * rounded once, as the GPU's epilogue does: the CPU's 16-bit path rounds the convolution before adding the residual,
     * half a unit of the larger sum off where the two nearly cancel (a bfloat16 case failed at 2.2% so).
     */
    private static Tensor withResidual(Tensor x, Tensor w, Tensor bias, Tensor r, Conv2dParams p, boolean relu) {
        DType t = x.dtype();
        if (t != DType.BFLOAT16 && t != DType.FLOAT16) return CPU_BE.conv2d(x, w, bias, r, p, relu);
        DType f = DType.FLOAT32;
        return CPU_BE.conv2d(x.to(f), w.to(f), bias == null ? null : bias.to(f), r.to(f), p, relu).to(t);
    }

    private static Tensor abs32(Tensor t) { return t.to(DType.FLOAT32).abs(); }

    /**
     * A 16-bit result against its reference within 4 unit roundoffs of its terms' magnitude ({@link #closeToBound}: each
     * side rounds the products' sum, and the epilogue's adds, once or twice); other dtypes by {@link #close} with tl.
     */
    private static void closeOrBound(DType t, Tensor ref, Tensor got, double tl, java.util.function.Supplier<Tensor> terms, String what) {
        if (t == DType.BFLOAT16 || t == DType.FLOAT16) closeToBound(ref, got, terms.get(), 4 * unitRoundoff(t), what);
        else close(ref, got, tl, what);
    }

    @Test void convBiasReluEpilogueAndBackward() {
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            for (int[] xs : new int[][]{{5, 3, 6, 6}, {4, 2, 5, 7}, {130, 3, 2, 2}}) {
                Tensor x = randn(t, xs), w = randn(t, 8, xs[1], 3, 3), bias = randn(t, 8);
                String what = "conv2d+relu " + java.util.Arrays.toString(xs) + " " + t;
                double tl = t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-11 : 1e-4;
                Tensor yc = CPU_BE.conv2d(x, w, bias, p, true), yg = gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), p, true);
                close(yc, yg, tl, what);
                close(CPU_BE.conv2d(x, w, null, p, true), gpuBe.conv2d(gpu(x), gpu(w), null, p, true), tl, what + " (no bias)");
                // a residual added before the ReLU, in y's layout and in the other (copied to y's)
                // (16-bit: the residual can cancel most of the sum, so the error is held to Σ|x||w| + |bias| + |r|; 2% of the
                // result's size failed once at 2.2%)
                Tensor r = randn(t, yc.shape()), yrc = withResidual(x, w, bias, r, p, true);
                java.util.function.Supplier<Tensor> terms = () -> CPU_BE.conv2d(abs32(x), abs32(w), abs32(bias), abs32(r), p, false);
                closeOrBound(t, yrc, gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), gpu(r), p, true), tl, terms, what + " (residual)");
                closeOrBound(t, yrc, gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), gpuCl(r), p, true), tl, terms, what + " (channels-last residual)");
                // the backward on the CPU output (so both see the same mask) and a fresh gradient
                Tensor g = randn(t, yc.shape());
                for (boolean relu : new boolean[]{true, false}) {
                    for (boolean biasGrad : new boolean[]{true, false}) {
                        if (!relu && !biasGrad) continue;
                        Tensor[] c = CPU_BE.biasReluBackward(g, yc, relu, biasGrad), d = gpuBe.biasReluBackward(gpu(g), gpu(yc), relu, biasGrad);
                        String how = what + " backward relu=" + relu + " bias=" + biasGrad;
                        close(c[0], d[0], t == DType.BFLOAT16 ? 0 : tol(t), how + " dz");
                        if (biasGrad) close(c[1], d[1], t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-12 : 1e-5, how + " dbias");
                        else assertNull(d[1], how);
                    }
                }
            }
            // channels-last: 4-channel packs over rows (threads per pack 256 / (C / 4): 8, 1, 85 of 256 used), and the
            // general kernel for channels not a multiple of 4
            for (int[] s : new int[][]{{64, 32, 5, 5}, {3, 1024, 2, 2}, {2, 12, 3, 3}, {5, 6, 3, 3}}) {
                double tl = t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-12 : 1e-5;
                Tensor y = randn(t, s).relu(), g = randn(t, s);
                for (boolean relu : new boolean[]{true, false}) {
                    String how = "channels-last bias_relu backward " + java.util.Arrays.toString(s) + " relu=" + relu + " " + t;
                    Tensor[] c = CPU_BE.biasReluBackward(g, y, relu, true), d = gpuBe.biasReluBackward(gpuCl(g), gpuCl(y), relu, true);
                    assertChannelsLast(d[0], how + " dz");
                    close(c[0], d[0], t == DType.BFLOAT16 ? 0 : tol(t), how + " dz");
                    close(c[1], d[1], tl, how + " dbias");
                }
            }
        }
    }

    /**
     * The direct kernels for few input channels (conv_small_*): forward with the epilogue, and the weight and bias
     * gradients with the ReLU mask fused, against the CPU's composite, every variant, float32/64 and bfloat16.
     */

    @Test void smallChannelConvolutions() {
        int[][] cases = {{1, 3, 0}, {3, 3, 1}, {1, 5, 2}, {3, 5, 0}}; // channels, kernel, padding
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            double tl = t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-11 : 1e-4;
            for (int[] c : cases) {
                Conv2dParams p = Conv2dParams.of(1, c[2], 1, 1);
                int[] xs = {5, c[0], 11, 9}, ws = {8, c[0], c[1], c[1]};
                Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, 8);
                String what = "small conv c" + c[0] + " k" + c[1] + " pad " + c[2] + " " + t;
                for (boolean relu : new boolean[]{true, false}) {
                    Tensor yc = CPU_BE.conv2d(x, w, bias, p, relu);
                    close(yc, gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), p, relu), tl, what + " forward relu=" + relu);
                    Tensor g = randn(t, yc.shape());
                    // 16-bit: the reference from the same values in float32 (the CPU's 16-bit weight gradient rounds partial
                    // sums), the error held to Σ|g||x| over the unmasked pixels (each bfloat16 weight gradient sums
                    // hundreds of products that cancel: 2% of the mean magnitude failed at 2.4% once, 3% held)
                    boolean half = t == DType.BFLOAT16;
                    Tensor g32 = half ? g.to(DType.FLOAT32) : g, y32 = half ? yc.to(DType.FLOAT32) : yc, x32 = half ? x.to(DType.FLOAT32) : x;
                    for (boolean biasGrad : new boolean[]{true, false}) {
                        Tensor[] cpu = CPU_BE.conv2dBackwardWeightAndBias(g32, y32, x32, ws, p, relu, biasGrad);
                        Tensor[] dev = gpuBe.conv2dBackwardWeightAndBias(gpu(g), gpu(yc), gpu(x), ws, p, relu, biasGrad);
                        String how = what + " relu=" + relu + " bias=" + biasGrad;
                        boolean mask = relu;
                        closeOrBound(t, cpu[0], dev[0], tl, () -> CPU_BE.conv2dBackwardWeightAndBias(abs32(g), y32, abs32(x), ws, p, mask, false)[0], how + " dw");
                        if (biasGrad) close(cpu[1], dev[1], tl, how + " dbias");
                        else assertNull(dev[1], how);
                    }
                }
            }
        }
        // channels-last activations (as Model.channelsLast makes them; one channel by toChannelsLast's strides): read,
        // written and given back so; a pixel's channels spread over threads where the output channels are a power of
        // two (8, 32, 64: the _lanes kernels, with more pixels than one wave of threads so that each takes several),
        // a thread a pixel where not (6)
        int[][] clCases = {{1, 3, 1, 8, 3}, {3, 3, 1, 8, 3}, {3, 3, 0, 6, 3}, {1, 5, 2, 8, 3}, // channels, kernel, padding, outputs, images
                           {1, 3, 0, 32, 120}, {3, 3, 1, 64, 120}, {3, 5, 2, 32, 40}};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.FLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-4 : t == DType.FLOAT64 ? 1e-11 : 2e-2;
            for (int[] c : clCases) {
                Conv2dParams p = Conv2dParams.of(1, c[2], 1, 1);
                int[] xs = {c[4], c[0], 10, 9}, ws = {c[3], c[0], c[1], c[1]};
                Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, c[3]);
                String what = "channels-last small conv c" + c[0] + " k" + c[1] + " pad " + c[2] + " o " + c[3] + " " + t;
                Tensor yc = CPU_BE.conv2d(x, w, bias, p, true), yg = gpuBe.conv2d(gpuCl(x), gpu(w), gpu(bias), p, true);
                assertChannelsLast(yg, what + " y");
                close(yc, yg, tl, what + " y");
                Tensor g = randn(t, yc.shape());
                // the reference from the same values in float32: the CPU's 16-bit weight gradient rounds partial sums
                // (thousands of pixels: 3.3% off the kernel's float32 sums at bfloat16)
                java.util.function.UnaryOperator<Tensor> wide = v -> t == DType.BFLOAT16 || t == DType.FLOAT16 ? v.to(DType.FLOAT32) : v;
                Tensor[] cpu = CPU_BE.conv2dBackwardWeightAndBias(wide.apply(g), wide.apply(yc), wide.apply(x), ws, p, true, true);
                Tensor[] dev = gpuBe.conv2dBackwardWeightAndBias(gpuCl(g), gpuCl(yc), gpuCl(x), ws, p, true, true);   // one ReLU mask
                closeOrBound(t, cpu[0], dev[0], tl, () -> CPU_BE.conv2dBackwardWeightAndBias(abs32(g), wide.apply(yc), abs32(x), ws, p, true, false)[0], what + " dw");
                close(cpu[1], dev[1], tl, what + " dbias");
            }
        }
    }

    /** Channels-last inputs run cuDNN's NHWC path: outputs and input gradients channels-last, all equal to the CPU's. */
    @Test void convTranspose2dForwardAndBackward() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            double tl = t == DType.FLOAT64 ? 1e-10 : 1e-4;
            compareGraph("conv_transpose2d stride 2 " + t, tl, in -> dev.kiln.nn.F.convTranspose2d(in[0], in[1], in[2], Conv2dParams.of(2, 1, 1, 1), 1),
                    randn(t, 4, 16, 7, 7), randn(t, 16, 8, 3, 3), randn(t, 8));
            compareGraph("conv_transpose2d groups, dilation " + t, tl, in -> dev.kiln.nn.F.convTranspose2d(in[0], in[1], null, Conv2dParams.of(1, 2, 2, 2), 0),
                    randn(t, 2, 6, 9, 9), randn(t, 6, 2, 3, 3));
        }
        // the decoder's other upsampling: nearest-neighbour, then a padded convolution (composites of views on the GPU)
        compareGraph("upsample and pad", 1e-5, in -> dev.kiln.nn.F.pad(dev.kiln.nn.F.upsampleNearest(in[0], 2), new int[]{1, 0, 0, 1}, 0),
                randn(DType.FLOAT32, 2, 3, 5, 4));
        // channels-last input (the filter taken channels-last too, as conv2d does)
        Tensor x = randn(DType.FLOAT32, 4, 32, 8, 8), w = randn(DType.FLOAT32, 32, 16, 4, 4);
        close(dev.kiln.nn.F.convTranspose2d(x, w, null, Conv2dParams.of(2, 1, 1, 1), 0),
                dev.kiln.nn.F.convTranspose2d(gpuCl(x), gpu(w), null, Conv2dParams.of(2, 1, 1, 1), 0), 1e-4, "conv_transpose2d channels-last");
    }

    @Test void channelsLastConvolutions() {
        Object[][] cases = {
                {new int[]{2, 16, 9, 9}, new int[]{8, 16, 3, 3}, Conv2dParams.of(1, 1, 1, 1)},
                {new int[]{4, 8, 12, 10}, new int[]{16, 8, 1, 1}, Conv2dParams.of(2, 0, 1, 1)},
                {new int[]{2, 3, 15, 15}, new int[]{8, 3, 7, 7}, Conv2dParams.of(2, 3, 1, 1)},   // a ResNet stem
                {new int[]{2, 8, 7, 7}, new int[]{8, 4, 3, 3}, Conv2dParams.of(1, 1, 1, 2)},
                {new int[]{2, 8, 6, 6}, new int[]{6, 8, 3, 3}, Conv2dParams.of(1, 1, 1, 1)},   // channels not a multiple of 4
        };
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-4 : 2e-2;
            for (Object[] c : cases) {
                int[] xs = (int[]) c[0], ws = (int[]) c[1];
                Conv2dParams p = (Conv2dParams) c[2];
                String what = "channels-last conv " + java.util.Arrays.toString(xs) + " w " + java.util.Arrays.toString(ws) + " " + p + " " + t;
                Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, ws[0]);
                Tensor xg = gpuCl(x), wg = gpu(w);
                Tensor yc = CPU_BE.conv2d(x, w, null, p, false), yg = gpuBe.conv2d(xg, wg, null, p, false);
                assertChannelsLast(yg, what + " y");
                close(yc, yg, tl, what + " y");
                Tensor ybc = CPU_BE.conv2d(x, w, bias, p, true), ybg = gpuBe.conv2d(xg, wg, gpu(bias), p, true);
                assertChannelsLast(ybg, what + " y (bias, relu)");
                close(ybc, ybg, tl, what + " y (bias, relu)");
                // the residual epilogue: channels-last, one element off a 16-byte boundary, contiguous (copied to y's layout)
                Tensor r = randn(t, yc.shape()), yrc = withResidual(x, w, bias, r, p, true), yrg = gpuBe.conv2d(xg, wg, gpu(bias), gpuCl(r), p, true);
                assertChannelsLast(yrg, what + " y (bias, residual, relu)");
                close(yrc, yrg, tl, what + " y (bias, residual, relu)");
                close(yrc, gpuBe.conv2d(xg, wg, gpu(bias), misaligned(r), p, true), tl, what + " y (misaligned residual)");
                close(withResidual(x, w, null, r, p, false), gpuBe.conv2d(xg, wg, null, gpu(r), p, false), tl, what + " y (contiguous residual alone)");
                Tensor g = randn(t, yc.shape()), gg = gpuCl(g);
                // the filter channels-last (KRSC, as the op layer makes it) here, contiguous in the forward above
                Tensor dx = gpuBe.conv2dBackwardInput(gg, gpuCl(w), xs, p);
                assertChannelsLast(dx, what + " dx");
                close(CPU_BE.conv2dBackwardInput(g, w, xs, p), dx, tl * 2, what + " dx");
                close(yc, gpuBe.conv2d(xg, gpuCl(w), null, p, false), tl, what + " y (KRSC filter)");
                Tensor dw = gpuBe.conv2dBackwardWeight(gg, xg, ws, p);
                if (ws[2] * ws[3] > 1) assertChannelsLast(dw, what + " dw (KRSC)");
                close(CPU_BE.conv2dBackwardWeight(g, x, ws, p), dw, tl * 5, what + " dw");
                // the bias + ReLU backward on the CPU's output (one mask on both sides)
                Tensor[] bc = CPU_BE.biasReluBackward(g, ybc, true, true), bg = gpuBe.biasReluBackward(gg, gpuCl(ybc), true, true);
                assertChannelsLast(bg[0], what + " dz");
                close(bc[0], bg[0], tl, what + " dz");
                close(bc[1], bg[1], tl * 5, what + " dbias");
            }
        }
    }

    /**
     * ResNet's stem in bfloat16: the forward takes the TF32 stem kernel (bfloat16 values are TF32 values, so only the
     * float32 sums and the output's rounding differ from the CPU's), with bias, ReLU and a residual; the weight gradient
     * stays with cuDNN and matches too.
     */
    @Test void bfloat16StemForward() {
        Assumptions.assumeTrue(Cuda.device(GPU).ccMajor() >= 8, "tensor cores need sm_80");
        DType t = DType.BFLOAT16;
        for (Conv2dParams p : new Conv2dParams[]{Conv2dParams.of(2, 3, 1, 1), Conv2dParams.of(1, 2, 1, 1)}) {
            int[] xs = {2, 3, 23, 30}, ws = {64, 3, 7, 7};
            String what = "bf16 stem " + p;
            Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, 64), xg = gpuCl(x);
            Tensor yc = CPU_BE.conv2d(x, w, bias, p, true), yg = gpuBe.conv2d(xg, gpuCl(w), gpu(bias), p, true);
            assertChannelsLast(yg, what + " y");
            close(yc, yg, 2e-2, what + " y (bias, relu)");
            Tensor r = randn(t, yc.shape());
            close(CPU_BE.conv2d(x, w, null, r, p, false), gpuBe.conv2d(xg, gpu(w), null, gpuCl(r), p, false), 2e-2, what + " y (residual)");
            Tensor g = randn(t, yc.shape());
            close(CPU_BE.conv2dBackwardWeight(g, x, ws, p), gpuBe.conv2dBackwardWeight(gpuCl(g), xg, ws, p), 5e-2, what + " dw");
        }
    }

    /**
     * 1x1 convolutions of stride 1 over channels-last activations with an epilogue run as one cuBLASLt product whose
     * epilogue adds the bias, the residual (C) and the ReLU: every combination against the CPU, float32 (TF32 off, then
     * on with TF32-rounded operands) and bfloat16, a row count that is no multiple of anything, and cuBLASLt asserted to
     * have taken them (autograd off, as in inference: while it records, a ReLU stays with the epilogue kernel, and the
     * values are checked that way too); a stride-2 1x1 convolution keeps cuDNN and the epilogue kernel.
     */
    @Test void pointwiseConvolutionsInTheProductsEpilogue() {
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        Assumptions.assumeTrue(lt != null, "no cuBLASLt");
        int[] xs = {3, 24, 7, 5};
        int k = 40, rows = 3 * 7 * 5;
        Conv2dParams p = Conv2dParams.of(1, 0, 1, 1);
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            for (boolean tf32 : t == DType.FLOAT32 ? new boolean[]{false, true} : new boolean[]{true}) {
                Cuda.setAllowTf32Conv(GPU, tf32);
                try {
                    double tl = t == DType.BFLOAT16 ? 3e-2 : t == DType.FLOAT16 ? 5e-3 : tf32 ? 1e-5 : 1e-4;
                    Tensor x = randn(t, xs), w = randn(t, k, 24, 1, 1), bias = randn(t, k), r = randn(t, 3, k, 7, 5);
                    if (t == DType.FLOAT32 && tf32) {
                        x = tf32(x);
                        w = tf32(w);
                    }
                    Tensor xg = gpuCl(x);
                    for (int mask = 1; mask < 8; mask++) {
                        boolean withBias = (mask & 1) != 0, withRes = (mask & 2) != 0, relu = (mask & 4) != 0;
                        String what = "1x1 conv " + t + " tf32=" + tf32 + " bias=" + withBias + " residual=" + withRes + " relu=" + relu;
                        Tensor yc = CPU_BE.conv2d(x, w, withBias ? bias : null, withRes ? r : null, p, relu);
                        Tensor yg = gpuBe.conv2d(xg, gpu(w), withBias ? gpu(bias) : null, withRes ? gpuCl(r) : null, p, relu);
                        assertChannelsLast(yg, what);
                        close(yc, yg, tl, what);
                        CublasLt.Epilogue e = withBias ? (relu ? CublasLt.Epilogue.RELU_BIAS : CublasLt.Epilogue.BIAS)
                                : relu ? CublasLt.Epilogue.RELU : CublasLt.Epilogue.DEFAULT;
                        assertTrue(withRes ? lt.acceptedAdding(t, t, e, k, rows, 24) : lt.accepted(t, t, e, k, rows, 24), what + ": cuBLASLt did not take it: " + lt.lastRefusal);
                    }
                    // stride 2: not a product of the activations as they lie
                    Conv2dParams s2 = Conv2dParams.of(2, 0, 1, 1);
                    close(CPU_BE.conv2d(x, w, bias, null, s2, true), gpuBe.conv2d(xg, gpu(w), gpu(bias), null, s2, true), tl, "1x1 stride 2 " + t);
                } finally {
                    Cuda.setAllowTf32Conv(GPU, false);
                }
            }
        }
    }

    /**
     * ResNet's stem on tensor cores (conv_stem_*: 3 channels, 7x7, channels-last, output channels a multiple of 64):
     * float32 with TF32 allowed against the CPU on the same operands rounded to TF32 (so the products are exact and
     * only the float32 sums differ); output sizes that leave partial tiles, strides 1 and 2, 64 and 128 output channels,
     * bias and ReLU, channels-last and contiguous filters, the weight (and bias) gradient.
     */
    @Test void stemConvolutionOnTensorCores() {
        Assumptions.assumeTrue(Cuda.device(GPU).ccMajor() >= 8, "TF32 tensor cores need sm_80");
        Object[][] cases = {
                {new int[]{3, 3, 37, 45}, 64, Conv2dParams.of(2, 3, 1, 1)},
                {new int[]{2, 3, 20, 17}, 128, Conv2dParams.of(1, 2, 1, 1)},
                {new int[]{1, 3, 9, 9}, 64, Conv2dParams.of(2, 0, 1, 1)}};
        DType t = DType.FLOAT32;
        double tl = 1e-5;
        Cuda.setAllowTf32Conv(GPU, true);
        try {
            for (Object[] c : cases) {
                int[] xs = (int[]) c[0], ws = {(int) c[1], 3, 7, 7};
                Conv2dParams p = (Conv2dParams) c[2];
                String what = "stem conv " + java.util.Arrays.toString(xs) + " -> " + ws[0] + " " + p;
                Tensor x = tf32(randn(t, xs)), w = tf32(randn(t, ws)), bias = randn(t, ws[0]);
                Tensor xg = gpuCl(x);
                Tensor yc = CPU_BE.conv2d(x, w, null, p, false), yg = gpuBe.conv2d(xg, gpuCl(w), null, p, false);
                assertChannelsLast(yg, what + " y");
                close(yc, yg, tl, what + " y");
                // a contiguous (KCRS) filter, read through its strides; bias and ReLU in the epilogue
                Tensor ybc = CPU_BE.conv2d(x, w, bias, p, true), ybg = gpuBe.conv2d(xg, gpu(w), gpu(bias), p, true);
                close(ybc, ybg, tl, what + " y (bias, relu)");
                Tensor r = randn(t, yc.shape());   // a residual after the stem's own epilogue
                close(CPU_BE.conv2d(x, w, bias, r, p, true), gpuBe.conv2d(xg, gpuCl(w), gpu(bias), gpuCl(r), p, true), tl, what + " y (bias, residual, relu)");
                Tensor g = tf32(randn(t, yc.shape())), gg = gpuCl(g);
                Tensor dw = gpuBe.conv2dBackwardWeight(gg, xg, ws, p);
                close(CPU_BE.conv2dBackwardWeight(g, x, ws, p), dw, tl, what + " dw");
                // a channels-last gradient one element past a 16-byte boundary (the kernel's 16-byte loads get an aligned copy)
                close(CPU_BE.conv2dBackwardWeight(g, x, ws, p), gpuBe.conv2dBackwardWeight(misaligned(g), xg, ws, p), tl, what + " dw, misaligned g");
                // a first layer's backward: the ReLU mask and the bias gradient, then the weight gradient
                Tensor[] cpu = CPU_BE.conv2dBackwardWeightAndBias(g, ybc, x, ws, p, true, true);
                Tensor[] dev = gpuBe.conv2dBackwardWeightAndBias(gg, gpuCl(ybc), xg, ws, p, true, true);
                close(cpu[0], dev[0], tl, what + " dw (relu, bias)");
                close(cpu[1], dev[1], tl, what + " dbias");
            }
        } finally {
            Cuda.setAllowTf32Conv(GPU, false);
        }
    }

    /**
     * The weight gradient of 3x3 convolutions with 32 or 64 output channels and 32, 64 or up to 8 input channels on
     * tensor cores (conv_tap_wgrad: float32 with TF32 allowed, channels-last) against the CPU on the same operands
     * rounded to TF32: partial 8 x 8 tiles,
     * padding 0 and 1, 32 x 32-channel blocks side by side, blocks looping over several tiles (40 images of 32 x 32),
     * a misaligned and a contiguous gradient (copied), and the ReLU mask and bias gradient before it. With the direct
     * kernels off (cuDNN's algorithms) and under the timed search (the faster of the two), the same sums.
     */
    @Test void tapWeightGradientOnTensorCores() {
        Assumptions.assumeTrue(Cuda.device(GPU).ccMajor() >= 8, "TF32 tensor cores need sm_80");
        Object[][] cases = {
                {new int[]{3, 32, 10, 13}, 64, Conv2dParams.of(1, 1, 1, 1)},
                {new int[]{2, 64, 9, 9}, 32, Conv2dParams.of(1, 0, 1, 1)},
                {new int[]{2, 64, 16, 16}, 64, Conv2dParams.of(1, 1, 1, 1)},
                {new int[]{40, 32, 32, 32}, 32, Conv2dParams.of(1, 1, 1, 1)},
                // up to 8 input channels: a first layer (CIFAR's, MNIST's), 5 channels of a block of 8
                {new int[]{4, 3, 32, 32}, 32, Conv2dParams.of(1, 1, 1, 1)},
                {new int[]{3, 1, 28, 28}, 64, Conv2dParams.of(1, 0, 1, 1)},
                {new int[]{2, 5, 11, 9}, 32, Conv2dParams.of(1, 1, 1, 1)}};
        DType t = DType.FLOAT32;
        double tl = 1e-5;
        Cuda.setAllowTf32Conv(GPU, true);
        try {
            for (Object[] c : cases) {
                int[] xs = (int[]) c[0], ws = {(int) c[1], xs[1], 3, 3};
                Conv2dParams p = (Conv2dParams) c[2];
                String what = "tap wgrad " + java.util.Arrays.toString(xs) + " -> " + ws[0] + " " + p;
                Tensor x = tf32(randn(t, xs)), xg = gpuCl(x);
                int[] ys = {xs[0], ws[0], p.outH(xs[2], 3), p.outW(xs[3], 3)};
                Tensor g = tf32(randn(t, ys)), gg = gpuCl(g), want = CPU_BE.conv2dBackwardWeight(g, x, ws, p);
                Tensor dw = gpuBe.conv2dBackwardWeight(gg, xg, ws, p);
                assertChannelsLast(dw, what + " dw");
                close(want, dw, tl, what + " dw");
                close(want, gpuBe.conv2dBackwardWeight(misaligned(g), xg, ws, p), tl, what + " dw, misaligned g");
                close(want, gpuBe.conv2dBackwardWeight(gpu(g), xg, ws, p), tl, what + " dw, contiguous g");
                ConvolutionCuda.setSmallConvEnabled(false);
                try {
                    close(want, gpuBe.conv2dBackwardWeight(gg, xg, ws, p), 1e-4, what + " dw, cuDNN");
                } finally {
                    ConvolutionCuda.setSmallConvEnabled(true);
                }
                // the timed search: the first call times this kernel against cuDNN's pick, later ones take the faster
                boolean search = Cuda.cudnnBenchmark();
                Cuda.setCudnnBenchmark(true);
                try {
                    for (int i = 0; i < 2; i++) close(want, gpuBe.conv2dBackwardWeight(gg, xg, ws, p), 1e-4, what + " dw, timed search " + i);
                } finally {
                    Cuda.setCudnnBenchmark(search);
                }
                Tensor y = randn(t, ys).relu();
                Tensor[] cpu = CPU_BE.conv2dBackwardWeightAndBias(g, y, x, ws, p, true, true);
                Tensor[] dev = gpuBe.conv2dBackwardWeightAndBias(gg, gpuCl(y), xg, ws, p, true, true);
                close(cpu[0], dev[0], tl, what + " dw (relu, bias)");
                close(cpu[1], dev[1], tl, what + " dbias");
            }
        } finally {
            Cuda.setAllowTf32Conv(GPU, false);
        }
    }

    /** t's float32 values rounded to TF32 as the tensor cores' operands are (cvt.rna: nearest, ties away from 0). */
    private static Tensor tf32(Tensor t) {
        double[] v = t.toDoubleArray();
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) r[i] = Float.intBitsToFloat((Float.floatToRawIntBits((float) v[i]) + 0x1000) & 0xFFFFE000);
        return Tensor.of(r, t.shape());
    }

    /**
     * An input's gradient from its other consumers (a residual block's skip path) added by cuDNN into that gradient in
     * place: at the backend, in place exactly when the addend is laid out as the result, a separate add otherwise;
     * through autograd, for the skip path's gradient made before and after the convolution's backward, shared with
     * the convolution's own incoming gradient (x + conv(x): it must not be written) and from a second convolution.
     */
    @Test void inputGradientAddsTheOtherConsumersGradient() {
        int[] xs = {2, 16, 9, 9}, ws = {16, 16, 3, 3};
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-4 : 2e-2;
            Tensor w = randn(t, ws), g = randn(t, xs), a = randn(t, xs);
            Tensor want = CPU_BE.conv2dBackwardInput(g, w, xs, p).to(DType.FLOAT64).add(a.to(DType.FLOAT64)).to(t);
            for (boolean cl : new boolean[]{false, true}) {
                Tensor gg = cl ? gpuCl(g) : gpu(g), wg = cl ? gpuCl(w) : gpu(w);
                Tensor same = cl ? gpuCl(a) : gpu(a), other = cl ? gpu(a) : gpuCl(a);
                String what = t + (cl ? " channels-last" : " NCHW");
                Tensor into = gpuBe.conv2dBackwardInput(gg, wg, xs, p, same);
                assertTrue(into == same, what + ": an addend laid out as the result is accumulated into");
                close(want, into, tl * 2, what + ": in place");
                Tensor sum = gpuBe.conv2dBackwardInput(gg, wg, xs, p, other);
                assertTrue(sum != other, what + ": an addend in the other layout is not written");
                close(want, sum, tl * 2, what + ": other layout");
                close(a, other, 0, what + ": the other-layout addend unchanged");
            }
        }
        Tensor x = randn(DType.FLOAT32, xs), w1 = randn(DType.FLOAT32, ws), w2 = randn(DType.FLOAT32, 16, 16, 1, 1);
        for (boolean cl : new boolean[]{false, true}) {
            String l = cl ? " channels-last" : " NCHW";
            java.util.function.Function<Tensor, Tensor> lay = v -> cl ? v.toChannelsLast() : v;
            compareGraph("conv(x) + 3x" + l, 1e-4, in -> {
                Tensor v = lay.apply(in[0]);
                return dev.kiln.ops.Convolution.conv2d(v, in[1], null, p).add(v.mul(3));
            }, x, w1);
            compareGraph("3x + conv(x)" + l, 1e-4, in -> {
                Tensor v = lay.apply(in[0]);
                return v.mul(3).add(dev.kiln.ops.Convolution.conv2d(v, in[1], null, p));
            }, x, w1);
            compareGraph("conv(x) + x" + l, 1e-4, in -> {
                Tensor v = lay.apply(in[0]);
                return dev.kiln.ops.Convolution.conv2d(v, in[1], null, p).add(v);
            }, x, w1);
            compareGraph("conv(relu(conv(x))) + conv1x1(x)" + l, 1e-4, in -> {
                Tensor v = lay.apply(in[0]);
                Tensor h = dev.kiln.ops.Convolution.conv2d(v, in[1], null, p, true);
                return dev.kiln.ops.Convolution.conv2d(h, in[1], null, p).add(dev.kiln.ops.Convolution.conv2d(v, in[2], null, Conv2dParams.of(1, 0, 1, 1)));
            }, x, w1, w2);
        }
    }
}
