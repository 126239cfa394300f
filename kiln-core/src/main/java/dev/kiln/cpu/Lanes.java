package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;

/**
 * Sums of a vector's lanes for the CPU kernels. Not {@code reduceLanes(ADD)}: for floats its order of additions is
 * unspecified, and the interpreter and C2 use different ones, so a kernel using it gave one input two results in one
 * process (before and after compilation; {@code JitTierDeterminismTest}).
 */
final class Lanes {
    private Lanes() {}

    /** The lanes added in lane order, in double. */
    static double sum(FloatVector v) {
        double s = 0;
        for (int k = 0, n = v.length(); k < n; k++) s += v.lane(k);
        return s;
    }
}
