package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Objects;

import static dev.kiln.cpu.X86Assembler.*;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Part of the Convolution family: the machine code of {@link Conv3x3}, a 3x3 stride-1 convolution's row of register
 * tiles read straight from a zero-padded image, with no im2col. A tile is MR output channels x NR consecutive positions
 * of the image's padded rows; for channel ch and tap (ki, kj) its B operand is the NR floats starting ki rows and kj
 * columns on from the tile's first position, so the nine taps of a channel are loads at [x + ki·row + 4·kj]
 * (row in a register, ki in the scale), then the next channel's plane. A holds the weights packed as {@link Sgemm}
 * packs A: for each (ch, ki, kj) in order, MR values, one per output channel. The registers are the GEMM kernels':
 * 8 x 32 in 16 zmm accumulators at 512 bits ({@link SgemmKernelAvx512}), 6 x 16 in 12 ymm at 256
 * ({@link SgemmKernelAvx2}). {@code void row(float* a, float* x, float* c, long channels, long ldcBytes, long tiles,
 * long rowBytes, long planeBytes)}: the last two on the stack (System V), C overwritten.
 * <p>
 * The weight gradient turns the tile around: the nine taps of one input channel x NW output channels (two zmm, 18
 * accumulators; one ymm at 256 bits, 9), summed over the image's positions q, each step a row of the transposed
 * output gradient (NW values) times nine broadcasts of the padded image at q + ki·row + kj. {@code void weights(float*
 * x, float* gyT, float* acc, long channels, long positions, long ldBytes, long rowBytes, long planeBytes)}: per channel,
 * acc's nine rows (ld apart) += the sums, then the next channel's plane and rows.
 */
final class Conv3x3Kernel {
    /** This machine's kernel (by the JVM's preferred vector width), or null where none runs: then im2col does it all. */
    static final Conv3x3Kernel PREFERRED = forBits(FloatVector.SPECIES_PREFERRED.vectorBitSize());

    /** The kernel for vectors of `bits` (512 or 256) where the processor and kiln.cpu.asm allow it, else null. */
    static Conv3x3Kernel forBits(int bits) {
        if (bits >= 512) return make("AVX-512", 8, 32, true, "avx512f");
        if (bits == 256) return make("AVX2", 6, 16, false, "avx2", "fma");
        return null;
    }

