package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Matrix products and the nn ops of F: gradients against float64 finite differences. */
class NnGradTest {

    // ---------------------------------------------------------------- matmul, linear

    @Test void matmul2dAndTransposedOperands() {
        GradCheck.check(x -> x[0].matmul(x[1]), randn(1, 3, 4), randn(2, 4, 2));
        GradCheck.check(x -> x[0].t().matmul(x[1].t()), randn(3, 4, 3), randn(4, 2, 4));
    }

    @Test void matmulBatchedAndBroadcast() {
        GradCheck.check(x -> x[0].matmul(x[1]), randn(5, 2, 3, 4), randn(6, 2, 4, 2));
        GradCheck.check(x -> x[0].matmul(x[1]), randn(7, 2, 1, 3, 4), randn(8, 3, 4, 2));   // batch broadcast
        GradCheck.check(x -> x[0].matmul(x[1]), randn(9, 2, 3, 4), randn(10, 4, 2));        // folded batch x 2-D
        GradCheck.check(x -> x[0].matmul(x[1]), randn(11, 3, 4), randn(12, 2, 4, 2));       // 2-D x batch
        GradCheck.check(x -> x[0].transpose(1, 2).matmul(x[1].expand(2, 4, 2)), randn(13, 2, 4, 3), randn(14, 1, 4, 2));
    }

    @Test void matmulOneDimensional() {
        GradCheck.check(x -> x[0].matmul(x[1]), randn(15, 4), randn(16, 4));       // dot
        GradCheck.check(x -> x[0].matmul(x[1]), randn(17, 4), randn(18, 4, 3));    // vector x matrix
        GradCheck.check(x -> x[0].matmul(x[1]), randn(19, 2, 3, 4), randn(20, 4)); // batch x vector
        assertArrayEquals(new int[]{}, randn(15, 4).matmul(randn(16, 4)).shape());
    }

    @Test void linearAnyLeadingDims() {
        GradCheck.check(x -> F.linear(x[0], x[1], x[2]), randn(21, 3, 4), randn(22, 2, 4), randn(23, 2));
        GradCheck.check(x -> F.linear(x[0], x[1], null), randn(24, 2, 3, 4), randn(25, 5, 4));
        GradCheck.check(x -> F.linear(x[0].transpose(0, 1), x[1], x[2]), randn(26, 3, 2, 4), randn(27, 2, 4), randn(28, 2));
    }

    // ---------------------------------------------------------------- convolution, pooling

    private static void checkConv(Conv2dParams p, int n, int c, int h, int w, int o, int k, boolean bias) {
        Tensor x = randn(31, n, c, h, w), wt = randn(32, o, c / p.groups(), k, k);
        if (bias) GradCheck.check(t -> F.conv2d(t[0], t[1], t[2], p), x, wt, randn(33, o));
        else GradCheck.check(t -> F.conv2d(t[0], t[1], null, p), x, wt);
    }

    @Test void conv2dPlain() { checkConv(Conv2dParams.of(1, 0, 1, 1), 2, 2, 5, 4, 3, 3, true); }

    @Test void conv2dStrideAndPadding() { checkConv(new Conv2dParams(2, 1, 1, 2, 1, 1, 1), 1, 2, 5, 5, 2, 3, true); }

    @Test void conv2dDilation() { checkConv(Conv2dParams.of(1, 1, 2, 1), 1, 2, 6, 6, 2, 3, false); }

    @Test void conv2dGroups() { checkConv(Conv2dParams.of(1, 1, 1, 2), 2, 4, 4, 4, 6, 3, true); }

