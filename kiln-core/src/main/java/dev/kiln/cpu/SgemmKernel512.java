package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Matmul family: the {@link SgemmKernel} for 512-bit vectors (AVX-512, 32 vector registers): an 8 x 32
 * tile, 16 accumulators. Tuned on Zen 4 at 199-205 GFLOP/s on two cores (bench/results/cpu-2026-11-21.md).
 */
final class SgemmKernel512 extends SgemmKernel {
    SgemmKernel512() { super(F, MR, NR, 256, 240, 512); }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    static final int L = F.length();
    /**
     * Rows of a tile. 8 rows x 2 vectors = 16 accumulators: enough to hide FMA latency, and 8 divides the channel
     * counts of typical layers (32, 64, 128). 6, 12 and 14 rows measured the same or slower.
     */
    static final int MR = 8;
    /** Columns of a tile: two vectors. */
    static final int NR = 2 * L;

    /**
     * C[co + i*ldc + j] (+)= sum_k A[ao + k*MR + i] * B[bo + k*NR + j] for i < MR, j < NR.
     * Overwrites C when accumulate is false. Written out by hand, stores included: a helper method for the stores
     * made C2 run out of inlining budget at 8 rows and fall back to boxed vectors (4x slower).
     */
    @Override void copyPanelRow(float[] src, int s, float[] dst, int d) { copyRow32(src, s, dst, d); }

    /** Thirty-two floats in two 512-bit vectors: a packed B row of both 512-bit kernels (this and {@link SgemmKernelAvx512}). */
    static void copyRow32(float[] src, int s, float[] dst, int d) {
        FloatVector.fromArray(F, src, s).intoArray(dst, d);
        FloatVector.fromArray(F, src, s + L).intoArray(dst, d + L);
    }

    @Override void tile(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, boolean accumulate) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z;
        FloatVector c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
        FloatVector c60 = z, c61 = z, c70 = z, c71 = z;
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
            x = FloatVector.broadcast(F, a[ao + 6]);
            c60 = b0.fma(x, c60);
            c61 = b1.fma(x, c61);
            x = FloatVector.broadcast(F, a[ao + 7]);
            c70 = b0.fma(x, c70);
            c71 = b1.fma(x, c71);
        }
        if (accumulate) {
            c00 = c00.add(FloatVector.fromArray(F, c, co));
            c01 = c01.add(FloatVector.fromArray(F, c, co + L));
            c10 = c10.add(FloatVector.fromArray(F, c, co + ldc));
            c11 = c11.add(FloatVector.fromArray(F, c, co + ldc + L));
            c20 = c20.add(FloatVector.fromArray(F, c, co + 2 * ldc));
            c21 = c21.add(FloatVector.fromArray(F, c, co + 2 * ldc + L));
            c30 = c30.add(FloatVector.fromArray(F, c, co + 3 * ldc));
            c31 = c31.add(FloatVector.fromArray(F, c, co + 3 * ldc + L));
            c40 = c40.add(FloatVector.fromArray(F, c, co + 4 * ldc));
            c41 = c41.add(FloatVector.fromArray(F, c, co + 4 * ldc + L));
            c50 = c50.add(FloatVector.fromArray(F, c, co + 5 * ldc));
            c51 = c51.add(FloatVector.fromArray(F, c, co + 5 * ldc + L));
            c60 = c60.add(FloatVector.fromArray(F, c, co + 6 * ldc));
            c61 = c61.add(FloatVector.fromArray(F, c, co + 6 * ldc + L));
            c70 = c70.add(FloatVector.fromArray(F, c, co + 7 * ldc));
            c71 = c71.add(FloatVector.fromArray(F, c, co + 7 * ldc + L));
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + L);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + L);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + L);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + L);
        c40.intoArray(c, co + 4 * ldc);
        c41.intoArray(c, co + 4 * ldc + L);
        c50.intoArray(c, co + 5 * ldc);
        c51.intoArray(c, co + 5 * ldc + L);
        c60.intoArray(c, co + 6 * ldc);
        c61.intoArray(c, co + 6 * ldc + L);
        c70.intoArray(c, co + 7 * ldc);
        c71.intoArray(c, co + 7 * ldc + L);
    }
}
