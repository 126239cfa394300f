package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.BinaryOperator;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The CPU's float32 fast paths (Vector API over unit-stride rows, stride-0 broadcasts, leading-dim sums) against
 * the general double path on float64 inputs, at sizes that leave a scalar tail after the vector loop.
 */
class Float32FastPathTest {
    private static final Tensor A64 = Tensor.randn(new Generator(1), new int[]{37, 29}, DType.FLOAT64, Device.CPU);
    private static final Tensor B64 = Tensor.randn(new Generator(2), new int[]{37, 29}, DType.FLOAT64, Device.CPU);

    private static void close(Tensor f32, Tensor f64, String what) {
        assertEquals(DType.FLOAT32, f32.dtype(), what);
        assertArrayEquals(f64.shape(), f32.shape(), what);
        double[] e = f64.toDoubleArray();
        float[] a = f32.toFloatArray();
        for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 1e-5 * Math.max(1, Math.abs(e[i])), what + " element " + i);
    }

    @Test void unaryOps() {
        List<UnaryOperator<Tensor>> ops = List.of(Tensor::neg, Tensor::abs, Tensor::relu, Tensor::exp, Tensor::gelu, t -> dev.kiln.nn.F.gelu(t, dev.kiln.nn.F.GeluApproximation.TANH), Tensor::silu,
                Tensor::sigmoid, Tensor::tanh, t -> t.abs().sqrt(), t -> t.abs().add(0.1).log(), t -> t.clamp(-0.3, 0.4));
        for (int k = 0; k < ops.size(); k++) {
            UnaryOperator<Tensor> op = ops.get(k);
            close(op.apply(A64.to(DType.FLOAT32)), op.apply(A64), "unary op " + k);
            close(op.apply(A64.to(DType.FLOAT32).t()), op.apply(A64.t()), "unary op " + k + " transposed");
        }
    }

    /** GELU's backward (g · GELU'(x)): the two vector passes with their tail, x broadcast along a row, and strided rows. */
    @Test void geluBackwardInTwoPasses() {
        dev.kiln.backend.BinaryOp op = dev.kiln.backend.BinaryOp.GELU_BACKWARD;
        Tensor big64 = Tensor.randn(new Generator(3), new int[]{3, 1000}, DType.FLOAT64, Device.CPU).mul(3);
        Tensor g64 = Tensor.randn(new Generator(4), new int[]{3, 1000}, DType.FLOAT64, Device.CPU);
        close(Elementwise.binary(op, g64.to(DType.FLOAT32), big64.to(DType.FLOAT32)), Elementwise.binary(op, g64, big64), "gelu backward");
        close(Elementwise.binary(op, A64.to(DType.FLOAT32), B64.to(DType.FLOAT32)), Elementwise.binary(op, A64, B64), "gelu backward, 29 a row");
        Tensor row64 = B64.select(0, 3).unsqueeze(0).expand(37, 29), column64 = B64.select(1, 3).unsqueeze(1).expand(37, 29);
        Tensor row32 = B64.select(0, 3).to(DType.FLOAT32).unsqueeze(0).expand(37, 29);
        Tensor column32 = B64.select(1, 3).to(DType.FLOAT32).unsqueeze(1).expand(37, 29);   // stride 0 along a row
        close(Elementwise.binary(op, A64.to(DType.FLOAT32), row32), Elementwise.binary(op, A64, row64), "gelu backward, x a broadcast row");
        close(Elementwise.binary(op, A64.to(DType.FLOAT32), column32), Elementwise.binary(op, A64, column64), "gelu backward, x one value a row");
        close(Elementwise.binary(op, A64.to(DType.FLOAT32).t(), B64.to(DType.FLOAT32).t()), Elementwise.binary(op, A64.t(), B64.t()), "gelu backward, transposed");
        // x one number (binaryScalar): both passes too
        dev.kiln.backend.Backend cpu = dev.kiln.Backends.get(Device.CPU);
        close(cpu.binaryScalar(op, A64.to(DType.FLOAT32), 1.5, false), cpu.binaryScalar(op, A64, 1.5, false), "gelu backward, x a scalar");
    }

    @Test void reluGradientUsesTheStepKernel() {
        Tensor x32 = A64.to(DType.FLOAT32).requiresGrad(true);
        x32.relu().sum().backward();
        close(x32.grad(), A64.gt(0).to(DType.FLOAT64), "relu grad");
    }

    @Test void binaryOpsContiguousBroadcastAndStrided() {
        List<BinaryOperator<Tensor>> ops = List.of(Tensor::add, Tensor::sub, Tensor::mul, Tensor::maximum, Tensor::minimum,
                (a, b) -> a.div(b.abs().add(0.5)));
        Tensor row64 = B64.select(0, 3);
        for (int k = 0; k < ops.size(); k++) {
            BinaryOperator<Tensor> op = ops.get(k);
            Tensor a32 = A64.to(DType.FLOAT32), b32 = B64.to(DType.FLOAT32);
            close(op.apply(a32, b32), op.apply(A64, B64), "binary op " + k);
            close(op.apply(a32, row64.to(DType.FLOAT32)), op.apply(A64, row64), "binary op " + k + " row broadcast");
            close(op.apply(a32, b32.t().t()), op.apply(A64, B64), "binary op " + k + " same layout");
            close(op.apply(a32.t(), b32.t()), op.apply(A64.t(), B64.t()), "binary op " + k + " transposed");
            close(op.apply(a32, Tensor.scalar(0.7)), op.apply(A64, Tensor.scalar(0.7, DType.FLOAT64, Device.CPU)), "binary op " + k + " scalar tensor");
        }
        close(A64.to(DType.FLOAT32).mul(2.5).sub(1).div(3), A64.mul(2.5).sub(1).div(3), "scalar ops");
        close(A64.to(DType.FLOAT32).abs().pow(1.7), A64.abs().pow(1.7), "pow scalar");
    }

    @Test void reductions() {
        Tensor a32 = A64.to(DType.FLOAT32);
        close(a32.sum(0, false), A64.sum(0, false), "sum over leading dim");
        close(a32.sum(1, true), A64.sum(1, true), "sum over last dim");
        close(a32.t().sum(0, false), A64.t().sum(0, false), "sum of a transposed view");
        close(a32.sum(), A64.sum(), "sum all");
        close(a32.max(1, false), A64.max(1, false), "max");
        close(a32.min(0, false), A64.min(0, false), "min");
        close(a32.mean(new int[]{0, 1}, false), A64.mean(new int[]{0, 1}, false), "mean");
        assertArrayEquals(A64.argmax(1, false).toLongArray(), a32.argmax(1, false).toLongArray());
    }

    @Test void softmaxAndWhere() {
        Tensor a32 = A64.to(DType.FLOAT32);
        close(dev.kiln.nn.F.softmax(a32, 1), dev.kiln.nn.F.softmax(A64, 1), "softmax");
        close(dev.kiln.nn.F.logSoftmax(a32, 0), dev.kiln.nn.F.logSoftmax(A64, 0), "log_softmax");
        Tensor c = B64.gt(0);
        close(Tensor.where(c, a32, a32.neg()), Tensor.where(c, A64, A64.neg()), "where");
        // a masked fill's shape: one value for the taken lanes, the condition one row broadcast down the rows
        Tensor row = B64.select(0, 2).gt(0).unsqueeze(0).expand(B64.shape()[0], B64.shape()[1]);
        close(Tensor.where(row, Tensor.scalar(-7.0).to(DType.FLOAT32), a32), Tensor.where(row, Tensor.scalar(-7.0, DType.FLOAT64, Device.CPU), A64), "where, a fill");
        close(Tensor.where(c.t().contiguous().t(), a32, a32.neg()), Tensor.where(c, A64, A64.neg()), "where, a strided condition");
    }

    @Test void embeddingForwardAndRepeatedIdGradient() {
        Tensor ids = Tensor.of(new long[]{3, 0, 3, 3, 36, 1}, 2, 3);
        Tensor w32 = A64.to(DType.FLOAT32).requiresGrad(true), w64 = A64.detach().requiresGrad(true);
        Tensor e32 = dev.kiln.nn.F.embedding(ids, w32), e64 = dev.kiln.nn.F.embedding(ids, w64);
        close(e32, e64, "embedding");
        Tensor up = B64.narrow(0, 0, 6).reshape(2, 3, 29);
        e32.mul(up.to(DType.FLOAT32)).sum().backward();
        e64.mul(up).sum().backward();
        close(w32.grad(), w64.grad(), "embedding grad");
    }

    @Test void softmaxRows() {
        // rows in lanes with a scalar tail (29 columns), along the last dim and along the first (moved last), forward
        // and backward; a NaN and an all -inf row give NaN rows, as the double path
        double[] v = A64.mul(4).toDoubleArray();
        v[5 * 29 + 3] = Double.NaN;
        for (int j = 0; j < 29; j++) v[9 * 29 + j] = Double.NEGATIVE_INFINITY;
        Tensor x64 = Tensor.of(v, 37, 29), x32 = x64.to(DType.FLOAT32);
        for (boolean log : new boolean[]{false, true}) {
            for (int dim : new int[]{1, 0}) {
                Tensor y32 = dev.kiln.Backends.get(Device.CPU).softmax(x32, dim, log), y64 = dev.kiln.Backends.get(Device.CPU).softmax(x64, dim, log);
                double[] e = y64.toDoubleArray();
                float[] a = y32.toFloatArray();
                for (int i = 0; i < e.length; i++) {
                    if (Double.isNaN(e[i]) || Double.isInfinite(e[i])) assertEquals(e[i], a[i], 0, "softmax " + log + " dim " + dim + " element " + i);
                    else assertEquals(e[i], a[i], 1e-5 * Math.max(1, Math.abs(e[i])), "softmax " + log + " dim " + dim + " element " + i);
                }
                Tensor yf64 = dev.kiln.Backends.get(Device.CPU).softmax(A64, dim, log), g64 = B64;
                close(dev.kiln.Backends.get(Device.CPU).softmaxBackward(g64.to(DType.FLOAT32), yf64.to(DType.FLOAT32), dim, log),
                        dev.kiln.Backends.get(Device.CPU).softmaxBackward(g64, yf64.to(DType.FLOAT32).to(DType.FLOAT64), dim, log),
                        "softmax backward " + log + " dim " + dim);
            }
            // a view that starts inside its storage (rows read in place, not copied)
            Tensor tail32 = A64.to(DType.FLOAT32).narrow(0, 3, 30);
            close(dev.kiln.Backends.get(Device.CPU).softmax(tail32, 1, log), dev.kiln.Backends.get(Device.CPU).softmax(A64.narrow(0, 3, 30), 1, log),
                    "softmax of a narrowed view " + log);
            close(dev.kiln.Backends.get(Device.CPU).softmaxBackward(B64.to(DType.FLOAT32).narrow(0, 3, 30), tail32, 1, log),
                    dev.kiln.Backends.get(Device.CPU).softmaxBackward(B64.narrow(0, 3, 30), tail32.to(DType.FLOAT64), 1, log),
                    "softmax backward of narrowed views " + log);
        }
    }

    /**
     * float32 sigmoid, tanh, SiLU and GELU's tanh form (vector lanes and the scalar tail) against the doubles over six
     * decades and the edges: sigmoid within 2e-7 absolute, the others within 1e-6 relative (tanh's series near zero
     * keeps x's digits), tanh(-0) = -0, the infinities and NaN as Math's.
     */
    @Test void sigmoidFamilyKeepsItsDigits() {
        java.util.Random r = new java.util.Random(5);
        float[] v = new float[1003];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(9) - 6));
        float[] edges = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, 1e-30f, 0.0625f, -0.0624f, 88f, -100f};
        System.arraycopy(edges, 0, v, 0, edges.length);
        System.arraycopy(edges, 0, v, v.length - edges.length, edges.length);   // in the scalar tail too
        Tensor x = Tensor.of(v, v.length);
        float[] s = x.sigmoid().toFloatArray(), t = x.tanh().toFloatArray(), silu = x.silu().toFloatArray();
        float[] gt = dev.kiln.nn.F.gelu(x, dev.kiln.nn.F.GeluApproximation.TANH).toFloatArray();
        for (int i = 0; i < v.length; i++) {
            double es = 1 / (1 + Math.exp(-(double) v[i])), et = Math.tanh(v[i]);
            String at = "element " + i + " (" + v[i] + ")";
            if (Float.isNaN(v[i])) {
                assertTrue(Float.isNaN(s[i]) && Float.isNaN(t[i]), at);
                continue;
            }
            assertEquals(es, s[i], 2e-7, "sigmoid " + at);
            assertEquals(et, t[i], 1e-6 * Math.abs(et), "tanh " + at);
            if (et == 0) assertEquals(Float.floatToIntBits((float) et), Float.floatToIntBits(t[i]), "tanh keeps zero's sign, " + at);
            if (Double.isInfinite(v[i])) continue;
            double x64 = v[i], esilu = x64 / (1 + Math.exp(-x64));
            // 0.5·x·(1 + tanh(u)) as x·sigmoid(2u): the sum cancels to 0 in double too far below zero
            double arg = 2 * Math.sqrt(2 / Math.PI) * (x64 + 0.044715 * x64 * x64 * x64), egt = x64 / (1 + Math.exp(-arg));
            // and far below zero sigmoid(a) ~ exp(a) carries a's float rounding times |a| (and is 0 below exp(-87))
            assertEquals(esilu, silu[i], (1e-6 + 1.2e-7 * Math.abs(x64)) * Math.abs(esilu) + 1e-35, "silu " + at);
            assertEquals(egt, gt[i], (1e-6 + 1.2e-7 * Math.abs(arg)) * Math.abs(egt) + 1e-35, "gelu tanh " + at);
        }
    }
}
