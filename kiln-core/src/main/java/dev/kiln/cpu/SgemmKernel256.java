package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Matmul family: the {@link SgemmKernel} for 256-bit vectors. AVX2 gives C2 16 ymm registers, and C2 schedules every
 * broadcast of a k step ahead of the FMAs, so a tile needs accumulators + B vectors + MR broadcasts <= 16. 4 x 16
 * (8 + 2 + 4 = 14) and 3 x 24 (9 + 3 + 3) ran at 70-76 GFLOP/s on one core from L1 (about the 256-bit FMA peak);
 * 6 x 16, the BLIS/OpenBLAS Haswell shape (12 + 2 + 6 = 20), and 4 x 24 spilled and ran at 47-52
 * (bench/results/cpu-avx2-2026-11-30.md). 4 x 16 divides the usual sizes (channel counts, 1024) without edge tiles.
 */
final class SgemmKernel256 extends SgemmKernel {
    SgemmKernel256() { super(F, MR, NR, 256, 240, 512); }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final int L = F.length();
    /** Rows of a tile: 4 rows x 2 vectors = 8 accumulators. */
    static final int MR = 4;
    /** Columns of a tile: 2 vectors. */
    static final int NR = 2 * L;

    @Override void copyPanelRow(float[] src, int s, float[] dst, int d) { copyRow16(src, s, dst, d); }

    /** Sixteen floats in two 256-bit vectors: a packed B row of both 256-bit kernels (this and {@link SgemmKernelAvx2}). */
    static void copyRow16(float[] src, int s, float[] dst, int d) {
        FloatVector.fromArray(F, src, s).intoArray(dst, d);
        FloatVector.fromArray(F, src, s + L).intoArray(dst, d + L);
    }

    /** Written out by hand, stores included, as {@link SgemmKernel512#tile} (C2's inlining budget). */
    @Override void tile(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, boolean accumulate) {
        FloatVector z = FloatVector.zero(F);
        FloatVector c00 = z, c01 = z;
        FloatVector c10 = z, c11 = z;
        FloatVector c20 = z, c21 = z;
        FloatVector c30 = z, c31 = z;
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
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + L);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + L);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + L);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + L);
    }
}
