package dev.kiln.cuda;

import dev.kiln.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The interop tests' comparison with PyTorch's saved logits: the relative error ||got - want|| / ||want||, printed. */
final class InteropCheck {
    private InteropCheck() {}

    static void check(String what, Tensor got, Tensor want, double tolerance) {
        double[] g = got.toDoubleArray(), w = want.toDoubleArray();
        assertEquals(w.length, g.length, what + ": number of logits");
        double num = 0, den = 0;
        for (int i = 0; i < w.length; i++) {
            num += (g[i] - w[i]) * (g[i] - w[i]);
            den += w[i] * w[i];
        }
        double rel = Math.sqrt(num / den);
        System.out.printf("[interop] %s: relative error %.2e over %d logits%n", what, rel, w.length);
        assertTrue(rel < tolerance, what + ": relative error " + rel);
    }
}
