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
 * Part of the Convolution family: the machine code of {@link Conv3x3}, a 3x3 convolution's row of register tiles read
 * straight from a zero-padded image, with no im2col. A tile is MR output channels x NR consecutive positions of the
 * image's padded rows; for channel ch and tap t its B operand is the NR floats starting at the tile's first position
 * plus the tap's offset ({@link Taps}: so many rows, phase planes and floats on), so a channel's taps are loads at
 * [x + row·r + 4·c] (row in a register, r in the scale) or [x + phase + ...] (a second pointer, one phase plane on),
 * then the next channel's plane. A holds the weights packed as {@link Sgemm} packs A: for each (ch, t) in order, MR
 * values, one per output channel. The registers are the GEMM kernels': 8 x 32 in 16 zmm accumulators at 512 bits
 * ({@link SgemmKernelAvx512}), 6 x 16 in 12 ymm at 256 ({@link SgemmKernelAvx2}). {@code void row(float* a, float* x,
 * float* c, long channels, long ldcBytes, long tiles, long rowBytes, long planeBytes, long phaseBytes)}: the last three
 * on the stack (System V), C overwritten.
 * <p>
 * The weight gradient turns the tile around: the taps of one input channel x NW output channels (two zmm, 18
 * accumulators for nine taps; one ymm at 256 bits, 9), summed over the image's positions q, each step a row of the
 * transposed output gradient (NW values) times a broadcast of the image at q + each tap's offset. {@code void
 * weights(float* x, float* gyT, float* acc, long channels, long positions, long ldBytes, long rowBytes, long planeBytes,
 * long phaseBytes)}: per channel, acc's rows (one a tap, ld apart) += the sums, then the next channel's plane and rows.
 */
final class Conv3x3Kernel {
    /** This machine's kernel (by the JVM's preferred vector width), or null where none runs: then im2col does it all. */
    static final Conv3x3Kernel PREFERRED = forBits(FloatVector.SPECIES_PREFERRED.vectorBitSize());

