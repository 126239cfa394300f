package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** conv2d (strides, padding, dilation, groups, the fused ReLU epilogue): gradients against float64 finite differences. */
class ConvolutionGradTest {
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

    @Test void convTranspose2dGradients() {
        // stride 2 with output padding, padding, dilation, groups, and a bias
        GradCheck.check(t -> F.convTranspose2d(t[0], t[1], t[2], Conv2dParams.of(2, 1, 1, 1), 1), randn(51, 2, 3, 3, 4), randn(52, 3, 2, 3, 3), randn(53, 2));
        GradCheck.check(t -> F.convTranspose2d(t[0], t[1], null, Conv2dParams.of(1, 0, 2, 1), 0), randn(54, 1, 2, 4, 3), randn(55, 2, 3, 2, 2));
        GradCheck.check(t -> F.convTranspose2d(t[0], t[1], null, Conv2dParams.of(2, 0, 1, 2), 0), randn(56, 1, 4, 3, 3), randn(57, 4, 1, 2, 2));
    }

    /** conv_transpose2d is conv2d's adjoint ({@code <conv2d(u, w), x> = <u, conv_transpose2d(x, w)>}), and PyTorch's output size. */
    @Test void convTranspose2dIsTheAdjointOfConv2d() {
        Conv2dParams p = Conv2dParams.of(2, 1, 1, 1);
        Tensor w = randn(61, 3, 5, 3, 3), x = randn(62, 2, 3, 4, 4);
        Tensor y = F.convTranspose2d(x, w, null, p, 1);
        assertArrayEquals(new int[]{2, 5, (4 - 1) * 2 - 2 + 2 + 1 + 1, 8}, y.shape());
        Tensor u = randn(63, y.shape());
        double left = F.conv2d(u, w, null, p).mul(x).sum().item(), right = u.mul(y).sum().item();
        assertEquals(left, right, 1e-10 * Math.abs(left));
        // a 1x1 input with stride 2 places the kernel, scaled, once per input channel
        Tensor one = Tensor.of(new double[]{2}, 1, 1, 1, 1), k = randn(64, 1, 1, 3, 3);
        assertArrayEquals(k.mul(2).toDoubleArray(), F.convTranspose2d(one, k, null, Conv2dParams.of(2, 0, 1, 1), 0).toDoubleArray(), 1e-15);
        dev.kiln.nn.ConvTranspose2d layer = new dev.kiln.nn.ConvTranspose2d(3, 4, 4, 2, 1, new dev.kiln.Generator(1));
        assertArrayEquals(new int[]{2, 4, 8, 8}, layer.forward(x.to(dev.kiln.DType.FLOAT32)).shape());   // the DCGAN upsampling step
        assertEquals(2, layer.parameters().size());
        assertThrows(IllegalArgumentException.class, () -> F.convTranspose2d(x, w, null, p, 2));   // output padding >= stride
        assertThrows(IllegalArgumentException.class, () -> F.convTranspose2d(randn(65, 1, 2, 4, 4), w, null, p, 0));   // channels
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

    /** relu?(conv2d + bias + residual) as one op: float64 gradients of all four inputs, with and without ReLU and bias. */
    @Test void conv2dResidualFusedGradient() {
        Conv2dParams p = new Conv2dParams(2, 2, 1, 1, 1, 1, 1);
        GradCheck.check(t -> Convolution.conv2d(t[0], t[1], t[2], t[3], p, true), randn(70, 2, 3, 5, 6), randn(71, 4, 3, 3, 3), randn(72, 4),
                randn(73, 2, 4, 3, 3));
        GradCheck.check(t -> Convolution.conv2d(t[0], t[1], null, t[2], Conv2dParams.of(1, 0, 1, 1), false), randn(74, 1, 2, 4, 4),
                randn(75, 3, 2, 1, 1), randn(76, 1, 3, 4, 4));
        // the residual alone needing a gradient (a first layer's weights beside it): the first-layer shortcut is not taken
        Tensor x = randn(77, 1, 2, 4, 4), r = randn(78, 1, 3, 4, 4).requiresGrad(true), gy = randn(79, 1, 3, 4, 4);
        Convolution.conv2d(x, randn(80, 3, 2, 1, 1).requiresGrad(true), null, r, Conv2dParams.of(1, 0, 1, 1), true).mul(gy).sum().backward();
        Tensor y = Convolution.conv2d(x, randn(80, 3, 2, 1, 1), null, r.detach(), Conv2dParams.of(1, 0, 1, 1), true);
        assertArrayEquals(gy.mul(y.gt(0).to(DType.FLOAT64)).toDoubleArray(), r.grad().toDoubleArray(), 0);
    }

    /** The fused residual op against relu(conv2d(...) + residual) in float32: equal values and gradients (channels-last input too). */
    @Test void conv2dResidualFusedEqualsTheComposite() {
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        for (boolean channelsLast : new boolean[]{false, true}) {
            Tensor x = randn(81, 2, 4, 5, 5).to(DType.FLOAT32), w = randn(82, 4, 4, 3, 3).to(DType.FLOAT32), b = randn(83, 4).to(DType.FLOAT32);
            Tensor r = randn(84, 2, 4, 5, 5).to(DType.FLOAT32), gy = randn(85, 2, 4, 5, 5).to(DType.FLOAT32);
            if (channelsLast) x = x.toChannelsLast();
            Tensor[] fused = {x.detach().requiresGrad(true), w.detach().requiresGrad(true), b.detach().requiresGrad(true), r.detach().requiresGrad(true)};
            Tensor[] comp = {x.detach().requiresGrad(true), w.detach().requiresGrad(true), b.detach().requiresGrad(true), r.detach().requiresGrad(true)};
            Tensor yf = Convolution.conv2d(fused[0], fused[1], fused[2], fused[3], p, true);
            Tensor yc = F.relu(F.conv2d(comp[0], comp[1], comp[2], p).add(comp[3]));
            assertArrayEquals(yc.toFloatArray(), yf.toFloatArray(), 0f, "forward");
            yf.mul(gy).sum().backward();
            yc.mul(gy).sum().backward();
            for (int i = 0; i < 4; i++) assertArrayEquals(comp[i].grad().toFloatArray(), fused[i].grad().toFloatArray(), 1e-4f, "gradient " + i);
        }
        // a residual of another shape is refused, named
        Tensor x = randn(86, 1, 2, 4, 4), w = randn(87, 3, 2, 3, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Convolution.conv2d(x, w, null, randn(88, 1, 3, 4, 4), Conv2dParams.of(1, 0, 1, 1), true));
        assertTrue(e.getMessage().contains("residual of shape [1, 3, 4, 4] does not match the output [1, 3, 2, 2]"), e.getMessage());
    }
}
