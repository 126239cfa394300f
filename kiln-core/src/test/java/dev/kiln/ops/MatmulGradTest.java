package dev.kiln.ops;

import dev.kiln.GradCheck;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Matrix products and linear: gradients against float64 finite differences. */
class MatmulGradTest {
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

    /** The fused op's backward: a transposed weight, a 1-D input, and a frozen weight (the bias gradient alone). */
    @Test void linearWeightLayoutsAndFrozenWeight() {
        GradCheck.check(x -> F.linear(x[0], x[1].t(), x[2]), randn(29, 5, 4), randn(30, 4, 3), randn(31, 3));
        GradCheck.check(x -> F.linear(x[0], x[1], x[2]), randn(32, 4), randn(33, 3, 4), randn(34, 3));
        dev.kiln.Tensor w = randn(35, 3, 4).detach();
        GradCheck.check(x -> F.linear(x[0], w, x[1]), randn(36, 2, 5, 4), randn(37, 3));
    }

    /** linear with a residual added in the same op: every input's gradient, the residual's the output's own. */
    @Test void linearWithResidual() {
        GradCheck.check(x -> F.linear(x[0], x[1], x[2], x[3]), randn(38, 2, 3, 4), randn(39, 5, 4), randn(40, 5), randn(41, 2, 3, 5));
        GradCheck.check(x -> F.linear(x[0], x[1], null, x[2]), randn(42, 6, 4), randn(43, 3, 4), randn(44, 6, 3));
        // a residual that is a strided view, and one that needs no gradient
        GradCheck.check(x -> F.linear(x[0], x[1], x[2], x[3].t()), randn(45, 4, 3), randn(46, 5, 3), randn(47, 5), randn(48, 5, 4));
        dev.kiln.Tensor r = randn(49, 4, 2).detach();
        GradCheck.check(x -> F.linear(x[0], x[1], x[2], r), randn(50, 4, 3), randn(51, 2, 3), randn(52, 2));
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> F.linear(randn(53, 4, 3), randn(54, 2, 3), null, randn(55, 4, 3)));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("residual of shape [4, 3] does not match the output's [4, 2]"), e.getMessage());
    }

    /** linear after an activation, the activation's output computed again in backward: gradients, and the same values as the two ops. */
    @Test void linearAfterActivation() {
        for (F.GeluApproximation a : F.GeluApproximation.values()) {
            GradCheck.check(x -> F.linearAfterGelu(x[0], a, x[1], x[2], x[3]), randn(56, 2, 3, 8), randn(57, 5, 8), randn(58, 5), randn(59, 2, 3, 5));
            GradCheck.check(x -> F.linearAfterGelu(x[0], a, x[1], null, null), randn(60, 4, 6), randn(61, 3, 6));
            dev.kiln.Tensor h = randn(62, 4, 6), w = randn(63, 3, 6), b = randn(64, 3), r = randn(65, 4, 3);
            org.junit.jupiter.api.Assertions.assertArrayEquals(r.add(F.linear(F.gelu(h, a), w, b)).toDoubleArray(),
                    F.linearAfterGelu(h, a, w, b, r).toDoubleArray(), 1e-12);
        }
        for (dev.kiln.backend.UnaryOp act : new dev.kiln.backend.UnaryOp[]{dev.kiln.backend.UnaryOp.SILU, dev.kiln.backend.UnaryOp.RELU}) {
            GradCheck.check(x -> Matmul.linearAfter(act, x[0], x[1], x[2], null), randn(66, 5, 4), randn(67, 3, 4), randn(68, 3));
        }
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Matmul.linearAfter(dev.kiln.backend.UnaryOp.EXP, randn(69, 2, 2), randn(70, 2, 2), null, null));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("activation must be GELU, GELU_TANH, SILU or RELU"), e.getMessage());
    }
}