    /**
     * Which of a 3x3 filter's taps a kernel multiplies, and where each reads from a position: tap t multiplies weight
     * tap weight[t] (3·ki + kj) and reads rows[t] rows, phases[t] phase planes and cols[t] floats on.
     */
    static final class Taps {
        /** Stride 1 over zero-padded planes: tap (ki, kj) ki rows and kj floats on. */
        static final Taps STRIDE_1 = of(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8}, t -> t / 3, t -> 0, t -> t % 3);
        /**
         * Stride 2 over the padded image split into four phase planes, P(a, b)[m][j] = padded[2m + a][2j + b], in the
         * order P00, P01, P10, P11: tap (ki, kj) is in P(ki % 2, kj % 2), ki / 2 rows and kj / 2 floats on.
         */
        static final Taps STRIDE_2 = of(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8}, t -> t / 3 / 2, t -> t / 3 % 2 * 2 + t % 3 % 2, t -> t % 3 / 2);
        /**
         * The input gradient of a stride-2, pad-1 3x3 for the input positions (2m + a, 2j + b), read from the output
         * gradient (zero past its last row and column) at (m, j): rows of even a take tap row 1 there, of odd a tap row
         * 2 there and tap row 0 one row on; columns likewise. Index 2a + b.
         */
        static final Taps[] STRIDE_2_INPUT = {stride2Input(0, 0), stride2Input(0, 1), stride2Input(1, 0), stride2Input(1, 1)};
        private static final Taps[] ALL = {STRIDE_1, STRIDE_2, STRIDE_2_INPUT[0], STRIDE_2_INPUT[1], STRIDE_2_INPUT[2], STRIDE_2_INPUT[3]};
        /** The kinds the weight-gradient code is made for (a tap an accumulator row, so nine at most). */
        private static final int WEIGHT_KINDS = 2;

        final int[] weight, rows, phases, cols;

        private Taps(int[] weight, int[] rows, int[] phases, int[] cols) {
            this.weight = weight;
            this.rows = rows;
            this.phases = phases;
            this.cols = cols;
        }

        private static Taps of(int[] weight, java.util.function.IntUnaryOperator row, java.util.function.IntUnaryOperator phase,
                               java.util.function.IntUnaryOperator col) {
            int n = weight.length;
            int[] r = new int[n], p = new int[n], c = new int[n];
            for (int t = 0; t < n; t++) {
                r[t] = row.applyAsInt(weight[t]);
                p[t] = phase.applyAsInt(weight[t]);
                c[t] = col.applyAsInt(weight[t]);
            }
            return new Taps(weight, r, p, c);
        }

        private static Taps stride2Input(int a, int b) {
            int[] ki = a == 0 ? new int[]{1} : new int[]{0, 2}, kj = b == 0 ? new int[]{1} : new int[]{0, 2};
            int[] weight = new int[ki.length * kj.length];
            for (int i = 0; i < ki.length; i++) for (int j = 0; j < kj.length; j++) weight[i * kj.length + j] = 3 * ki[i] + kj[j];
            return of(weight, w -> w / 3 == 0 ? 1 : 0, w -> 0, w -> w % 3 == 0 ? 1 : 0);
        }

        int count() { return weight.length; }

        /** Whether a tap lies an odd number of phase planes on: the code then keeps a second pointer there. */
        boolean oddPhases() {
            for (int p : phases) if (p % 2 == 1) return true;
            return false;
        }

        /** How many floats past a position its taps read: the largest offset + 1. */
        long reach(int rowLen, int phase) {
            long most = 0;
            for (int t = 0; t < count(); t++) most = Math.max(most, (long) rows[t] * rowLen + (long) phases[t] * phase + cols[t]);
            return most + 1;
        }

        private int index() { return java.util.Arrays.asList(ALL).indexOf(this); }
    }

    /** The kernel for vectors of `bits` (512 or 256) where the processor and kiln.cpu.asm allow it, else null. */
    static Conv3x3Kernel forBits(int bits) {
        if (bits >= 512) return make("AVX-512", 8, 32, true, "avx512f");
        if (bits == 256) return make("AVX2", 6, 16, false, "avx2", "fma");
        return null;
    }

    private static Conv3x3Kernel make(String isa, int mr, int nr, boolean wide, String... features) {
        if (MachineCode.whyUnavailable(features) != null) return null;
        try {
            FunctionDescriptor nine = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);
            MethodHandle[] rows = new MethodHandle[Taps.ALL.length], weights = new MethodHandle[Taps.WEIGHT_KINDS];
            for (int i = 0; i < rows.length; i++) rows[i] = MachineCode.function(code(mr, wide, Taps.ALL[i]), nine);
            for (int i = 0; i < weights.length; i++) weights[i] = MachineCode.function(weightsCode(wide, Taps.ALL[i]), nine);
            return new Conv3x3Kernel(isa, mr, nr, wide ? 32 : 8, rows, weights);
        } catch (Throwable t) {
            return null;   // the im2col path runs instead, as where no machine code is allowed
        }
    }

    /** The instruction set, for reports: "AVX2", "AVX-512". */
    final String isa;
    /** Output channels and positions of a tile; output channels of a weight-gradient tile. */
    final int mr, nr, nw;
    /** The row and weight-gradient codes, by {@link Taps#index()}. */
    private final MethodHandle[] row, weights;

    private Conv3x3Kernel(String isa, int mr, int nr, int nw, MethodHandle[] row, MethodHandle[] weights) {
        this.isa = isa;
        this.mr = mr;
        this.nr = nr;
        this.nw = nw;
        this.row = row;
        this.weights = weights;
    }

    /**
     * For each of `tiles` tiles s, i < MR, j < NR: c[co + i·ldc + s·NR + j] = the sum over channels ch and taps t of
     * a[ao + (T·ch + t)·MR + i] · x[xo + ch·plane + s·NR + j + rows[t]·rowLen + phases[t]·phase + cols[t]], T taps.
     */
    void row(Taps taps, float[] a, int ao, int channels, float[] x, int xo, int rowLen, int plane, int phase, float[] c, int co, int ldc, int tiles) {
        if (channels <= 0 || tiles <= 0) throw new IllegalArgumentException("3x3 kernel: channels and tiles must be positive, got " + channels + ", " + tiles);
        Objects.checkFromIndexSize(ao, (long) taps.count() * channels * mr, a.length);
        Objects.checkFromIndexSize(xo, (long) (channels - 1) * plane + taps.reach(rowLen, phase) - 1 + (long) tiles * nr, x.length);
        Objects.checkFromIndexSize(co, (long) (mr - 1) * ldc + (long) tiles * nr, c.length);
        MemorySegment pa = MemorySegment.ofArray(a).asSlice(4L * ao), px = MemorySegment.ofArray(x).asSlice(4L * xo),
                pc = MemorySegment.ofArray(c).asSlice(4L * co);
        try {
            row[taps.index()].invokeExact(pa, px, pc, (long) channels, 4L * ldc, (long) tiles, 4L * rowLen, 4L * plane, 4L * phase);
        } catch (Throwable t) {
            throw new IllegalStateException("the " + isa + " 3x3 convolution kernel failed", t);
        }
    }

    /**
     * For each channel ch < channels, tap t and j < NW: acc[co + (T·ch + t)·ld + j] += the sum over q < positions of
     * x[xo + ch·plane + q + rows[t]·rowLen + phases[t]·phase + cols[t]] · gyT[bo + q·ld + j], T taps (STRIDE_1 or STRIDE_2).
     */
    void weights(Taps taps, float[] x, int xo, int channels, int rowLen, int plane, int phase, float[] gyT, int bo, int ld, int positions,
                 float[] acc, int co) {
        if (channels <= 0 || positions <= 0) throw new IllegalArgumentException("3x3 weight kernel: channels and positions must be positive, got " + channels + ", " + positions);
        if (taps.index() >= weights.length) throw new IllegalArgumentException("3x3 weight kernel: no code for these taps");
        Objects.checkFromIndexSize(xo, (long) (channels - 1) * plane + taps.reach(rowLen, phase) - 1 + positions, x.length);
        Objects.checkFromIndexSize(bo, (long) (positions - 1) * ld + nw, gyT.length);
        Objects.checkFromIndexSize(co, ((long) taps.count() * channels - 1) * ld + nw, acc.length);
        MemorySegment px = MemorySegment.ofArray(x).asSlice(4L * xo), pb = MemorySegment.ofArray(gyT).asSlice(4L * bo),
                pc = MemorySegment.ofArray(acc).asSlice(4L * co);
        try {
            weights[taps.index()].invokeExact(px, pb, pc, (long) channels, (long) positions, 4L * ld, 4L * rowLen, 4L * plane, 4L * phase);
        } catch (Throwable t) {
            throw new IllegalStateException("the " + isa + " 3x3 weight-gradient kernel failed", t);
        }
    }

    /**
     * The weight gradient (x rdi, gyT rsi, acc rdx, channels rcx, positions r8, ld r9; row, plane and phase from the
     * stack into rbx, r12 and rbp, r13 the store's pointer, r14 one phase plane on from the image's; all five saved
     * first): per channel, the accumulators cleared, one step a position, then added into acc's rows.
     */
    private static byte[] weightsCode(boolean wide, Taps taps) {
        X86Assembler x = new X86Assembler();
        int xb = RDI, gyT = RSI, acc = RDX, channels = RCX, positions = R8, ld = R9, px = RAX, pb = R10, k = R11, row = RBX, plane = R12,
                pc = R13, phase = RBP, pxPhase = R14;
        int n = taps.count(), halves = wide ? 2 : 1, vectorBytes = wide ? 64 : 32, firstAcc = (wide ? 32 : 16) - n * halves;
        int[] saved = {RBX, R12, RBP, pc, pxPhase};
        enter(x, saved, row, plane, phase);
        int channel = x.here();
        clear(x, wide, firstAcc, n * halves);
        x.mov(px, xb);
        if (taps.oddPhases()) {
            x.mov(pxPhase, xb);
            x.add(pxPhase, phase);
        }
        x.mov(pb, gyT);
        x.mov(k, positions);
        int step = x.here();
        for (int h = 0; h < halves; h++) {
            if (wide) x.vmovupsLoad512(h, pb, h * vectorBytes);
            else x.vmovupsLoad(h, pb, h * vectorBytes);
        }
        for (int t = 0; t < n; t++) {
            int b = halves + (t & 1), a = firstAcc + t * halves;
            tapOperand(x, wide, true, b, px, pxPhase, row, phase, taps, t, 0);
            for (int h = 0; h < halves; h++) {
                if (wide) x.vfmadd231ps512(a + h, h, b);
                else x.vfmadd231ps(a + h, h, b);
            }
        }
        x.addImm(px, 4);
        if (taps.oddPhases()) x.addImm(pxPhase, 4);
        x.add(pb, ld);
        x.dec(k);
        x.jumpBack(JNZ, step);
        x.mov(pc, acc);
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < halves; h++) {
                int v = firstAcc + t * halves + h;
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
        leave(x, saved);
        return x.code();
    }

    /**
     * The row of tiles (a rdi, x rsi, c rdx, channels rcx, ldc r8, tiles r9; row, plane and phase from the stack into
     * rbx, r12 and rbp, r13 one phase plane on from the channel's; all four saved first): per tile, the accumulators
     * cleared, then per channel its taps, then the tile stored.
     */
    private static byte[] code(int mr, boolean wide, Taps taps) {
        X86Assembler x = new X86Assembler();
        int a = RDI, xb = RSI, c = RDX, channels = RCX, ldc = R8, tiles = R9, pa = RAX, k = R10, px = R11, row = RBX, plane = R12,
                phase = RBP, pxPhase = R13;
        int vectorBytes = wide ? 64 : 32, firstAcc = (wide ? 32 : 16) - 2 * mr;
        int[] saved = {RBX, R12, RBP, pxPhase};
        enter(x, saved, row, plane, phase);
        int tile = x.here();
        clear(x, wide, firstAcc, 2 * mr);
        x.mov(pa, a);
        x.mov(px, xb);
        x.mov(k, channels);
        int channel = x.here();
        if (taps.oddPhases()) {
            x.mov(pxPhase, px);
            x.add(pxPhase, phase);
        }
        for (int t = 0; t < taps.count(); t++) {
            for (int h = 0; h < 2; h++) tapOperand(x, wide, false, h, px, pxPhase, row, phase, taps, t, h * vectorBytes);
            for (int i = 0; i < mr; i++) {
                int b = 2 + (i & 1), acc = firstAcc + 2 * i, at = 4 * (t * mr + i);
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
        x.addImm(pa, taps.count() * mr * 4);
        x.add(px, plane);
        x.dec(k);
        x.jumpBack(JNZ, channel);
        x.storeTile(c, px, ldc, mr, firstAcc, vectorBytes, false);
        x.addImm(c, 2 * vectorBytes);
        x.addImm(xb, 2 * vectorBytes);
        x.dec(tiles);
        x.jumpBack(JNZ, tile);
        leave(x, saved);
        return x.code();
    }

    /** Both codes' start: the callee-saved registers they use pushed, the three stack arguments (row, plane and phase bytes) loaded. */
    private static void enter(X86Assembler x, int[] saved, int row, int plane, int phase) {
        for (int r : saved) x.push(r);
        x.movLoad(row, RSP, 8 * saved.length + 8);   // past the saved registers and the return address
        x.movLoad(plane, RSP, 8 * saved.length + 16);
        x.movLoad(phase, RSP, 8 * saved.length + 24);
    }

    /** Both codes' end: the saved registers popped, the upper halves cleared, return. */
    private static void leave(X86Assembler x, int[] saved) {
        for (int i = saved.length - 1; i >= 0; i--) x.pop(saved[i]);
        x.vzeroupper();
        x.ret();
    }

    /**
     * Vector register v = tap t's operand, disp bytes on: loaded (a row's B) or broadcast (the weight gradient's x).
     * An odd phase count starts from the second pointer (one phase plane on); two more phases take the phase register
     * scaled by 2, else the rows take the row register scaled by their count (a tap never needs both).
     */
    private static void tapOperand(X86Assembler x, boolean wide, boolean broadcast, int v, int px, int pxPhase, int row, int phase,
                                   Taps taps, int t, int disp) {
        int base = taps.phases[t] % 2 == 1 ? pxPhase : px, phases = taps.phases[t] / 2 * 2, rows = taps.rows[t];
        if (phases > 0 && rows > 0) throw new IllegalArgumentException("a tap both rows and phase planes on");
        int index = phases > 0 ? phase : row, scale = phases > 0 ? phases : rows;
        disp += 4 * taps.cols[t];
        if (scale == 0) {
            if (broadcast) {
                if (wide) x.vbroadcastss512(v, base, disp);
                else x.vbroadcastss(v, base, disp);
            } else if (wide) {
                x.vmovupsLoad512(v, base, disp);
            } else {
                x.vmovupsLoad(v, base, disp);
            }
        } else if (broadcast) {
            if (wide) x.vbroadcastss512(v, base, index, scale, disp);
            else x.vbroadcastss(v, base, index, scale, disp);
        } else if (wide) {
            x.vmovupsLoad512(v, base, index, scale, disp);
        } else {
            x.vmovupsLoad(v, base, index, scale, disp);
        }
    }

    /** Zeroes `count` vector registers from `first` on: a tile's accumulators. */
    private static void clear(X86Assembler x, boolean wide, int first, int count) {
        for (int v = first; v < first + count; v++) {
            if (wide) x.vzero512(v);
            else x.vzero(v);
        }
    }

    @Override public String toString() { return "Conv3x3Kernel[" + isa + ", " + mr + "x" + nr + ", weights 9x" + nw + "]"; }
}
