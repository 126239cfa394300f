package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The packed sort's premise: for every dtype it packs, the key bits above {@link SortingCpu#indexBits} order the
 * values exactly as {@link SortingCpu#compare} does (equal values equal, different ones different), in both directions,
 * over every 16-bit and 8-bit value and over float32 and int32 extremes and random values.
 */
class SortingCpuTest {
    @Test void theKeysBitsAboveTheIndexOrderEveryValue() {
        Random rnd = new Random(11);
        check(DType.FLOAT16, all16(true));
        check(DType.BFLOAT16, all16(false));
        double[] f = new double[200_000];
        float[] special = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE, -Float.MAX_VALUE,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 1f, Math.nextUp(1f), Math.nextDown(1f)};
        for (int i = 0; i < f.length; i++) f[i] = i < special.length ? special[i] : Float.intBitsToFloat(rnd.nextInt());
        check(DType.FLOAT32, f);
        double[] in = new double[100_000];
        int[] ends = {0, 1, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, Integer.MAX_VALUE - 1, Integer.MIN_VALUE + 1};
        for (int i = 0; i < in.length; i++) in[i] = i < ends.length ? ends[i] : rnd.nextInt();
        check(DType.INT32, in);
        double[] bytes = new double[256];
        for (int i = 0; i < 256; i++) bytes[i] = i;
        check(DType.UINT8, bytes);
        check(DType.BOOL, new double[]{0, 1, 1, 0});
    }

    private static double[] all16(boolean half) {
        double[] v = new double[65536];
        for (int b = 0; b < v.length; b++) v[b] = half ? Float.float16ToFloat((short) b) : HostArrays.bf16ToFloat((short) b);
        return v;
    }

    private static void check(DType t, double[] values) {
        long low = (1L << SortingCpu.indexBits(t)) - 1;
        for (boolean desc : new boolean[]{false, true}) {
            Double[] sorted = Arrays.stream(values).boxed().toArray(Double[]::new);
            Arrays.sort(sorted, (p, q) -> desc ? SortingCpu.compare(q, p) : SortingCpu.compare(p, q));
            for (int i = 1; i < sorted.length; i++) {
                long a = SortingCpu.orderedKey(sorted[i - 1], desc) & ~low, b = SortingCpu.orderedKey(sorted[i], desc) & ~low;
                int c = desc ? SortingCpu.compare(sorted[i], sorted[i - 1]) : SortingCpu.compare(sorted[i - 1], sorted[i]);
                if (c == 0 ? a != b : a >= b) fail(t + (desc ? " descending" : "") + ": " + sorted[i - 1] + " and " + sorted[i] + " keys " + a + ", " + b);
            }
        }
        assertTrue(SortingCpu.indexBits(t) > 0);
    }
}
