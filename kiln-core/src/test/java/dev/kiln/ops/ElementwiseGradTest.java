package dev.kiln.ops;

import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.BinaryOperator;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Elementwise ops: gradients against float64 finite differences, over plain, broadcast and non-contiguous
 * (transposed, strided-slice, expanded) operands.
 */
class ElementwiseGradTest {

    /** Strictly positive values (for log, sqrt, pow bases, divisors). */
    private static Tensor positive(long seed, int... shape) { return randn(seed, shape).abs().add(0.5); }

    static Stream<Arguments> unaryOps() {
        return Stream.of(
                Arguments.of("neg", (UnaryOperator<Tensor>) Tensor::neg, false),
                Arguments.of("exp", (UnaryOperator<Tensor>) Tensor::exp, false),
                Arguments.of("log", (UnaryOperator<Tensor>) Tensor::log, true),
                Arguments.of("sqrt", (UnaryOperator<Tensor>) Tensor::sqrt, true),
                Arguments.of("abs", (UnaryOperator<Tensor>) Tensor::abs, false),
                Arguments.of("relu", (UnaryOperator<Tensor>) Tensor::relu, false),
                Arguments.of("gelu", (UnaryOperator<Tensor>) Tensor::gelu, false),
                Arguments.of("gelu_tanh", (UnaryOperator<Tensor>) x -> F.gelu(x, F.GeluApproximation.TANH), false),
                Arguments.of("silu", (UnaryOperator<Tensor>) Tensor::silu, false),
                Arguments.of("sigmoid", (UnaryOperator<Tensor>) Tensor::sigmoid, false),
                Arguments.of("tanh", (UnaryOperator<Tensor>) Tensor::tanh, false),
                Arguments.of("sin", (UnaryOperator<Tensor>) Tensor::sin, false),
                Arguments.of("cos", (UnaryOperator<Tensor>) Tensor::cos, false),
                Arguments.of("leaky_relu", (UnaryOperator<Tensor>) x -> F.leakyRelu(x, 0.1), false),
                Arguments.of("pow_scalar", (UnaryOperator<Tensor>) x -> x.pow(3), false),
                Arguments.of("pow_scalar_fractional", (UnaryOperator<Tensor>) x -> x.pow(1.5), true),
                Arguments.of("add_scalar", (UnaryOperator<Tensor>) x -> x.add(2.5), false),
                Arguments.of("sub_scalar", (UnaryOperator<Tensor>) x -> x.sub(2.5), false),
                Arguments.of("rsub_scalar", (UnaryOperator<Tensor>) x -> x.rsub(2.5), false),
                Arguments.of("mul_scalar", (UnaryOperator<Tensor>) x -> x.mul(-1.5), false),
                Arguments.of("div_scalar", (UnaryOperator<Tensor>) x -> x.div(4), false),
                Arguments.of("rdiv_scalar", (UnaryOperator<Tensor>) x -> x.rdiv(3), true),
                Arguments.of("clamp", (UnaryOperator<Tensor>) x -> x.clamp(-0.5, 0.7), false),
                Arguments.of("to_float32_and_back", (UnaryOperator<Tensor>) x -> x.to(dev.kiln.DType.FLOAT32).to(dev.kiln.DType.FLOAT64).mul(x), false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("unaryOps")
    void unaryGradients(String name, UnaryOperator<Tensor> op, boolean needsPositive) {
        Tensor x = needsPositive ? positive(11, 3, 5) : randn(11, 3, 5);
        if (name.equals("to_float32_and_back")) {
            // float32 round-trip is not smooth at 1e-6 steps: check only that the gradient flows back as float64
            x.requiresGrad(true);
            op.apply(x).sum().backward();
            assertEquals(dev.kiln.DType.FLOAT64, x.grad().dtype());
            return;
        }
        GradCheck.check(in -> op.apply(in[0]), x);
        // the same op on a transposed (non-contiguous) view
        GradCheck.check(in -> op.apply(in[0].t()), needsPositive ? positive(12, 5, 3) : randn(12, 5, 3));
    }

    static Stream<Arguments> binaryOps() {
        return Stream.of(
                Arguments.of("add", (BinaryOperator<Tensor>) Tensor::add, false),
                Arguments.of("sub", (BinaryOperator<Tensor>) Tensor::sub, false),
                Arguments.of("mul", (BinaryOperator<Tensor>) Tensor::mul, false),
                Arguments.of("div", (BinaryOperator<Tensor>) Tensor::div, true),
                Arguments.of("pow", (BinaryOperator<Tensor>) Tensor::pow, true),
                Arguments.of("maximum", (BinaryOperator<Tensor>) Tensor::maximum, false),
                Arguments.of("minimum", (BinaryOperator<Tensor>) Tensor::minimum, false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("binaryOps")
    void binaryGradientsSameShape(String name, BinaryOperator<Tensor> op, boolean positive) {
        GradCheck.check(in -> op.apply(in[0], in[1]), operand(positive, 21, 3, 4), operand(positive, 22, 3, 4));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("binaryOps")
    void binaryGradientsBroadcast(String name, BinaryOperator<Tensor> op, boolean positive) {
        // (2, 3, 4) with (4), and (3, 1) with (1, 4)
        GradCheck.check(in -> op.apply(in[0], in[1]), operand(positive, 23, 2, 3, 4), operand(positive, 24, 4));
        GradCheck.check(in -> op.apply(in[0], in[1]), operand(positive, 25, 3, 1), operand(positive, 26, 1, 4));
        GradCheck.check(in -> op.apply(in[0], in[1]), operand(positive, 27), operand(positive, 28, 2, 3));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("binaryOps")
    void binaryGradientsNonContiguous(String name, BinaryOperator<Tensor> op, boolean positive) {
        // a transposed view against a strided slice; and an expanded view
        GradCheck.check(in -> op.apply(in[0].t(), in[1].slice(1, 0, 8, 2)), operand(positive, 29, 4, 3), operand(positive, 30, 3, 8));
        GradCheck.check(in -> op.apply(in[0].expand(3, 4), in[1].permute(1, 0)), operand(positive, 31, 1, 4), operand(positive, 32, 4, 3));
    }

    private static Tensor operand(boolean positive, long seed, int... shape) { return positive ? positive(seed, shape) : randn(seed, shape); }

    @Test void maximumTieSplitsGradientEvenly() {
        Tensor a = Tensor.of(new double[]{1, 2, 3}, 3).requiresGrad(true);
        Tensor b = Tensor.of(new double[]{1, 5, 0}, 3).requiresGrad(true);
        a.maximum(b).sum().backward();
        assertArrayEquals(new double[]{0.5, 0, 1}, a.grad().toDoubleArray());
        assertArrayEquals(new double[]{0.5, 1, 0}, b.grad().toDoubleArray());
    }

    @Test void whereGradientsGoToTheChosenBranch() {
        Tensor cond = randn(41, 3, 4).gt(0);
        GradCheck.check(in -> Tensor.where(cond, in[0], in[1]), randn(42, 3, 4), randn(43, 3, 4));
        // broadcast condition and branches, and a transposed branch
        Tensor rowCond = randn(44, 4).gt(0);
        GradCheck.check(in -> Tensor.where(rowCond, in[0].t(), in[1]), randn(45, 4, 3), randn(46, 1, 4));
        Tensor a = Tensor.of(new double[]{1, 2}, 2).requiresGrad(true);
        Tensor.where(Tensor.of(new double[]{1, 0}, 2).gt(0), a, Tensor.zeros(2).to(dev.kiln.DType.FLOAT64)).sum().backward();
        assertArrayEquals(new double[]{1, 0}, a.grad().toDoubleArray());
    }

    @Test void maskedFillGradientIsZeroWhereFilled() {
        Tensor mask = randn(51, 1, 5).gt(0);
        GradCheck.check(in -> in[0].maskedFill(mask, -3.0), randn(52, 4, 5));
        GradCheck.check(in -> in[0].t().maskedFill(mask, Double.NEGATIVE_INFINITY).exp(), randn(53, 5, 4));
        Tensor x = Tensor.of(new double[]{1, 2, 3}, 3).requiresGrad(true);
        Tensor y = x.maskedFill(Tensor.of(new double[]{0, 1, 0}, 3).gt(0), 9);
        assertArrayEquals(new double[]{1, 9, 3}, y.toDoubleArray());
        y.sum().backward();
        assertArrayEquals(new double[]{1, 0, 1}, x.grad().toDoubleArray());
    }

    @Test void clampGradientIsOneInsideAndZeroOutside() {
        Tensor x = Tensor.of(new double[]{-2, 0.1, 3}, 3).requiresGrad(true);
        Tensor y = x.clamp(-1, 1);
        assertArrayEquals(new double[]{-1, 0.1, 1}, y.toDoubleArray());
        y.sum().backward();
        assertArrayEquals(new double[]{0, 1, 0}, x.grad().toDoubleArray());
    }

    @Test void comparisonsProduceBoolAndNoGraph() {
        Tensor a = Tensor.of(new double[]{1, 2, 3}, 3).requiresGrad(true);
        Tensor b = Tensor.of(new double[]{3, 2, 1}, 3);
        assertArrayEquals(new double[]{1, 0, 0}, a.lt(b).toDoubleArray());
        assertArrayEquals(new double[]{1, 1, 0}, a.le(b).toDoubleArray());
        assertArrayEquals(new double[]{0, 0, 1}, a.gt(b).toDoubleArray());
        assertArrayEquals(new double[]{0, 1, 1}, a.ge(b).toDoubleArray());
        assertArrayEquals(new double[]{0, 1, 0}, a.eq(b).toDoubleArray());
        assertArrayEquals(new double[]{1, 0, 1}, a.ne(b).toDoubleArray());
        assertArrayEquals(new double[]{0, 1, 1}, a.ge(2).toDoubleArray());
        assertEquals(dev.kiln.DType.BOOL, a.lt(b).dtype());
        assertFalse(a.lt(b).requiresGrad());
    }

    @Test void activationsMatchTheirDefinitions() {
        Tensor x = Tensor.of(new double[]{-2, -0.5, 0, 0.5, 2}, 5);
        double[] v = x.toDoubleArray();
        double[] gelu = x.gelu().toDoubleArray(), silu = x.silu().toDoubleArray(), sig = x.sigmoid().toDoubleArray();
        double[] geluRef = {-0.04550026389635842, -0.15426876936299344, 0, 0.34573123063700656, 1.9544997361036416};
        for (int i = 0; i < v.length; i++) {
            assertEquals(geluRef[i], gelu[i], 1e-12, "gelu");
            assertEquals(1 / (1 + Math.exp(-v[i])), sig[i], 1e-15, "sigmoid");
            assertEquals(v[i] / (1 + Math.exp(-v[i])), silu[i], 1e-15, "silu");
        }
        // the tanh form: its definition, and PyTorch's F.gelu(x, approximate="tanh") at +-2 (1.9545976, -0.0454023)
        double[] geluTanh = F.gelu(x, F.GeluApproximation.TANH).toDoubleArray();
        for (int i = 0; i < v.length; i++) {
            double u = Math.sqrt(2 / Math.PI) * (v[i] + 0.044715 * v[i] * v[i] * v[i]);
            assertEquals(0.5 * v[i] * (1 + Math.tanh(u)), geluTanh[i], 1e-15, "gelu tanh");
        }
        assertEquals(1.9545976, geluTanh[4], 1e-7);
        assertEquals(-0.0454023, geluTanh[0], 1e-7);
        assertArrayEquals(toFloat(geluTanh), F.gelu(x.to(dev.kiln.DType.FLOAT32), F.GeluApproximation.TANH).toFloatArray(), 1e-6f);
        // float32 fast paths agree with float64
        assertArrayEquals(toFloat(gelu), x.to(dev.kiln.DType.FLOAT32).gelu().toFloatArray(), 1e-6f);
        assertArrayEquals(toFloat(x.relu().toDoubleArray()), x.to(dev.kiln.DType.FLOAT32).relu().toFloatArray());
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }
}
