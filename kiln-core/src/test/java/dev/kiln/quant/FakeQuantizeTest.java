package dev.kiln.quant;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.F;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Linear;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.Test;

import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/** Fake quantization: int8's values forward, the clipped straight-through gradient backward, and QAT into int8. */
class FakeQuantizeTest {
    /** x spread over ±1.5 ranges of the scale, so some values are clamped. */
    private static Tensor spread(long seed, int... shape) { return GradCheck.randn(seed, shape).mul(0.5); }

    @Test void forwardValuesAreInt8QuantizeThenDequantize() {
        Tensor x = spread(1, 200);
        double scale = 0.01;
        double[] y = FakeQuantize.perTensor(x, scale).toDoubleArray(), v = x.toDoubleArray();
        for (int i = 0; i < v.length; i++) assertEquals(Int8.quantize((float) v[i], (float) scale) * scale, y[i], 1e-12, "element " + i);
        assertEquals(2 * 0.01, FakeQuantize.perTensor(Tensor.of(new double[]{0.015}, 1), 0.01).item(), 1e-15, "half rounds away from zero");
        assertEquals(-2 * 0.01, FakeQuantize.perTensor(Tensor.of(new double[]{-0.015}, 1), 0.01).item(), 1e-15, "and so for negatives");
    }

    /**
     * The STE rule, checked as a gradient check: the analytic gradient of fake_quantize must equal the finite-difference
     * gradient of its surrogate clamp(x, ±127·s) (rounding is piecewise constant, so fake_quantize's own finite differences are 0).
     */
    @Test void theGradientIsTheClippedStraightThroughEstimator() {
        double scale = 0.005; // ±0.635: a fair share of N(0, 0.5) values fall outside and must get gradient 0
        steMatchesSurrogate(x -> FakeQuantize.perTensor(x, scale), x -> x.clamp(-127 * scale, 127 * scale), spread(2, 6, 7));
        Tensor scales = Tensor.of(new double[]{0.002, 0.004, 0.01}, 3);
        Tensor limit = scales.reshape(3, 1).mul(127);
        steMatchesSurrogate(w -> FakeQuantize.perChannel(w, scales), w -> w.minimum(limit).maximum(limit.neg()), spread(3, 3, 9));
    }

    private static void steMatchesSurrogate(Function<Tensor, Tensor> fq, Function<Tensor, Tensor> surrogate, Tensor x) {
        x.requiresGrad(true);
        Tensor w = GradCheck.randn(9, x.shape());
        fq.apply(x).mul(w).sum().backward();
        double[] analytic = x.grad().toDoubleArray(), values = x.toDoubleArray(), weights = w.toDoubleArray();
        int clipped = 0;
        for (int i = 0; i < values.length; i++) {
            double eps = 1e-7, orig = values[i];
            values[i] = orig + eps;
            double plus = Tensor.noGrad(() -> surrogate.apply(Tensor.of(values.clone(), x.shape())).mul(w).sum().item());
            values[i] = orig - eps;
            double minus = Tensor.noGrad(() -> surrogate.apply(Tensor.of(values.clone(), x.shape())).mul(w).sum().item());
            values[i] = orig;
            double numeric = (plus - minus) / (2 * eps);
            assertEquals(numeric, analytic[i], 1e-6, "element " + i);
            if (numeric == 0) clipped++;
            else assertEquals(weights[i], analytic[i], 1e-9, "inside the range the gradient passes straight through");
        }
        assertTrue(clipped > 0 && clipped < values.length, "both rules exercised: " + clipped + " of " + values.length + " clipped");
    }

    @Test void channelScalesAreInt8sPerRowScales() {
        Tensor w = Tensor.of(new float[]{0.5f, -2f, 0, 0, 1f, 0.25f}, 3, 2);
        assertArrayEquals(new float[]{2f / 127, 1f, 1f / 127}, FakeQuantize.channelScales(w).toFloatArray(), 1e-9f);
    }

    @Test void aQatModelTrainsAndItsFakeQuantizedOutputsAreTheInt8Models() {
        Generator g = new Generator(7);
        Sequential net = new Sequential(new Conv2d(1, 4, 3, 2, 1, g), new ReLU(), new Flatten(), new Linear(4 * 5 * 5, 16, g), new ReLU(), new Linear(16, 3, g));
        Sequential qat = QuantizedModel.prepareQat(net);
        Adam opt = new Adam(net.parameters(), 0.01);
        Tensor x = Tensor.rand(g, 12, 1, 10, 10);
        Tensor y = Tensor.of(new long[]{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, 12);
        double first = 0, last = 0;
        for (int s = 0; s < 30; s++) {
            opt.zeroGrad();
            Tensor loss = F.crossEntropy(qat.forward(x), y);
            loss.backward();
            opt.step();
            if (s == 0) first = loss.item();
            last = loss.item();
        }
        assertTrue(last < first * 0.7, "QAT trains through the straight-through gradient: " + first + " -> " + last);
        qat.eval();
        float[] simulated = Tensor.noGrad(() -> qat.forward(x)).toFloatArray();
        Sequential int8 = QuantizedModel.convertQat(qat);   // in place
        assertInstanceOf(QuantizedConv2d.class, int8.get(0));
        float[] real = int8.forward(x).toFloatArray();
        double max = 0;
        for (float v : simulated) max = Math.max(max, Math.abs(v));
        // the same codes both ways; only float summation order and a rare rounding tie of x/s differ
        for (int i = 0; i < real.length; i++) assertEquals(simulated[i], real[i], 1e-3 * max, "logit " + i);
    }
}
