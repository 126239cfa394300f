package dev.kiln.models;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Picking the next token: greedy, top-k, and draws that follow the tempered softmax. */
class SamplingTest {
    static final Tensor LOGITS = Tensor.of(new float[]{0.5f, 2.0f, -1.0f, 1.5f, 0.0f, 1.9f});

    @Test void greedyAndTopOneAreTheArgmax() {
        Generator g = new Generator(1);
        assertEquals(1, Sampling.greedy().next(LOGITS, g));
        for (int i = 0; i < 100; i++) assertEquals(1, new Sampling(5.0, 1).next(LOGITS, g));
        // ties: the lower id
        assertEquals(0, Sampling.greedy().next(Tensor.of(new float[]{3, 3, 1}), g));
        // NaN is never the most likely token, nor drawn while another candidate is left
        Tensor nan = Tensor.of(new float[]{Float.NaN, 1, 4, Float.NaN, 2});
        assertEquals(2, Sampling.greedy().next(nan, g));
        for (int i = 0; i < 200; i++) {
            long id = new Sampling(1.0, 3).next(nan, g);
            assertTrue(id == 1 || id == 2 || id == 4, "drew " + id);
        }
    }

    @Test void aSampleNeverFallsOutsideTheTopK() {
        Generator g = new Generator(2);
        Tensor logits = Tensor.randn(new Generator(3), 200);
        double[] z = logits.toDoubleArray();
        double kth = java.util.Arrays.stream(z).boxed().sorted(java.util.Comparator.reverseOrder()).skip(9).findFirst().orElseThrow();
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (int i = 0; i < 5000; i++) {
            long id = new Sampling(3.0, 10).next(logits, g);   // a high temperature spreads the draws
            assertTrue(z[(int) id] >= kth, "token " + id + " is not in the top 10");
            seen.add(id);
        }
        assertEquals(10, seen.size(), "all of the top 10 are drawn");
    }

    /** 40,000 draws: each token's frequency within 0.01 of softmax(z / T) (about 4 standard deviations). */
    @Test void drawsFollowTheTemperedSoftmax() {
        for (double temperature : new double[]{0.7, 1.0, 2.0}) {
            Generator g = new Generator(4);
            double[] z = LOGITS.toDoubleArray(), p = new double[z.length];
            double sum = 0;
            for (int i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i] / temperature);
            int n = 40_000;
            int[] counts = new int[z.length];
            Sampling s = new Sampling(temperature, 0);
            for (int i = 0; i < n; i++) counts[(int) s.next(LOGITS, g)]++;
            for (int i = 0; i < z.length; i++) {
                assertEquals(p[i] / sum, counts[i] / (double) n, 0.01, "token " + i + " at temperature " + temperature);
            }
        }
    }

    @Test void seededDrawsRepeat() {
        Sampling s = new Sampling(1.0, 4);
        Generator a = new Generator(9), b = new Generator(9);
        for (int i = 0; i < 50; i++) assertEquals(s.next(LOGITS, a), s.next(LOGITS, b));
    }

    @Test void errors() {
        assertThrows(IllegalArgumentException.class, () -> new Sampling(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampling(Double.NaN, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampling(1, -2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Sampling.greedy().next(Tensor.zeros(2, 3), new Generator(0)));
        assertTrue(e.getMessage().contains("logits must be (V), got [2, 3]"), e.getMessage());
    }
}
