package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 GEMM micro-kernel: an MR x NR tile of C from an MR-row panel of packed A and an NR-column panel of
 * packed B. Packed A holds, for each k, MR consecutive values (one per row); packed B holds, for each k, NR
 * consecutive values (one per column). The tile lives in MR*NR/L vector registers for the whole k loop, so each
 * step costs NR/L vector loads, MR broadcasts and MR*NR/L independent FMAs.
 */
final class SgemmKernel {
    private SgemmKernel() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Rows of a tile. 6 rows x 2 vectors = 12 accumulators: enough to hide FMA latency, few enough for C2 to keep in registers. */
    static final int MR = 6;
    /** Columns of a tile: two vectors. */
    static final int NR = 2 * L;

    /**
     * C[co + i*ldc + j] (+)= sum_k A[ao + k*MR + i] * B[bo + k*NR + j] for i < MR, j < NR.
     * Overwrites C when accumulate is false.
     */
    static void tile(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, boolean accumulate) {
        FloatVector c00 = F.zero().reinterpretAsFloats(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int k = 0; k < kc; k++, ao += MR, bo += NR) {
            FloatVector b0 = FloatVector.fromArray(F, b, bo), b1 = FloatVector.fromArray(F, b, bo + L);
            FloatVector x = FloatVector.broadcast(F, a[ao]);
            c00 = b0.fma(x, c00);
            c01 = b1.fma(x, c01);
            x = FloatVector.broadcast(F, a[ao + 1]);
            c10 = b0.fma(x, c10);
            c11 = b1.fma(x, c11);
            x = FloatVector.broadcast(F, a[ao + 2]);
            c20 = b0.fma(x, c20);
            c21 = b1.fma(x, c21);
            x = FloatVector.broadcast(F, a[ao + 3]);
            c30 = b0.fma(x, c30);
            c31 = b1.fma(x, c31);
            x = FloatVector.broadcast(F, a[ao + 4]);
            c40 = b0.fma(x, c40);
            c41 = b1.fma(x, c41);
            x = FloatVector.broadcast(F, a[ao + 5]);
            c50 = b0.fma(x, c50);
            c51 = b1.fma(x, c51);
        }
        store(c00, c01, c, co, accumulate);
        store(c10, c11, c, co + ldc, accumulate);
        store(c20, c21, c, co + 2 * ldc, accumulate);
        store(c30, c31, c, co + 3 * ldc, accumulate);
        store(c40, c41, c, co + 4 * ldc, accumulate);
        store(c50, c51, c, co + 5 * ldc, accumulate);
    }

    private static void store(FloatVector v0, FloatVector v1, float[] c, int o, boolean accumulate) {
        if (accumulate) {
            v0 = v0.add(FloatVector.fromArray(F, c, o));
            v1 = v1.add(FloatVector.fromArray(F, c, o + L));
        }
        v0.intoArray(c, o);
        v1.intoArray(c, o + L);
    }
}
