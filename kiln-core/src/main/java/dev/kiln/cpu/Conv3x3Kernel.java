package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Objects;

import static dev.kiln.cpu.X86Assembler.*;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Part of the Convolution family: the machine code of {@link Conv3x3}, a convolution's row of register tiles read
 * straight from a zero-padded image (3x3; at stride 2 also a stem's 7x7 and a shortcut's 1x1), with no im2col. A tile
 * is MR output channels x NR consecutive positions of the image's padded rows; for channel ch and tap t its B operand
 * is the NR floats starting at the tile's first position plus the tap's offset ({@link Taps}: so many rows, phase
 * planes and floats on), so a channel's taps are loads at [p + row·r + 4·c] from the pointer p of the tap's phase
 * plane (row bytes in a register, r in the scale; 3 and 6 rows from a register of three rows), then the next
 * channel's planes. A holds the weights packed as {@link Sgemm} packs A: for each (ch, t) in order, MR (or 4)
 * values, one per output channel. The registers are the GEMM kernels': 8 x 32 in 16 zmm accumulators at 512 bits
 * ({@link SgemmKernelAvx512}), 6 x 16 in 12 ymm at 256 ({@link SgemmKernelAvx2}); a code of 4-row tiles takes what is
 * left of the output channels past whole tiles. {@code void row(float* a, float* x,
 * float* c, long channels, long ldcBytes, long tiles, long rowBytes, long planeBytes, long phaseBytes)}: the last three
 * on the stack (System V), C overwritten.
 * <p>
 * The weight gradient turns the tile around: the taps of one input channel x NW output channels (two zmm, 18
 * accumulators for nine taps; one ymm at 256 bits, 9), summed over the image's positions q, each step a row of the
 * transposed output gradient (NW values, a block of them one after another: at 256 bits the block, 28 KB at 28x28,
 * stays in L1 over all channels) times a broadcast of the image at q + each tap's offset. {@code void weights(float* x,
 * float* gyT, float* acc, long channels, long positions, long ldBytes, long rowBytes, long planeBytes, long
 * phaseBytes)}: per channel, acc's rows (one a tap, ld apart) += the sums, then the next channel's plane and rows.
 */
final class Conv3x3Kernel {
    /** This machine's kernel (by the JVM's preferred vector width), or null where none runs: then im2col does it all. */
    static final Conv3x3Kernel PREFERRED = forBits(FloatVector.SPECIES_PREFERRED.vectorBitSize());

    /**
     * Which of a k x k filter's taps a kernel multiplies, and where each reads from a position: tap t multiplies weight
     * tap weight[t] (k·ki + kj) and reads rows[t] rows, phases[t] phase planes and cols[t] floats on.
     */
    static final class Taps {
        /** Stride 1 over zero-padded planes: tap (ki, kj) ki rows and kj floats on. */
        static final Taps STRIDE_1 = of(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8}, t -> t / 3, t -> 0, t -> t % 3);
        /**
         * Stride 2 over the padded image split into four phase planes, P(a, b)[m][j] = padded[2m + a][2j + b], in the
         * order P00, P01, P10, P11: tap (ki, kj) is in P(ki % 2, kj % 2), ki / 2 rows and kj / 2 floats on.
         */
        static final Taps STRIDE_2 = stride2(3);
        /** A ResNet stem's 7x7 at stride 2 over the same phase planes: tap (ki, kj) in P(ki % 2, kj % 2), ki / 2 rows and kj / 2 floats on. */
        static final Taps STRIDE_2_7X7 = stride2(7);
        /** A 1x1 at stride 2 (a ResNet block's shortcut): plane P00 alone, nothing on. */
        static final Taps STRIDE_2_1X1 = stride2(1);
        /**
         * The input gradient of a stride-2, pad-1 3x3 for the input positions (2m + a, 2j + b), read from the output
         * gradient (zero past its last row and column) at (m, j): rows of even a take tap row 1 there, of odd a tap row
         * 2 there and tap row 0 one row on; columns likewise. Index 2a + b.
         */
        static final Taps[] STRIDE_2_INPUT = {stride2Input(0, 0), stride2Input(0, 1), stride2Input(1, 0), stride2Input(1, 1)};
        private static final Taps[] ALL = {STRIDE_1, STRIDE_2, STRIDE_2_INPUT[0], STRIDE_2_INPUT[1], STRIDE_2_INPUT[2], STRIDE_2_INPUT[3], STRIDE_2_7X7, STRIDE_2_1X1};
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