    @Test void conv2dDepthwiseOnNonContiguousInput() {
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 3);
        GradCheck.check(t -> F.conv2d(t[0].permute(0, 3, 1, 2), t[1], t[2], p), randn(34, 1, 4, 4, 3), randn(35, 3, 1, 3, 3), randn(36, 3));
    }

    @Test void conv2dReluFusedGradient() {
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        GradCheck.check(t -> Convolution.conv2d(t[0], t[1], t[2], p, true), randn(37, 2, 3, 5, 4), randn(38, 4, 3, 3, 3), randn(39, 4));
        GradCheck.check(t -> Convolution.conv2d(t[0], t[1], null, p, true), randn(40, 1, 2, 4, 4), randn(41, 3, 2, 3, 3));
    }

    /** The fused op against relu(conv2d(...)): equal values and gradients, float32, inner sizes with and without a 4-multiple. */
    @Test void conv2dReluFusedEqualsTheComposite() {
        for (int[] xs : new int[][]{{3, 4, 6, 6}, {2, 3, 5, 7}}) {
            Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
            Tensor x = randn(42, xs).to(DType.FLOAT32), w = randn(43, 5, xs[1], 3, 3).to(DType.FLOAT32), b = randn(44, 5).to(DType.FLOAT32);
            Tensor gy = randn(45, xs[0], 5, xs[2], xs[3]).to(DType.FLOAT32);
            Tensor[] fused = {x.detach().requiresGrad(true), w.detach().requiresGrad(true), b.detach().requiresGrad(true)};
            Tensor[] comp = {x.detach().requiresGrad(true), w.detach().requiresGrad(true), b.detach().requiresGrad(true)};
            Tensor yf = Convolution.conv2d(fused[0], fused[1], fused[2], p, true);
            Tensor yc = F.relu(F.conv2d(comp[0], comp[1], comp[2], p));
            assertArrayEquals(yc.toFloatArray(), yf.toFloatArray(), 0f, "forward");
            yf.mul(gy).sum().backward();
            yc.mul(gy).sum().backward();
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(comp[i].grad().toFloatArray(), fused[i].grad().toFloatArray(), 1e-4f, "gradient " + i);
            }
        }
    }

    @Test void maxPool2dGradient() {
        GradCheck.check(x -> F.maxPool2d(x[0], 2, 2, 0), randn(41, 2, 2, 4, 4));
        GradCheck.check(x -> F.maxPool2d(x[0], 3, 2, 1), randn(42, 1, 2, 5, 5));   // overlapping windows, padding
        GradCheck.check(x -> F.maxPool2d(x[0].transpose(2, 3), 2, 1, 0), randn(43, 1, 1, 3, 4));
    }

    @Test void avgPool2dGradient() {
        GradCheck.check(x -> F.avgPool2d(x[0], 2, 2, 0), randn(44, 2, 2, 4, 4));
        GradCheck.check(x -> F.avgPool2d(x[0], 3, 2, 1), randn(45, 1, 2, 5, 5));
    }

    @Test void adaptiveAvgPool2dGradient() {
        GradCheck.check(x -> F.adaptiveAvgPool2d(x[0], 2, 2), randn(46, 1, 2, 4, 6)); // divisible: average pool
        GradCheck.check(x -> F.adaptiveAvgPool2d(x[0], 3, 2), randn(47, 2, 1, 5, 5)); // overlapping bins
        GradCheck.check(x -> F.adaptiveAvgPool2d(x[0], 1, 1), randn(48, 1, 3, 3, 2)); // global
    }

    // ---------------------------------------------------------------- softmax and losses

    @Test void softmaxAndLogSoftmax() {
        for (int dim : new int[]{0, 1, -1}) {
            GradCheck.check(x -> F.softmax(x[0], dim), randn(51, 3, 4));
            GradCheck.check(x -> F.logSoftmax(x[0], dim), randn(52, 3, 4));
        }
        GradCheck.check(x -> F.softmax(x[0].t(), 1), randn(53, 4, 3));
        GradCheck.check(x -> F.logSoftmax(x[0], 1), randn(54, 2, 3, 2));
    }

    @ParameterizedTest @EnumSource(Reduction.class)
    void crossEntropyGradient(Reduction r) {
        Tensor t = Tensor.of(new long[]{2, 0, 1, 3}, 4);
        GradCheck.check(x -> F.crossEntropy(x[0], t, 0, -100, r), randn(61, 4, 4));
        GradCheck.check(x -> F.crossEntropy(x[0], t, 0.2, -100, r), randn(62, 4, 4));
        Tensor ignoring = Tensor.of(new long[]{2, -100, 1, -100}, 4);
        GradCheck.check(x -> F.crossEntropy(x[0], ignoring, 0.1, -100, r), randn(63, 4, 4));
        Tensor spatial = Tensor.of(new long[]{0, 2, 1, 1, 2, 0}, 2, 3);
        GradCheck.check(x -> F.crossEntropy(x[0], spatial, 0.1, 1, r), randn(64, 2, 3, 3));
    }

    @Test void crossEntropyIgnoredRowsGetNoGradient() {
        Tensor x = randn(65, 3, 4).requiresGrad(true);
        F.crossEntropy(x, Tensor.of(new long[]{1, -100, 2}, 3)).backward();
        double[] g = x.grad().toDoubleArray();
        for (int j = 4; j < 8; j++) assertEquals(0.0, g[j]);
        // rows of softmax - onehot sum to zero
        assertEquals(0.0, g[0] + g[1] + g[2] + g[3], 1e-12);
    }

    @ParameterizedTest @EnumSource(Reduction.class)
    void nllMseAndBceGradients(Reduction r) {
        Tensor t = Tensor.of(new long[]{2, 0, -100}, 3);
        GradCheck.check(x -> F.nllLoss(x[0], t, -100, r), randn(66, 3, 3));
        GradCheck.check(x -> F.mseLoss(x[0], x[1], r), randn(67, 3, 2), randn(68, 3, 2));
        GradCheck.check(x -> F.binaryCrossEntropyWithLogits(x[0], x[1].sigmoid(), r), randn(69, 3, 2), randn(70, 3, 2));
    }

    @Test void bceWithLogitsGradientIsExactAtZero() {
        Tensor x = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU).requiresGrad(true);
        F.binaryCrossEntropyWithLogits(x, Tensor.of(new double[]{0, 1}, 2), Reduction.SUM).backward();
        assertArrayEquals(new double[]{0.5, -0.5}, x.grad().toDoubleArray(), 1e-15);
    }

    // ---------------------------------------------------------------- dropout, normalisation, attention

    /** 16-bit dropout takes the fused kernel: the composite's mask and rounding, bit for bit. */
    @ParameterizedTest @EnumSource(value = DType.class, names = {"BFLOAT16", "FLOAT16"})
    void sixteenBitDropoutMatchesTheComposite(DType t) {
        Tensor x = randn(73, 7, 9).to(t);
        Tensor fused = F.dropout(x, 0.25, true, new Generator(9)), composite = Dropout.composite(x, 0.25, new Generator(9));
        assertEquals(t, fused.dtype());
        assertArrayEquals(composite.toDoubleArray(), fused.toDoubleArray(), 0.0);
    }

    @Test void dropoutGradientIsTheScaledMask() {
        double p = 0.4;
        Tensor x = randn(71, 5, 6).requiresGrad(true);
        F.dropout(x, p, true, new Generator(5)).sum().backward();
        // the same generator seed draws the same mask
        double[] u = Tensor.rand(new Generator(5), new int[]{5, 6}, DType.FLOAT64, Device.CPU).toDoubleArray();
        double[] g = x.grad().toDoubleArray();
        int zeros = 0;
        for (int i = 0; i < u.length; i++) {
            assertEquals(u[i] >= p ? 1 / (1 - p) : 0.0, g[i], 1e-12);
            if (g[i] == 0) zeros++;
        }
        assertTrue(zeros > 0 && zeros < u.length, "mask should drop some but not all of 30 elements");
        // and with a fixed mask (fresh generator per call) it passes the finite-difference check too
        GradCheck.check(t -> F.dropout(t[0], p, true, new Generator(5)), randn(72, 5, 6));
    }

    @Test void layerNormGradient() {
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{4}, x[1], x[2], 1e-5), randn(81, 3, 4), randn(82, 4), randn(83, 4));
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{2, 3}, null, null, 1e-5), randn(84, 2, 2, 3));
        GradCheck.check(x -> F.layerNorm(x[0].transpose(0, 1), new int[]{3}, x[1], null, 1e-5), randn(85, 3, 2), randn(86, 3));
    }

    @Test void batchNormTrainingGradient() {
        GradCheck.check(x -> F.batchNorm(x[0], null, null, x[1], x[2], true, 0.1, 1e-5), randn(91, 4, 3), randn(92, 3), randn(93, 3));
        Tensor rm = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU), rv = Tensor.ones(new int[]{2}, DType.FLOAT64, Device.CPU);
        GradCheck.check(x -> F.batchNorm(x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5), randn(94, 2, 2, 3, 2), randn(95, 2), randn(96, 2));
        assertFalse(rm.requiresGrad() || rv.requiresGrad(), "running statistics must stay outside the graph");
    }

    @Test void batchNormEvalGradient() {
        Tensor rm = randn(97, 3), rv = randn(98, 3).abs().add(0.5);
        GradCheck.check(x -> F.batchNorm(x[0], rm, rv, x[1], x[2], false, 0.1, 1e-5), randn(99, 2, 3, 2, 2), randn(100, 3), randn(101, 3));
    }

    @Test void attentionGradient() {
        for (boolean causal : new boolean[]{false, true}) {
            GradCheck.check(x -> F.scaledDotProductAttention(x[0], x[1], x[2], causal), randn(111, 2, 3, 4), randn(112, 2, 3, 4), randn(113, 2, 3, 2));
        }
        // multi-head layout: (B, T, H, d) transposed to (B, H, T, d), a non-contiguous view
        GradCheck.check(x -> F.scaledDotProductAttention(x[0].transpose(1, 2), x[1].transpose(1, 2), x[2].transpose(1, 2), true),
                randn(114, 1, 3, 2, 2), randn(115, 1, 3, 2, 2), randn(116, 1, 3, 2, 2));
    }
}
