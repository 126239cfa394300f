package dev.kiln;

import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Normalization;
import dev.kiln.ops.Pooling;
import org.junit.jupiter.api.Test;

import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The channels-last memory format on the CPU: the layout predicates, toChannelsLast's values and gradient (float64
 * gradcheck), and ops given channels-last inputs giving the contiguous inputs' values and gradients (the CPU may
 * copy to contiguous; it must not break). The CUDA kernels that keep the layout are checked in the *GpuTest classes.
 */
class ChannelsLastTest {
    @Test void layoutPredicates() {
        Tensor x = GradCheck.randn(1, 2, 3, 4, 5);
        assertTrue(x.isContiguous());
        assertFalse(x.isChannelsLast());
        Tensor c = x.toChannelsLast();
        assertArrayEquals(new int[]{60, 1, 15, 3}, c.strides());
        assertTrue(c.isChannelsLast());
        assertTrue(c.prefersChannelsLast());
        assertFalse(c.isContiguous());
        assertSame(c, c.toChannelsLast());
        assertArrayEquals(x.toDoubleArray(), c.toDoubleArray());
        assertArrayEquals(x.toDoubleArray(), c.contiguous().toDoubleArray());
        // one channel (or a 1x1 image) is both layouts: contiguous is preferred, unless toChannelsLast gave it the
        // channels-last strides (a view of the same memory), which the ops after it keep
        Tensor one = GradCheck.randn(2, 2, 1, 4, 5);
        assertTrue(one.isChannelsLast());
        assertFalse(one.prefersChannelsLast());
        Tensor oneCl = one.toChannelsLast();
        assertArrayEquals(new int[]{20, 1, 5, 1}, oneCl.strides());
        assertTrue(oneCl.prefersChannelsLast() && oneCl.isContiguous());
        assertSame(one.storage(), oneCl.storage());
        assertSame(oneCl, oneCl.toChannelsLast());
        assertTrue(oneCl.emptyLike(DType.FLOAT32).prefersChannelsLast());
        assertArrayEquals(one.toDoubleArray(), oneCl.toDoubleArray());
        assertTrue(GradCheck.randn(3, 2, 4, 1, 1).toChannelsLast().prefersChannelsLast());
        assertFalse(GradCheck.randn(3, 2, 1, 1, 1).toChannelsLast().prefersChannelsLast());   // one element an image: contiguous
        assertThrows(IllegalArgumentException.class, () -> GradCheck.randn(3, 2, 3).toChannelsLast());
    }

    @Test void castsKeepTheFormat() {
        Tensor c = GradCheck.randn(4, 2, 3, 4, 5).toChannelsLast();
        Tensor f = c.to(DType.FLOAT32);
        assertTrue(f.prefersChannelsLast());
        assertArrayEquals(c.toFloatArray(), f.toFloatArray());
        assertTrue(GradCheck.randn(5, 3, 4).t().to(DType.FLOAT32).isContiguous());   // other layouts become contiguous
    }

    @Test void toChannelsLastGradient() {
        GradCheck.check(x -> x[0].toChannelsLast().mul(x[0].toChannelsLast()), GradCheck.randn(6, 2, 3, 4, 5));
        GradCheck.check(x -> x[0].toChannelsLast().mul(x[0]), GradCheck.randn(8, 2, 1, 4, 5));   // one channel: a view
        GradCheck.check(x -> x[0].toChannelsLast().permute(0, 2, 3, 1).reshape(2, -1), GradCheck.randn(7, 2, 3, 4, 5));
    }

    @Test void autocastConvolutionKeepsTheParameterGradientContiguous() {
        Tensor x = GradCheck.randn(20, 2, 4, 6, 6).to(DType.FLOAT32);
        Tensor[] grads = new Tensor[2];
        for (int i = 0; i < 2; i++) {
            Tensor w = GradCheck.randn(21, 5, 4, 3, 3).to(DType.FLOAT32).requiresGrad(true);
            try (var ac = dev.kiln.autograd.Autocast.enable(DType.BFLOAT16)) {
                Tensor in = i == 0 ? x : x.toChannelsLast();
                Tensor y = Convolution.conv2d(in, w, null, Conv2dParams.of(1, 1, 1, 1), false);
                assertTrue(y.dtype() == DType.BFLOAT16);
                y.to(DType.FLOAT32).sum().backward();
            }
            grads[i] = w.grad();
            assertTrue(grads[i].isContiguous() && grads[i].dtype() == DType.FLOAT32);
        }
        assertArrayEquals(grads[0].toFloatArray(), grads[1].toFloatArray(), 1e-6f);
    }

    @Test void opsOnChannelsLastInputsMatchContiguous() {
        Tensor w = GradCheck.randn(10, 6, 3, 3, 3), w1 = GradCheck.randn(11, 3, 6, 1, 1);
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1), p2 = Conv2dParams.of(2, 0, 1, 1);
        Tensor bnW = GradCheck.randn(12, 6), bnB = GradCheck.randn(13, 6);
        // a residual block in miniature: conv, batch norm + ReLU, max pool, conv, batch norm + add + ReLU, average pool
        Function<Tensor[], Tensor> block = t -> {
            Tensor y = Convolution.conv2d(t[0], t[1], null, p, false);
            y = Normalization.batchNorm(y, null, null, t[2], t[3], null, true, 0.1, 1e-5, true);
            Tensor r = Pooling.maxPool2d(y, Pool2dParams.of(3, 2, 1));
            Tensor z = Convolution.conv2d(Convolution.conv2d(r, t[4], null, Conv2dParams.of(1, 0, 1, 1), false), t[1], null, p, false);
            z = Normalization.batchNorm(z, null, null, t[2], t[3], r, true, 0.1, 1e-5, true);
            return Pooling.avgPool2d(z.relu().add(z.mul(0.5)), Pool2dParams.of(2, 2, 0)).sub(1.0);
        };
        Tensor x = GradCheck.randn(14, 2, 3, 8, 8);
        Tensor[] plain = {x, w, bnW, bnB, w1};
        Tensor[] cl = {x.toChannelsLast(), w, bnW, bnB, w1};
        assertArrayEquals(block.apply(plain).toDoubleArray(), block.apply(cl).toDoubleArray(), 1e-12);
        GradCheck.check(t -> block.apply(new Tensor[]{t[0].toChannelsLast(), t[1], t[2], t[3], t[4]}), x, w, bnW, bnB, w1);
        GradCheck.check(t -> Convolution.conv2d(t[0].toChannelsLast(), t[1], null, p2, false), GradCheck.randn(15, 2, 3, 7, 7), GradCheck.randn(16, 4, 3, 3, 3));
    }
}