    private static Conv3x3Kernel make(String isa, int mr, int nr, boolean wide, String... features) {
        if (MachineCode.whyUnavailable(features) != null) return null;
        try {
            FunctionDescriptor eight = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);
            return new Conv3x3Kernel(isa, mr, nr, wide ? 32 : 8, MachineCode.function(code(mr, wide), eight),
                    MachineCode.function(weightsCode(wide), eight));
        } catch (Throwable t) {
            return null;   // the im2col path runs instead, as where no machine code is allowed
        }
    }

    /** The instruction set, for reports: "AVX2", "AVX-512". */
    final String isa;
    /** Output channels and positions of a tile; output channels of a weight-gradient tile. */
    final int mr, nr, nw;
    private final MethodHandle row, weights;

    private Conv3x3Kernel(String isa, int mr, int nr, int nw, MethodHandle row, MethodHandle weights) {
        this.isa = isa;
        this.mr = mr;
        this.nr = nr;
        this.nw = nw;
        this.row = row;
        this.weights = weights;
    }

    /**
     * For each of `tiles` tiles t, i < MR, j < NR: c[co + i·ldc + t·NR + j] = the sum over channels ch and taps (ki, kj)
     * of a[ao + (9·ch + 3·ki + kj)·MR + i] · x[xo + ch·plane + ki·rowLen + kj + t·NR + j].
     */
    void row(float[] a, int ao, int channels, float[] x, int xo, int rowLen, int plane, float[] c, int co, int ldc, int tiles) {
        if (channels <= 0 || tiles <= 0) throw new IllegalArgumentException("3x3 kernel: channels and tiles must be positive, got " + channels + ", " + tiles);
        Objects.checkFromIndexSize(ao, 9L * channels * mr, a.length);
        Objects.checkFromIndexSize(xo, (long) (channels - 1) * plane + 2L * rowLen + 2 + (long) tiles * nr, x.length);
        Objects.checkFromIndexSize(co, (long) (mr - 1) * ldc + (long) tiles * nr, c.length);
        MemorySegment pa = MemorySegment.ofArray(a).asSlice(4L * ao), px = MemorySegment.ofArray(x).asSlice(4L * xo),
                pc = MemorySegment.ofArray(c).asSlice(4L * co);
        try {
            row.invokeExact(pa, px, pc, (long) channels, 4L * ldc, (long) tiles, 4L * rowLen, 4L * plane);
        } catch (Throwable t) {
            throw new IllegalStateException("the " + isa + " 3x3 convolution kernel failed", t);
        }
    }

    /**
     * For each channel ch < channels, tap t = 3·ki + kj and j < NW: acc[co + (9·ch + t)·ld + j] += the sum over q <
     * positions of x[xo + ch·plane + q + ki·rowLen + kj] · gyT[bo + q·ld + j].
     */
    void weights(float[] x, int xo, int channels, int rowLen, int plane, float[] gyT, int bo, int ld, int positions, float[] acc, int co) {
        if (channels <= 0 || positions <= 0) throw new IllegalArgumentException("3x3 weight kernel: channels and positions must be positive, got " + channels + ", " + positions);
        Objects.checkFromIndexSize(xo, (long) (channels - 1) * plane + 2L * rowLen + 2 + positions, x.length);
        Objects.checkFromIndexSize(bo, (long) (positions - 1) * ld + nw, gyT.length);
        Objects.checkFromIndexSize(co, (9L * channels - 1) * ld + nw, acc.length);
        MemorySegment px = MemorySegment.ofArray(x).asSlice(4L * xo), pb = MemorySegment.ofArray(gyT).asSlice(4L * bo),
                pc = MemorySegment.ofArray(acc).asSlice(4L * co);
        try {
            weights.invokeExact(px, pb, pc, (long) channels, (long) positions, 4L * ld, 4L * rowLen, 4L * plane);
        } catch (Throwable t) {
            throw new IllegalStateException("the " + isa + " 3x3 weight-gradient kernel failed", t);
        }
    }

    /**
     * The weight gradient (x rdi, gyT rsi, acc rdx, channels rcx, positions r8, ld r9; row and plane from the stack
     * into rbx and r12, r13 the store's pointer; all three saved first): per channel, the accumulators cleared, one
     * step a position, then added into acc's nine rows.
     */
    private static byte[] weightsCode(boolean wide) {
        X86Assembler x = new X86Assembler();
        int xb = RDI, gyT = RSI, acc = RDX, channels = RCX, positions = R8, ld = R9, px = RAX, pb = R10, k = R11, row = RBX, plane = R12, pc = R13;
        int halves = wide ? 2 : 1, vectorBytes = wide ? 64 : 32, firstAcc = (wide ? 32 : 16) - 9 * halves;
        x.push(RBX);
        x.push(R12);
        x.push(pc);
        x.movLoad(row, RSP, 32);
        x.movLoad(plane, RSP, 40);
        int channel = x.here();
        clear(x, wide, firstAcc, 9 * halves);
        x.mov(px, xb);
        x.mov(pb, gyT);
        x.mov(k, positions);
        int step = x.here();
        for (int h = 0; h < halves; h++) {
            if (wide) x.vmovupsLoad512(h, pb, h * vectorBytes);
            else x.vmovupsLoad(h, pb, h * vectorBytes);
        }
        for (int tap = 0; tap < 9; tap++) {
            int ki = tap / 3, disp = 4 * (tap % 3), b = halves + (tap & 1), a = firstAcc + tap * halves;
            if (wide) {
                if (ki == 0) x.vbroadcastss512(b, px, disp);
                else x.vbroadcastss512(b, px, row, ki, disp);
            } else if (ki == 0) {
                x.vbroadcastss(b, px, disp);
            } else {
                x.vbroadcastss(b, px, row, ki, disp);
            }
            for (int h = 0; h < halves; h++) {
                if (wide) x.vfmadd231ps512(a + h, h, b);
                else x.vfmadd231ps(a + h, h, b);
            }
        }
        x.addImm(px, 4);
        x.add(pb, ld);
        x.dec(k);
        x.jumpBack(JNZ, step);
        x.mov(pc, acc);
        for (int tap = 0; tap < 9; tap++) {
            for (int h = 0; h < halves; h++) {
                int v = firstAcc + tap * halves + h;
                if (wide) {
                    x.vaddpsLoad512(v, v, pc, h * vectorBytes);
                    x.vmovupsStore512(pc, h * vectorBytes, v);
                } else {
                    x.vaddpsLoad(v, v, pc, h * vectorBytes);
                    x.vmovupsStore(pc, h * vectorBytes, v);
                }
            }
            x.add(pc, ld);
        }
        x.mov(acc, pc);
        x.add(xb, plane);
        x.dec(channels);
        x.jumpBack(JNZ, channel);
        x.pop(pc);
        x.pop(R12);
        x.pop(RBX);
        x.vzeroupper();
        x.ret();
        return x.code();
    }

    /**
     * The row of tiles (a rdi, x rsi, c rdx, channels rcx, ldc r8, tiles r9; row and plane from the stack into rbx and
     * r12, saved first): per tile, the accumulators cleared, then per channel the nine taps, then the tile stored.
     */
    private static byte[] code(int mr, boolean wide) {
        X86Assembler x = new X86Assembler();
        int a = RDI, xb = RSI, c = RDX, channels = RCX, ldc = R8, tiles = R9, pa = RAX, k = R10, px = R11, row = RBX, plane = R12;
        int vectorBytes = wide ? 64 : 32, firstAcc = (wide ? 32 : 16) - 2 * mr;
        x.push(RBX);
        x.push(R12);
        x.movLoad(row, RSP, 24);   // past the two saved registers and the return address
        x.movLoad(plane, RSP, 32);
        int tile = x.here();
        clear(x, wide, firstAcc, 2 * mr);
        x.mov(pa, a);
        x.mov(px, xb);
        x.mov(k, channels);
        int channel = x.here();
        for (int tap = 0; tap < 9; tap++) {
            int ki = tap / 3, disp = 4 * (tap % 3);
            for (int h = 0; h < 2; h++) load(x, wide, h, px, ki, row, disp + h * vectorBytes);
            for (int i = 0; i < mr; i++) {
                int b = 2 + (i & 1), acc = firstAcc + 2 * i, at = 4 * (tap * mr + i);
                if (wide) {
                    x.vbroadcastss512(b, pa, at);
                    x.vfmadd231ps512(acc, 0, b);
                    x.vfmadd231ps512(acc + 1, 1, b);
                } else {
                    x.vbroadcastss(b, pa, at);
                    x.vfmadd231ps(acc, 0, b);
                    x.vfmadd231ps(acc + 1, 1, b);
                }
            }
        }
        x.addImm(pa, 9 * mr * 4);
        x.add(px, plane);
        x.dec(k);
        x.jumpBack(JNZ, channel);
        x.storeTile(c, px, ldc, mr, firstAcc, vectorBytes, false);
        x.addImm(c, 2 * vectorBytes);
        x.addImm(xb, 2 * vectorBytes);
        x.dec(tiles);
        x.jumpBack(JNZ, tile);
        x.pop(R12);
        x.pop(RBX);
        x.vzeroupper();
        x.ret();
        return x.code();
    }

    /** Zeroes `count` vector registers from `first` on: a tile's accumulators. */
    private static void clear(X86Assembler x, boolean wide, int first, int count) {
        for (int v = first; v < first + count; v++) {
            if (wide) x.vzero512(v);
            else x.vzero(v);
        }
    }

    /** Vector register v = the floats at [px + ki·row + disp]. */
    private static void load(X86Assembler x, boolean wide, int v, int px, int ki, int row, int disp) {
        if (ki == 0) {
            if (wide) x.vmovupsLoad512(v, px, disp);
            else x.vmovupsLoad(v, px, disp);
        } else if (wide) {
            x.vmovupsLoad512(v, px, row, ki, disp);
        } else {
            x.vmovupsLoad(v, px, row, ki, disp);
        }
    }

    @Override public String toString() { return "Conv3x3Kernel[" + isa + ", " + mr + "x" + nr + ", weights 9x" + nw + "]"; }
}
