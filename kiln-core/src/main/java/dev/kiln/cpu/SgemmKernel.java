package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Matmul family: the float32 GEMM micro-kernel of {@link Sgemm}, one subclass per vector width. A
 * kernel computes an MR x NR tile of C from an MR-row panel of packed A and an NR-column panel of packed B. Packed A
 * holds, for each k, MR consecutive values (one per row); packed B holds, for each k, NR consecutive values (one per
 * column). The tile lives in MR*NR/L vector registers for the whole k loop, so each step costs NR/L vector loads, MR
 * broadcasts and MR*NR/L independent FMAs.
 * <p>
 * The shape depends on the register file: AVX-512 has 32 registers and takes 8 x 32 (16 accumulators); AVX2 has 16
 * ymm registers, and C2 loads all of a k step's broadcasts before its FMAs, so 4 x 16 (8 accumulators + 2 B vectors
 * + 4 broadcasts = 14) runs at the FMA peak where 8 x 16 and 6 x 16 spill; 128-bit vectors take 4 x 8 likewise.
 * Where the processor runs them, machine-code kernels ({@link SgemmKernelAsm}) fill the registers instead. Each
 * subclass holds its species in a static final field, because C2 only emits straight vector code when the species
 * is a constant. {@link Sgemm#PREFERRED} takes the kernel {@link #forSpecies} gives {@link FloatVector#SPECIES_PREFERRED};
 * tests build the narrower ones likewise so every path runs on any machine. (No kernel is built in this class's own
 * initialiser: a subclass initialised first would then be built before its own statics were set.)
 */
abstract sealed class SgemmKernel permits SgemmKernel512, SgemmKernel256, SgemmKernelAsm, SgemmKernel128 {
    /** The kernel for vectors of species s: 512-bit and wider, 256-bit, or 128-bit (and narrower: 64-bit has no kernel). */
    static SgemmKernel forSpecies(VectorSpecies<Float> s) {
        int bits = s.vectorBitSize();
        if (bits >= 512) return SgemmKernelAvx512.available() ? new SgemmKernelAvx512() : new SgemmKernel512();
        if (bits == 256) return SgemmKernelAvx2.available() ? new SgemmKernelAvx2() : new SgemmKernel256();
        if (bits == 128) return new SgemmKernel128();
        throw new IllegalArgumentException("no float32 GEMM kernel for " + s);
    }

    final VectorSpecies<Float> species;
    /** Floats per vector. */
    final int lanes;
    /** Rows and columns of a tile. */
    final int mr, nr;
    /** Block sizes (see {@link Sgemm}): slab depth, rows of A and columns of B packed at once. */
    final int kc, mc, nc;

    SgemmKernel(VectorSpecies<Float> species, int mr, int nr, int kc, int mc, int nc) {
        this.species = species;
        this.lanes = species.length();
        this.mr = mr;
        this.nr = nr;
        this.kc = kc;
        this.mc = mc;
        this.nc = nc;
    }

    /**
     * C[co + i*ldc + j] (+)= sum_k A[ao + k*MR + i] * B[bo + k*NR + j] for i < MR, j < NR.
     * Overwrites C when accumulate is false.
     */
    abstract void tile(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, boolean accumulate);

    /**
     * {@code tiles} tiles side by side: tile t takes B's panel at bo + t*kc*NR (packed panels lie back to back) and C's
     * columns from co + t*NR. One call per row of tiles lets a kernel keep its own loop ({@link SgemmKernelAsm}).
     */
    void row(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, int tiles, boolean accumulate) {
        for (int t = 0; t < tiles; t++) tile(kc, a, ao, b, bo + t * kc * nr, c, co + t * nr, ldc, accumulate);
    }

    /** dst[d .. d+NR) = src[s .. s+NR): one k-row of a packed B panel, in whole vectors. */
    abstract void copyPanelRow(float[] src, int s, float[] dst, int d);

    @Override public String toString() {
        return getClass().getSimpleName() + "[" + mr + "x" + nr + ", " + species + ", kc " + kc + " mc " + mc + " nc " + nc + "]";
    }
}