        /** Every tap of a k x k filter at stride 2 over the phase planes. */
        private static Taps stride2(int k) {
            int[] weight = new int[k * k];
            for (int t = 0; t < weight.length; t++) weight[t] = t;
            return of(weight, t -> t / k / 2, t -> t / k % 2 * 2 + t % k % 2, t -> t % k / 2);
        }

        private static Taps stride2Input(int a, int b) {
            int[] ki = a == 0 ? new int[]{1} : new int[]{0, 2}, kj = b == 0 ? new int[]{1} : new int[]{0, 2};
            int[] weight = new int[ki.length * kj.length];
            for (int i = 0; i < ki.length; i++) for (int j = 0; j < kj.length; j++) weight[i * kj.length + j] = 3 * ki[i] + kj[j];
            return of(weight, w -> w / 3 == 0 ? 1 : 0, w -> 0, w -> w % 3 == 0 ? 1 : 0);
        }

        int count() { return weight.length; }

        /** Whether some tap reads phase plane p (0-3): the code then keeps a pointer there. */
        boolean reads(int p) {
            for (int q : phases) if (q == p) return true;
            return false;
        }

        /** Whether some tap lies 3 or 6 rows on: the code then keeps three rows' bytes in a register (no address scales by 3). */
        boolean threeRows() {
            for (int r : rows) if (r % 3 == 0 && r > 0) return true;
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
            MethodHandle[] rows = new MethodHandle[Taps.ALL.length], shortRow = new MethodHandle[Taps.ALL.length], weights = new MethodHandle[Taps.WEIGHT_KINDS];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = MachineCode.function(code(mr, wide, Taps.ALL[i]), nine);
                shortRow[i] = MachineCode.function(code(SHORT, wide, Taps.ALL[i]), nine);
            }
            for (int i = 0; i < weights.length; i++) weights[i] = MachineCode.function(weightsCode(wide, Taps.ALL[i]), nine);
            return new Conv3x3Kernel(isa, mr, nr, wide ? 32 : 8, rows, shortRow, weights);
        } catch (Throwable t) {
            return null;   // the im2col path runs instead, as where no machine code is allowed
        }
    }

    /** The instruction set, for reports: "AVX2", "AVX-512". */
    final String isa;
    /** Output channels and positions of a tile; output channels of a weight-gradient tile. */
    final int mr, nr, nw;
    /** The rows of the short tiles that take what is left of the output channels past blocks of MR. */
    static final int SHORT = 4;
    /** The row codes of MR-row and of SHORT-row tiles, and the weight-gradient codes, by {@link Taps#index()}. */
    private final MethodHandle[] row, shortRow, weights;

    private Conv3x3Kernel(String isa, int mr, int nr, int nw, MethodHandle[] row, MethodHandle[] shortRow, MethodHandle[] weights) {
        this.isa = isa;
        this.mr = mr;
        this.nr = nr;
        this.nw = nw;
        this.row = row;
        this.shortRow = shortRow;
        this.weights = weights;
    }

    /**
     * How `outs` output channels are cut into blocks of tile rows: MR each, and what is left in SHORT-row blocks (at 256
     * bits 32 channels are 6 + 6 + 6 + 6 + 4 + 4, not six blocks of 6 of which the last computes four rows of zeros;
     * a 6 + 2 end becomes 4 + 4). The heights, in order; their sum is outs or at most three more.
     */
    int[] blocks(int outs) {
        int full = outs / mr, left = outs % mr, shorts = 0;
        if (left > SHORT) full++;   // a last MR block with a few rows of zeros
        else if (left > 0) shorts = 1;
        if (mr == 6 && left == 2 && full > 0) {
            full--;
            shorts = 2;
        }
        int[] h = new int[full + shorts];
        java.util.Arrays.fill(h, 0, full, mr);
        java.util.Arrays.fill(h, full, h.length, SHORT);
        return h;
    }

    /**
     * For each of `tiles` tiles s, i < R, j < NR: c[co + i·ldc + s·NR + j] = the sum over channels ch and taps t of
     * a[ao + (T·ch + t)·R + i] · x[xo + ch·plane + s·NR + j + rows[t]·rowLen + phases[t]·phase + cols[t]], T taps, R
     * the tiles' rows (MR or SHORT).
     */
    void row(Taps taps, int height, float[] a, int ao, int channels, float[] x, int xo, int rowLen, int plane, int phase, float[] c, int co, int ldc,
             int tiles) {
        if (channels <= 0 || tiles <= 0) throw new IllegalArgumentException("3x3 kernel: channels and tiles must be positive, got " + channels + ", " + tiles);
        if (height != mr && height != SHORT) throw new IllegalArgumentException("3x3 kernel: tiles of " + mr + " or " + SHORT + " rows, not " + height);
        Objects.checkFromIndexSize(ao, (long) taps.count() * channels * height, a.length);
        Objects.checkFromIndexSize(xo, (long) (channels - 1) * plane + taps.reach(rowLen, phase) - 1 + (long) tiles * nr, x.length);
        Objects.checkFromIndexSize(co, (long) (height - 1) * ldc + (long) tiles * nr, c.length);
        MemorySegment pa = MemorySegment.ofArray(a).asSlice(4L * ao), px = MemorySegment.ofArray(x).asSlice(4L * xo),
                pc = MemorySegment.ofArray(c).asSlice(4L * co);
        try {
            (height == mr ? row : shortRow)[taps.index()].invokeExact(pa, px, pc, (long) channels, 4L * ldc, (long) tiles, 4L * rowLen, 4L * plane, 4L * phase);
        } catch (Throwable t) {
            throw new IllegalStateException("the " + isa + " 3x3 convolution kernel failed", t);
        }
    }

    /**
     * For each channel ch < channels, tap t and j < NW: acc[co + (T·ch + t)·ld + j] += the sum over q < positions of
     * x[xo + ch·plane + q + rows[t]·rowLen + phases[t]·phase + cols[t]] · gyT[bo + q·NW + j], T taps (STRIDE_1 or STRIDE_2).
     */
    void weights(Taps taps, float[] x, int xo, int channels, int rowLen, int plane, int phase, float[] gyT, int bo, int ld, int positions,
                 float[] acc, int co) {
        if (channels <= 0 || positions <= 0) throw new IllegalArgumentException("3x3 weight kernel: channels and positions must be positive, got " + channels + ", " + positions);
        if (taps.index() >= weights.length) throw new IllegalArgumentException("3x3 weight kernel: no code for these taps");
        Objects.checkFromIndexSize(xo, (long) (channels - 1) * plane + taps.reach(rowLen, phase) - 1 + positions, x.length);
        Objects.checkFromIndexSize(bo, (long) positions * nw, gyT.length);
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
     * stack into rbx, r12 and rbp; the pointers of phase planes 1-3 in r14, r15 and r13, which is also the store's
     * pointer once the steps are done; all five saved first): per channel, the accumulators cleared, one step a
     * position, then added into acc's rows.
     */
    private static byte[] weightsCode(boolean wide, Taps taps) {
        X86Assembler x = new X86Assembler();
        int xb = RDI, gyT = RSI, acc = RDX, channels = RCX, positions = R8, ld = R9, px = RAX, pb = R10, k = R11, row = RBX, plane = R12,
                pc = R13, phase = RBP;
        int n = taps.count(), halves = wide ? 2 : 1, vectorBytes = wide ? 64 : 32, firstAcc = (wide ? 32 : 16) - n * halves;
        int[] saved = {RBX, R12, RBP, R13, R14, R15};
        Bases bases = new Bases(new int[]{px, R14, R15, pc}, row, -1);
        enter(x, saved, row, plane);
        x.movLoad(phase, RSP, stackArgument(saved, 2));
        int channel = x.here();
        clear(x, wide, firstAcc, n * halves);
        x.mov(px, xb);
        bases.start(x, taps, phase);
        x.mov(pb, gyT);
        x.mov(k, positions);
        if (wide) {
            int step = x.here();
            weightStep(x, true, bases, taps, firstAcc, pb);
            x.dec(k);
            x.jumpBack(JNZ, step);
        } else {
            // two positions a step: a float the taps read at both (the next column's) is broadcast once, so 7 loads
            // feed 9 FMAs, not 10 (at 256 bits the loads, not the FMAs, held the one-position step back)
            x.shrImm(k, 1);
            int noPairs = x.jumpForward(JZ);
            int pair = x.here();
            weightPairStep(x, bases, taps, firstAcc, pb);
            x.dec(k);
            x.jumpBack(JNZ, pair);
            x.bind(noPairs);
            x.mov(k, positions);
            x.andImm(k, 1);
            int even = x.jumpForward(JZ);
            weightStep(x, false, bases, taps, firstAcc, pb);
            x.bind(even);
        }
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
     * One position of the weight gradient (pb at its NW floats of the transposed output gradient, in registers 0 and 1
     * at 512 bits): each tap's float broadcast and multiplied into its accumulators, then every pointer a position on.
     */
    private static void weightStep(X86Assembler x, boolean wide, Bases bases, Taps taps, int firstAcc, int pb) {
        int halves = wide ? 2 : 1;
        for (int h = 0; h < halves; h++) {
            if (wide) x.vmovupsLoad512(h, pb, h * 64);
            else x.vmovupsLoad(h, pb, h * 32);
        }
        for (int t = 0; t < taps.count(); t++) {
            int b = halves + (t & 1), a = firstAcc + t * halves;
            tapOperand(x, wide, true, b, bases, taps, t, 0);
            for (int h = 0; h < halves; h++) {
                if (wide) x.vfmadd231ps512(a + h, h, b);
                else x.vfmadd231ps(a + h, h, b);
            }
        }
        bases.nextPosition(x, taps, 1);
        x.addImm(pb, halves * (wide ? 64 : 32));
    }

    /**
     * Two positions at 256 bits: the output gradient's rows of both in ymm0 and ymm1; each distinct float the taps read
     * at either (at the second, a tap reads the float one on from its first) broadcast once into one of ymm2-6 and
     * multiplied into every accumulator that takes it; then every pointer two positions on.
     */
    private static void weightPairStep(X86Assembler x, Bases bases, Taps taps, int firstAcc, int pb) {
        x.vmovupsLoad(0, pb, 0);
        x.vmovupsLoad(1, pb, 32);
        var reads = new java.util.LinkedHashMap<List<Integer>, List<int[]>>();   // (phase, rows, float) -> its (tap, position)s
        for (int t = 0; t < taps.count(); t++)
            for (int u = 0; u < 2; u++)
                reads.computeIfAbsent(List.of(taps.phases[t], taps.rows[t], taps.cols[t] + u), key -> new java.util.ArrayList<>()).add(new int[]{t, u});
        int temp = 0;
        for (List<int[]> uses : reads.values()) {
            int b = 2 + temp++ % 5, first[] = uses.get(0);
            tapOperand(x, false, true, b, bases, taps, first[0], 4 * first[1]);
            for (int[] use : uses) x.vfmadd231ps(firstAcc + use[0], use[1], b);
        }
        bases.nextPosition(x, taps, 2);
        x.addImm(pb, 64);
    }

    /**
     * The row of tiles (a rdi, x rsi, c rdx, channels rcx, ldc r8, tiles r9; row and plane from the stack into rbx and
     * r12, phase into r10 at each tile's start; the pointers of phase planes 1-3 in r13-r15, three rows' bytes in rbp;
     * all six saved first): per tile, the accumulators cleared, then per channel its taps, then the tile stored.
     */
    private static byte[] code(int mr, boolean wide, Taps taps) {
        X86Assembler x = new X86Assembler();
        int a = RDI, xb = RSI, c = RDX, channels = RCX, ldc = R8, tiles = R9, pa = RAX, k = R10, px = R11, row = RBX, plane = R12,
                row3 = RBP;
        int vectorBytes = wide ? 64 : 32, firstAcc = (wide ? 32 : 16) - 2 * mr;
        int[] saved = {RBX, R12, RBP, R13, R14, R15};
        Bases bases = new Bases(new int[]{px, R13, R14, R15}, row, row3);
        enter(x, saved, row, plane);
        if (taps.threeRows()) {
            x.mov(row3, row);
            x.add(row3, row);
            x.add(row3, row);
        }
        int tile = x.here();
        clear(x, wide, firstAcc, 2 * mr);
        x.mov(pa, a);
        x.mov(px, xb);
        x.movLoad(k, RSP, stackArgument(saved, 2));   // the phase, for the pointers; then the channel count
        bases.start(x, taps, k);
        x.mov(k, channels);
        int channel = x.here();
        for (int t = 0; t < taps.count(); t++) {
            for (int h = 0; h < 2; h++) tapOperand(x, wide, false, h, bases, taps, t, h * vectorBytes);
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
        bases.advance(x, taps, plane);
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

    /** Both codes' start: the callee-saved registers they use pushed, the first two stack arguments (row and plane bytes) loaded. */
    private static void enter(X86Assembler x, int[] saved, int row, int plane) {
        for (int r : saved) x.push(r);
        x.movLoad(row, RSP, stackArgument(saved, 0));
        x.movLoad(plane, RSP, stackArgument(saved, 1));
    }

    /** Where stack argument i (row, plane, phase bytes) lies once `saved` are pushed: past them and the return address. */
    private static int stackArgument(int[] saved, int i) { return 8 * saved.length + 8 + 8 * i; }

    /**
     * The registers a tap's address is made of: a pointer into each phase plane (phase[0] the channel's own, the others
     * used only where the taps read that plane), the row register, and three rows (or -1 where none is kept).
     */
    private record Bases(int[] phase, int row, int row3) {
        /** The other phase planes' pointers, from phase[0] and the phase register (bytes): plane p is p phases on. */
        void start(X86Assembler x, Taps taps, int phaseBytes) {
            for (int p = 1; p < 4; p++) {
                if (!taps.reads(p)) continue;
                x.mov(phase[p], phase[0]);
                for (int i = 0; i < p; i++) x.add(phase[p], phaseBytes);
            }
        }

        /** Every pointer the taps read moved on by a register's bytes (the next channel's planes). */
        void advance(X86Assembler x, Taps taps, int bytes) {
            for (int p = 0; p < 4; p++) if (p == 0 || taps.reads(p)) x.add(phase[p], bytes);
        }

        /** Every pointer the taps read moved on by `positions` floats. */
        void nextPosition(X86Assembler x, Taps taps, int positions) {
            for (int p = 0; p < 4; p++) if (p == 0 || taps.reads(p)) x.addImm(phase[p], 4 * positions);
        }
    }

    /** Both codes' end: the saved registers popped, the upper halves cleared, return. */
    private static void leave(X86Assembler x, int[] saved) {
        for (int i = saved.length - 1; i >= 0; i--) x.pop(saved[i]);
        x.vzeroupper();
        x.ret();
    }

    /**
     * Vector register v = tap t's operand, disp bytes on: loaded (a row's B) or broadcast (the weight gradient's x),
     * from its phase plane's pointer, its rows the row register scaled by their count (1, 2, 4, 8) or three rows' scaled
     * by a third of it (3, 6).
     */
    private static void tapOperand(X86Assembler x, boolean wide, boolean broadcast, int v, Bases bases, Taps taps, int t, int disp) {
        int base = bases.phase()[taps.phases[t]], rows = taps.rows[t], index, scale;
        if (rows % 3 == 0 && rows > 0) {
            if (bases.row3() < 0) throw new IllegalArgumentException("no register holds three rows here");
            index = bases.row3();
            scale = rows / 3;
        } else {
            index = bases.row();
            scale = rows;
        }
        if (scale != 0 && scale != 1 && scale != 2 && scale != 4 && scale != 8) throw new IllegalArgumentException("a tap " + rows + " rows on");
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
