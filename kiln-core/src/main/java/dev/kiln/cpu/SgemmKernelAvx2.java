package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Objects;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static dev.kiln.cpu.X86Assembler.*;

/**
 * Part of the Matmul family: the 256-bit {@link SgemmKernel} as machine code ({@link MachineCode}), on processors with
 * AVX2 and FMA. C2 loads every operand of a k step before its FMAs, which holds {@link SgemmKernel256} to 8 accumulators
 * of the 16 ymm registers; written out, a 6 x 16 tile keeps 12 accumulators, B's two vectors and two broadcasts in all
 * 16 (the BLIS and OpenBLAS Haswell shape), four k steps a loop turn, C's tile prefetched as the loop starts. One call
 * runs a whole row of tiles, spreading the downcall over up to NC/NR tiles. Measured against the Vector API kernel and OpenBLAS in
 * bench/results/cpu-avx2-asm-2026-12-02.md; {@code kiln.cpu.asm} off falls back to the Vector API kernel.
 */
final class SgemmKernelAvx2 extends SgemmKernel {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final int L = F.length();
    /** Rows of a tile: 6 rows x 2 vectors = 12 accumulators (ymm4-15). */
    static final int MR = 6;
    static final int NR = 2 * L;
    private static final int UNROLL = 4;

    /** The two entry points (C overwritten or accumulated), or null where the machine or the setting rules them out. */
    private static final MethodHandle OVERWRITE, ACCUMULATE;
    /** Why the kernel is not in use, or null when it is. */
    static final String UNAVAILABLE;

    static {
        MethodHandle over = null, acc = null;
        String why = MachineCode.whyUnavailable("avx2", "fma");
        if (why == null) {
            try {
                FunctionDescriptor row = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG);
                over = MachineCode.function(rowCode(false), row);
                acc = MachineCode.function(rowCode(true), row);
            } catch (Throwable t) {
                over = acc = null;
                why = "machine code could not be placed: " + t.getMessage();
            }
        }
        OVERWRITE = over;
        ACCUMULATE = acc;
        UNAVAILABLE = why;
    }

    /** Whether this machine runs the kernel (see {@link #UNAVAILABLE} when not). */
    static boolean available() { return UNAVAILABLE == null; }

    SgemmKernelAvx2() {
        super(F, MR, NR, 256, 240, 512);
        if (!available()) throw new IllegalStateException("the AVX2 GEMM kernel is unavailable: " + UNAVAILABLE);
    }

    @Override void copyPanelRow(float[] src, int s, float[] dst, int d) { SgemmKernel256.copyRow16(src, s, dst, d); }

    @Override void tile(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, boolean accumulate) {
        row(kc, a, ao, b, bo, c, co, ldc, 1, accumulate);
    }

    /** The machine code reads and writes memory unchecked: every index it will touch is checked here first. */
    @Override void row(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, int tiles, boolean accumulate) {
        if (tiles <= 0) return;
        if (kc < 0 || ldc < NR) throw new IllegalArgumentException("AVX2 GEMM kernel: kc must be >= 0 and ldc >= " + NR + ", got " + kc + " and " + ldc);
        Objects.checkFromIndexSize(ao, (long) MR * kc, a.length);
        Objects.checkFromIndexSize(bo, (long) tiles * kc * NR, b.length);
        Objects.checkFromIndexSize(co, (long) (MR - 1) * ldc + (long) tiles * NR, c.length);
        MemorySegment pa = MemorySegment.ofArray(a).asSlice(4L * ao), pb = MemorySegment.ofArray(b).asSlice(4L * bo),
                pc = MemorySegment.ofArray(c).asSlice(4L * co);
        try {
            if (accumulate) ACCUMULATE.invokeExact(pa, pb, pc, (long) kc, 4L * ldc, (long) tiles);
            else OVERWRITE.invokeExact(pa, pb, pc, (long) kc, 4L * ldc, (long) tiles);
        } catch (Throwable t) {
            throw new IllegalStateException("the AVX2 GEMM kernel failed", t);
        }
    }

    /**
     * {@code void row(float* a, float* b, float* c, long kc, long ldcBytes, long tiles)} (System V: rdi, rsi, rdx, rcx,
     * r8, r9): for each of `tiles` tiles, C[6 x 16] (+)= A panel (k-major, 6 a step) x B panel (k-major, 16 a step); the B
     * panels lie back to back, so b runs straight on from one tile to the next, and C moves 16 floats right.
     */
    static byte[] rowCode(boolean accumulate) {
        X86Assembler x = new X86Assembler();
        int a = RDI, b = RSI, c = RDX, kc = RCX, ldc = R8, tiles = R9, pa = RAX, k = R10, pc = R11;
        int tile = x.here();
        // C's tile into the cache while the k loop runs (C is cold in a large product: each tile is read once a slab);
        // 0 and 60 reach both lines of a row that straddles two. +1.5-2% at two threads, even at one
        x.mov(pc, c);
        for (int i = 0; i < MR; i++) {
            x.prefetch(pc, 0);
            x.prefetch(pc, 60);
            if (i < MR - 1) x.add(pc, ldc);
        }
        for (int y = 4; y < 16; y++) x.vzero(y);
        x.mov(pa, a);
        x.mov(k, kc);
        x.cmpImm(k, UNROLL);
        int fewSteps = x.jumpForward(JL);
        int unrolled = x.here();
        for (int s = 0; s < UNROLL; s++) step(x, pa, b, s * MR * 4, s * NR * 4);
        x.addImm(pa, UNROLL * MR * 4);
        x.addImm(b, UNROLL * NR * 4);
        x.subImm(k, UNROLL);
        x.cmpImm(k, UNROLL);
        x.jumpBack(JGE, unrolled);
        x.bind(fewSteps);
        x.test(k, k);
        int stepsDone = x.jumpForward(JZ);
        int single = x.here();
        step(x, pa, b, 0, 0);
        x.addImm(pa, MR * 4);
        x.addImm(b, NR * 4);
        x.dec(k);
        x.jumpBack(JNZ, single);
        x.bind(stepsDone);
        x.storeTileThenNext(c, pc, ldc, MR, accumulate, tiles, tile);
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
