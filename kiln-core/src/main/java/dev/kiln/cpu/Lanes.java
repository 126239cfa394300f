package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Reductions of a vector's lanes for the CPU kernels, the same in interpreted and compiled code. Not
 * {@code reduceLanes(ADD)}: for floats its order of additions is unspecified, and the interpreter and C2 use different
 * ones, so a kernel using it gave one input two results in one process (before and after compilation;
 * {@code JitTierDeterminismTest}). Kernels call these once per row, so they are built to be short.
 */
final class Lanes {
    private Lanes() {}

    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[FloatVector.SPECIES_MAX.length()]);

    /**
     * The lanes added in lane order, in double. Stored and read back as an array: {@code lane(k)} with k a variable
     * dispatches on k for every lane (25-45 ns a 16-lane vector against 7).
     */
    static double sum(FloatVector v) { return sum(v, LANES.get()); }

    /**
     * The same with the caller's scratch (at least v's length): for loops that reduce once per short run, where the
     * thread-local lookup showed in profiles (2.5% of a small ResNet's step, from batch norm's backward).
     */
    static double sum(FloatVector v, float[] a) {
        v.intoArray(a, 0);
        double s = 0;
        for (int k = 0, n = v.length(); k < n; k++) s += a[k];
        return s;
    }

    /** The largest lane, NaN if any is (Math.max's order does not matter, so reduceLanes may choose it: 11 ns against 32). */
    static float max(FloatVector v) { return v.reduceLanes(VectorOperators.MAX); }
}
