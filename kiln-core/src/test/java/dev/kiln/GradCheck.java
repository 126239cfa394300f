package dev.kiln;

import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Checks autograd against central finite differences in float64. The function's output is reduced with fixed
 * random weights (sum(f(x) * w)), so every output element's gradient path is exercised.
 */
public final class GradCheck {
    private GradCheck() {}

    public static void check(Function<Tensor[], Tensor> f, Tensor... inputs) { check(f, 1e-6, 1e-5, inputs); }

    /** inputs must be float64 leaves; each gets requiresGrad. */
    public static void check(Function<Tensor[], Tensor> f, double eps, double tol, Tensor... inputs) {
        for (Tensor t : inputs) {
            if (t.dtype() != DType.FLOAT64) throw new IllegalArgumentException("gradcheck needs float64 inputs");
            t.requiresGrad(true);
        }
        Tensor out = f.apply(inputs);
        Tensor w = Tensor.randn(new Generator(99), out.shape(), DType.FLOAT64, out.device());
        Tensor loss = out.mul(w).sum();
        loss.backward();
        for (int k = 0; k < inputs.length; k++) {
            Tensor x = inputs[k];
            assertNotNull(x.grad(), "input " + k + " got no gradient");
            double[] analytic = x.grad().toDoubleArray();
            double[] values = x.toDoubleArray();
            int[] shape = x.shape();
            for (int i = 0; i < values.length; i++) {
                double orig = values[i];
                values[i] = orig + eps;
                double plus = evalWith(f, inputs, k, Tensor.of(values, shape), w);
                values[i] = orig - eps;
                double minus = evalWith(f, inputs, k, Tensor.of(values, shape), w);
                values[i] = orig;
                double numeric = (plus - minus) / (2 * eps);
                double scale = Math.max(1, Math.abs(numeric));
                assertEquals(numeric, analytic[i], tol * scale,
                        "input " + k + " element " + i + ": analytic " + analytic[i] + " vs numeric " + numeric);
            }
        }
    }

    private static double evalWith(Function<Tensor[], Tensor> f, Tensor[] inputs, int k, Tensor replacement, Tensor w) {
        Tensor[] args = inputs.clone();
        args[k] = replacement;
        return Tensor.noGrad(() -> f.apply(args).mul(w).sum().item());
    }

    /** A float64 tensor of standard normal values. */
    public static Tensor randn(long seed, int... shape) {
        return Tensor.randn(new Generator(seed), shape, DType.FLOAT64, Device.CPU);
    }
}
