package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.X86Assembler.*;

/**
 * Part of the Matmul family: the 512-bit {@link SgemmKernelAsm}, on processors with AVX-512F: the 8 x 32 tile of
 * {@link SgemmKernel512} (16 accumulators, zmm16-31; B's two vectors in zmm0-1, broadcasts in zmm2-3), written out:
 * four k steps a loop turn, no index arithmetic or bounds checks between the FMAs, KC 384. 10-25% faster than C2's
 * code for the same tile on large products, on a 2-core Xeon (bench/results/cpu-avx512-asm-2026-12-04.md).
 */
final class SgemmKernelAvx512 extends SgemmKernelAsm {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    static final int L = F.length();
    /**
     * Rows of a tile: 8 rows x 2 vectors = 16 accumulators (zmm16-31). 12 and 14 rows (24 and 28 accumulators) ran
     * the large products no faster, and leave an edge panel at the power-of-two row counts of batches and attention
     * blocks (64 = 5 x 12 + 4): the LSTM and GPT steps were 2-10% slower with 12.
     */
    static final int MR = 8;
    static final int NR = 2 * L;
    private static final int UNROLL = 4, FIRST_ACC = 32 - 2 * MR;

    private static final Entries ENTRIES = place(SgemmKernelAvx512::rowCode, "avx512f");
    /** Why the kernel is not in use, or null when it is. */
    static final String UNAVAILABLE = ENTRIES.unavailable();

    /** Whether this machine runs the kernel (see {@link #UNAVAILABLE} when not). */
    static boolean available() { return UNAVAILABLE == null; }

    // KC 384: an A panel is 12 KB of L1, a B block 768 KB of L2, and a transformer's 384-deep products take one slab
    SgemmKernelAvx512() { super("AVX-512", ENTRIES, F, MR, NR, 384, 240, 512); }

    @Override void copyPanelRow(float[] src, int s, float[] dst, int d) { SgemmKernel512.copyRow32(src, s, dst, d); }

    /**
     * The row of tiles (System V: a rdi, b rsi, c rdx, kc rcx, ldc r8, tiles r9): for each tile, C[MR x 32] (+)= A panel
     * (k-major, MR a step) x B panel (k-major, 32 a step); the B panels lie back to back, and C moves 32 floats right.
     */
    static byte[] rowCode(boolean accumulate) {
        X86Assembler x = new X86Assembler();
        int a = RDI, b = RSI, c = RDX, kc = RCX, ldc = R8, tiles = R9, pa = RAX, k = R10, pc = R11;
        int tile = x.here();
        // no prefetch of C's tile here (the AVX2 kernel's): 36 lines a tile, and no gain measured at 512 bits
        for (int z = FIRST_ACC; z < 32; z++) x.vzero512(z);
        x.kLoop(pa, a, b, k, kc, UNROLL, MR * 4, NR * 4, (aDisp, bDisp) -> step(x, pa, b, aDisp, bDisp));
        x.storeTileThenNext(c, pc, ldc, MR, FIRST_ACC, 64, accumulate, tiles, tile);
        return x.code();
    }

    /** One k step: B's two vectors into zmm0-1, then each row's broadcast (zmm2 and zmm3 in turn) feeding its two FMAs. */
    private static void step(X86Assembler x, int pa, int b, int aDisp, int bDisp) {
        x.vmovupsLoad512(0, b, bDisp);
        x.vmovupsLoad512(1, b, bDisp + 64);
        for (int i = 0; i < MR; i++) {
            int r = 2 + (i & 1), z = FIRST_ACC + 2 * i;
            x.vbroadcastss512(r, pa, aDisp + 4 * i);
            x.vfmadd231ps512(z, 0, r);
            x.vfmadd231ps512(z + 1, 1, r);
        }
    }
}
