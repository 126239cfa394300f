package dev.kiln.cpu;

import dev.kiln.Generator;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Dropout's float32 mask loop in each of its widths (8 lanes for 512-bit machines, 4 for 256-bit, scalar), forced
 * whatever this machine prefers, against the scalar rule x * (uniformAt(key, i) >= p ? scale : 0) on fresh inputs.
 */
class DropoutCpuTest {
    @ParameterizedTest(name = "{0} lanes")
    @ValueSource(ints = {8, 4, 1})
    void everyWidthMatchesTheScalarRule(int lanes) {
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        int n = 1000 + r.nextInt(100), ox = r.nextInt(5), lo = r.nextInt(9), hi = n - r.nextInt(9);
        long key = r.nextLong();
        double p = r.nextDouble() * 0.9;
        float s = (float) (1 / (1 - p));
        float[] xs = new float[n + ox], os = new float[n];
        for (int i = 0; i < xs.length; i++) xs[i] = (float) r.nextGaussian();
        DropoutCpu.dropoutF32(lanes, xs, ox, os, lo, hi, key, p, s);
        for (int i = 0; i < n; i++) {
            float want = i < lo || i >= hi ? 0f : xs[ox + i] * (Generator.uniformAt(key, i) >= p ? s : 0f);
            assertEquals(want, os[i], 0f, "element " + i + " (p " + p + ", key " + key + ")");
        }
    }

    @org.junit.jupiter.api.Test void lanesFollowTheMachine() {
        assertEquals(8, DropoutCpu.lanesFor(512));
        assertEquals(4, DropoutCpu.lanesFor(256));
        assertEquals(1, DropoutCpu.lanesFor(128));
    }
}
