package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.X86Assembler.*;

/**
 * Part of the Matmul family: the 256-bit {@link SgemmKernelAsm}, on processors with AVX2 and FMA. C2 holds
 * {@link SgemmKernel256} to 8 accumulators of the 16 ymm registers; written out, a 6 x 16 tile keeps 12 accumulators,
 * B's two vectors and two broadcasts in all 16 (the BLIS and OpenBLAS Haswell shape), four k steps a loop turn, C's tile
 * prefetched as the loop starts. Measured against the Vector API kernel and OpenBLAS in
 * bench/results/cpu-avx2-asm-2026-12-02.md.
 */
final class SgemmKernelAvx2 extends SgemmKernelAsm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final int L = F.length();
    /** Rows of a tile: 6 rows x 2 vectors = 12 accumulators (ymm4-15). */
    static final int MR = 6;
    static final int NR = 2 * L;
    private static final int UNROLL = 4;

    private static final Entries ENTRIES = place(SgemmKernelAvx2::rowCode, "avx2", "fma");
    /** Why the kernel is not in use, or null when it is. */
    static final String UNAVAILABLE = ENTRIES.unavailable();

    /** Whether this machine runs the kernel (see {@link #UNAVAILABLE} when not). */
    static boolean available() { return UNAVAILABLE == null; }

    SgemmKernelAvx2() { super("AVX2", ENTRIES, F, MR, NR, 256, 240, 512); }

    @Override void copyPanelRow(float[] src, int s, float[] dst, int d) { SgemmKernel256.copyRow16(src, s, dst, d); }

    /**
     * The row of tiles (System V: a rdi, b rsi, c rdx, kc rcx, ldc r8, tiles r9): for each tile, C[6 x 16] (+)= A panel
     * (k-major, 6 a step) x B panel (k-major, 16 a step); the B panels lie back to back, so b runs straight on from one
     * tile to the next, and C moves 16 floats right.
     */
    static byte[] rowCode(boolean accumulate) {
        X86Assembler x = new X86Assembler();
        int a = RDI, b = RSI, c = RDX, kc = RCX, ldc = R8, tiles = R9, pa = RAX, k = R10, pc = R11;
        int tile = x.here();
        // C's tile into the cache while the k loop runs (C is cold in a large product: each tile is read once a slab);
        // 0 and 60 reach both lines of a row that straddles two. +1.5-2% at two threads, even at one
        x.prefetchTile(c, pc, ldc, MR, 60);
        for (int y = 4; y < 16; y++) x.vzero(y);
        x.kLoop(pa, a, b, k, kc, UNROLL, MR * 4, NR * 4, (aDisp, bDisp) -> step(x, pa, b, aDisp, bDisp));
        x.storeTileThenNext(c, pc, ldc, MR, 4, 32, accumulate, tiles, tile);
        return x.code();
    }

    /** One k step: B's two vectors into ymm0-1, then three pairs of broadcasts (ymm2-3), each pair feeding four FMAs. */
    private static void step(X86Assembler x, int pa, int b, int aDisp, int bDisp) {
        x.vmovupsLoad(0, b, bDisp);
        x.vmovupsLoad(1, b, bDisp + 32);
        for (int p = 0; p < MR / 2; p++) {
            x.vbroadcastss(2, pa, aDisp + 8 * p);
            x.vbroadcastss(3, pa, aDisp + 8 * p + 4);
            int y = 4 + 4 * p;
            x.vfmadd231ps(y, 0, 2);
            x.vfmadd231ps(y + 1, 1, 2);
            x.vfmadd231ps(y + 2, 0, 3);
            x.vfmadd231ps(y + 3, 1, 3);
        }
    }
}
