package dev.kiln.backend;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** FP8 E4M3: every code's value, exact round-to-nearest-even at every midpoint, saturation, NaN, scaled round trips. */
class Fp8E4M3Test {
    /** The 253 finite non-negative... values in code order (0x00..0x7E), as a plain reference from the format's definition. */
    private static List<Double> positiveValues() {
        List<Double> v = new ArrayList<>();
        for (int c = 0; c <= 0x7E; c++) {
            int e = c >> 3, m = c & 7;
            v.add(e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7));
        }
        return v;
    }

    @Test void everyCodeDecodesToItsDefinedValueAndEncodesBack() {
        List<Double> v = positiveValues();
        for (int c = 0; c <= 0x7E; c++) {
            assertEquals(v.get(c), Fp8E4M3.decode((byte) c), 0, "code " + c);
            assertEquals(-v.get(c), Fp8E4M3.decode((byte) (c | 0x80)), 0, "code -" + c);
            assertEquals((byte) c, Fp8E4M3.encode(v.get(c).floatValue()), "value " + v.get(c));
            assertEquals((byte) (c | 0x80), Fp8E4M3.encode(-v.get(c).floatValue()), "value -" + v.get(c));
        }
        assertTrue(Float.isNaN(Fp8E4M3.decode((byte) 0x7F)) && Float.isNaN(Fp8E4M3.decode((byte) 0xFF)));
        assertEquals(448f, Fp8E4M3.decode((byte) 0x7E));
        assertEquals(0x1p-9f, Fp8E4M3.decode((byte) 0x01));
        assertEquals(0x1p-6f, Fp8E4M3.decode((byte) 0x08));
        assertEquals((byte) 0x38, Fp8E4M3.encode(1f));
    }

    @Test void midpointsRoundToTheEvenMantissaAndNeighboursToTheNearest() {
        List<Double> v = positiveValues();
        for (int c = 0; c < 0x7E; c++) {
            double lo = v.get(c), hi = v.get(c + 1), mid = (lo + hi) / 2; // exact in float: at most 5 significant bits
            byte even = (byte) ((c & 1) == 0 ? c : c + 1);
            assertEquals(even, Fp8E4M3.encode((float) mid), "tie between codes " + c + " and " + (c + 1));
            assertEquals((byte) c, Fp8E4M3.encode(Math.nextDown((float) mid)), "just below the midpoint of " + c);
            assertEquals((byte) (c + 1), Fp8E4M3.encode(Math.nextUp((float) mid)), "just above the midpoint of " + c);
        }
    }

    @Test void beyondTheRangeSaturatesAndNaNStaysNaN() {
        assertEquals((byte) 0x7E, Fp8E4M3.encode(449f));
        assertEquals((byte) 0x7E, Fp8E4M3.encode(464f), "the tie with 480 (a NaN code in E4M3FN) saturates");
        assertEquals((byte) 0x7E, Fp8E4M3.encode(1e30f));
        assertEquals((byte) 0x7E, Fp8E4M3.encode(Float.POSITIVE_INFINITY));
        assertEquals((byte) 0xFE, Fp8E4M3.encode(Float.NEGATIVE_INFINITY));
        assertEquals((byte) 0x7F, Fp8E4M3.encode(Float.NaN));
        assertEquals((byte) 0x80, Fp8E4M3.encode(-0f), "negative zero keeps its sign");
        assertEquals((byte) 0x00, Fp8E4M3.encode(0x1p-10f), "half the smallest subnormal ties to zero");
        assertEquals((byte) 0x01, Fp8E4M3.encode(Math.nextUp(0x1p-10f)));
    }

    @Test void scaledRoundTripIsWithinHalfAStepOfThreeMantissaBits() {
        Random r = new Random(4);
        float[] x = new float[5000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * Math.exp(r.nextGaussian() * 2));
        float max = 0;
        for (float v : x) max = Math.max(max, Math.abs(v));
        float scale = Fp8E4M3.scaleFor(max);
        float[] back = Fp8E4M3.dequantize(Fp8E4M3.quantize(x, scale), scale);
        for (int i = 0; i < x.length; i++) {
            double y = Math.abs(x[i] / scale);
            // normals: half a step is 2^-4 of the value; subnormals: half of 2^-9, absolute
            double bound = y >= 0x1p-6 ? Math.abs(x[i]) / 16 : 0x1p-10 * scale;
            assertTrue(Math.abs(back[i] - x[i]) <= bound * 1.000001, "element " + i + ": " + x[i] + " -> " + back[i]);
        }
        assertEquals(max, Fp8E4M3.dequantize(Fp8E4M3.quantize(new float[]{max}, scale), scale)[0], max * 1e-6, "the max maps onto 448 and back");
    }
}
