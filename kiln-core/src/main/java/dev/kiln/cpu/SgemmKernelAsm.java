package dev.kiln.cpu;

import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Objects;
import java.util.function.Function;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Part of the Matmul family: an {@link SgemmKernel} in machine code ({@link MachineCode}), a whole row of tiles a
 * downcall: {@code void row(float* a, float* b, float* c, long kc, long ldcBytes, long tiles)}, C overwritten or
 * accumulated by two entry points. What C2 makes of the Vector API kernels falls short in two ways: at 256 bits it loads
 * every operand of a k step before its FMAs, which caps the tile at 8 of AVX2's 16 registers (written out: 6 x 16 in
 * 12); at 512 bits the tile fits, but its loop ran 10-25% slower than the same tile written out (docs/DESIGN-NOTES.md,
 * "Departure 2"). {@code kiln.cpu.asm} off falls back to the Vector API kernels.
 */
abstract sealed class SgemmKernelAsm extends SgemmKernel permits SgemmKernelAvx2, SgemmKernelAvx512 {
    /** The two entry points of a kernel's code, or why it cannot run here (then both are null). */
    record Entries(MethodHandle overwrite, MethodHandle accumulate, String unavailable) {}

    /** The code of both entry points (accumulate false, true) placed as functions where the processor has `features`. */
    static Entries place(Function<Boolean, byte[]> code, String... features) {
        String why = MachineCode.whyUnavailable(features);
        if (why != null) return new Entries(null, null, why);
        try {
            FunctionDescriptor row = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG);
            return new Entries(MachineCode.function(code.apply(false), row), MachineCode.function(code.apply(true), row), null);
        } catch (Throwable t) {
            return new Entries(null, null, "machine code could not be placed: " + t.getMessage());
        }
    }

    /** The instruction set, for reports and errors: "AVX2", "AVX-512". */
    final String isa;
    private final Entries entries;

    SgemmKernelAsm(String isa, Entries entries, VectorSpecies<Float> species, int mr, int nr, int kc, int mc, int nc) {
        super(species, mr, nr, kc, mc, nc);
        if (entries.unavailable() != null) throw new IllegalStateException("the " + isa + " GEMM kernel is unavailable: " + entries.unavailable());
        this.isa = isa;
        this.entries = entries;
    }

    @Override void tile(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, boolean accumulate) {
        row(kc, a, ao, b, bo, c, co, ldc, 1, accumulate);
    }

    /** The machine code reads and writes memory unchecked: every index it will touch is checked here first. */
    @Override void row(int kc, float[] a, int ao, float[] b, int bo, float[] c, int co, int ldc, int tiles, boolean accumulate) {
        if (tiles <= 0) return;
        if (kc < 0 || ldc < nr) throw new IllegalArgumentException(isa + " GEMM kernel: kc must be >= 0 and ldc >= " + nr + ", got " + kc + " and " + ldc);
        Objects.checkFromIndexSize(ao, (long) mr * kc, a.length);
        Objects.checkFromIndexSize(bo, (long) tiles * kc * nr, b.length);
        Objects.checkFromIndexSize(co, (long) (mr - 1) * ldc + (long) tiles * nr, c.length);
        MemorySegment pa = MemorySegment.ofArray(a).asSlice(4L * ao), pb = MemorySegment.ofArray(b).asSlice(4L * bo),
                pc = MemorySegment.ofArray(c).asSlice(4L * co);
        try {
            if (accumulate) entries.accumulate().invokeExact(pa, pb, pc, (long) kc, 4L * ldc, (long) tiles);
            else entries.overwrite().invokeExact(pa, pb, pc, (long) kc, 4L * ldc, (long) tiles);
        } catch (Throwable t) {
            throw new IllegalStateException("the " + isa + " GEMM kernel failed", t);
        }
    }
}
