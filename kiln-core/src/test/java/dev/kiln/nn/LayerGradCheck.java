package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Checks a module's parameter gradients against central differences in float64: each parameter element is
 * nudged in place by ±eps and the weighted sum of the module's output re-evaluated.
 */
public final class LayerGradCheck {
    private LayerGradCheck() {}

    public static <M extends Layer & Forward> void check(M m, Tensor x) { check(m, x, 1e-6, 1e-5); }

    public static <M extends Layer & Forward> void check(M m, Tensor x, double eps, double tol) {
        for (Tensor p : m.parameters()) if (p.dtype() != DType.FLOAT64) throw new IllegalArgumentException("module must be float64");
        Tensor out = m.forward(x);
        Tensor w = Tensor.randn(new Generator(7), out.shape(), DType.FLOAT64, out.device());
        m.zeroGrad();
        out.mul(w).sum().backward();
        for (Map.Entry<String, Tensor> e : m.namedParameters().entrySet()) {
            Tensor p = e.getValue();
            assertNotNull(p.grad(), e.getKey() + " got no gradient");
            double[] analytic = p.grad().toDoubleArray(), values = p.toDoubleArray();
            int[] shape = p.shape();
            for (int i = 0; i < values.length; i++) {
                double orig = values[i];
                values[i] = orig + eps;
                double plus = loss(m, x, w, p, values, shape);
                values[i] = orig - eps;
                double minus = loss(m, x, w, p, values, shape);
                values[i] = orig;
                Tensor.noGrad(() -> p.copyFrom(Tensor.of(values, shape)));
                double numeric = (plus - minus) / (2 * eps);
                assertEquals(numeric, analytic[i], tol * Math.max(1, Math.abs(numeric)), e.getKey() + "[" + i + "]");
            }
        }
    }

    private static double loss(Forward m, Tensor x, Tensor w, Tensor p, double[] values, int[] shape) {
        return Tensor.noGrad(() -> {
            p.copyFrom(Tensor.of(values, shape));
            return m.forward(x).mul(w).sum().item();
        });
    }
}
