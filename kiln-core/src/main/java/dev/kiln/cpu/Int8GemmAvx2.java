package dev.kiln.cpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Objects;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static dev.kiln.cpu.X86Assembler.*;

/**
 * Part of the Int8Gemm family: the int8 product's micro-kernel as machine code ({@link MachineCode}) on processors with
 * AVX2. The Vector API has no byte dot product (no widening multiply-add), so {@link Int8Gemm} had only widened shorts
 * or float copies of the codes; AVX2 has one: {@code vpmaddubsw} multiplies 32 unsigned bytes by 32 signed ones and sums
 * neighbouring products into 16-bit words, {@code vpmaddwd} against 16-bit ones sums those pairs into 32-bit lanes, and
 * {@code vpaddd} accumulates: 64 multiply-adds for one row of a 16-wide tile in six instructions, where float32 takes
 * eight FMAs. The words cannot saturate when the unsigned operand is at most 127 (two products sum to at most
 * 2 · 127 · 127 < 2^15), so the sums are exact int32: the activations are codes of at least 0 (as after a ReLU) or split
 * into max(x, 0) and max(-x, 0) against w and -w ({@link Int8Gemm}'s callers do that). Either operand can be the
 * unsigned one: a linear layer broadcasts its activations (rows of the batch) against tiles of weights, so its sums come
 * out row by row; a convolution broadcasts its weights against tiles of output positions, so its sums come out channel
 * by channel, NCHW's order. Where the processor has VNNI, one {@code vpdpbusd} does a step's three instructions without
 * the 16-bit stage ({@link Vnni}).
 * <p>
 * A tile is 5 rows x 16 columns in ten accumulators (ymm4-13), the weights' two vectors, a broadcast, two products and
 * the ones in the rest. A: rows of 4·quads bytes one after another (4 codes of a row broadcast a step). B: packed
 * ({@link #pack}), 16 columns x 4 codes per step. C: int32 sums, overwritten.
 */
final class Int8GemmAvx2 {
    private Int8GemmAvx2() {}

    /** Rows and columns of a tile. */
    static final int MR = 5, NR = 16;

    /** The dot-product instruction a kernel's step uses: AVX2's three, or VNNI's one in its VEX or EVEX (AVX-512) encoding. */
    enum Vnni { NONE, VEX, EVEX }

    /**
     * Each step form this processor runs, as two entry points: [0] A's broadcast codes unsigned (B's signed), [1] B's
     * vectors unsigned (A's signed).
     */
    private static final java.util.Map<Vnni, MethodHandle[]> KERNELS = new java.util.EnumMap<>(Vnni.class);
    /** The form products use: VNNI where the processor has it (the AVX-512 encoding only where Java runs 512-bit vectors). */
    static final Vnni IN_USE;
    /** Why the kernel is not in use, or null when it is. */
    static final String UNAVAILABLE;

    static {
        String why = MachineCode.whyUnavailable("avx2");
        Vnni use = Vnni.NONE;
        if (why == null) {
            java.util.Set<String> f = MachineCode.x86Features();
            try {
                FunctionDescriptor rows = FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG);
                for (Vnni v : Vnni.values()) {
                    boolean runs = switch (v) {
                        case NONE -> true;
                        case VEX -> f.contains("avx_vnni");
                        case EVEX -> f.contains("avx512_vnni") && f.contains("avx512vl");
                    };
                    if (runs) KERNELS.put(v, new MethodHandle[]{MachineCode.function(rowCode(true, v), rows), MachineCode.function(rowCode(false, v), rows)});
                }
                if (KERNELS.containsKey(Vnni.VEX)) use = Vnni.VEX;
                if (KERNELS.containsKey(Vnni.EVEX) && jdk.incubator.vector.IntVector.SPECIES_PREFERRED.vectorBitSize() == 512) use = Vnni.EVEX;
            } catch (Throwable t) {
                KERNELS.clear();
                why = "machine code could not be placed: " + t.getMessage();
            }
        }
        IN_USE = use;
        UNAVAILABLE = why;
    }

    /** The step forms this processor runs (for tests: each against the others). */
    static java.util.Set<Vnni> forms() { return java.util.Collections.unmodifiableSet(KERNELS.keySet()); }

    /** What `kiln devices` says of the int8 kernel. */
    static String describe() {
        if (!available()) return "Java (" + UNAVAILABLE + ")";
        return switch (IN_USE) {
            case NONE -> "AVX2 machine code 5x16";
            case VEX -> "AVX-VNNI machine code 5x16";
            case EVEX -> "AVX-512 VNNI machine code 5x16";
        };
    }

    /** Whether this machine runs the kernel (see {@link #UNAVAILABLE} when not). */
    static boolean available() { return UNAVAILABLE == null; }

    /** Four codes at once. */
    static final java.lang.invoke.VarHandle INTS = java.lang.invoke.MethodHandles.byteArrayViewVarHandle(int[].class, java.nio.ByteOrder.LITTLE_ENDIAN);

    /** Steps of 4 codes for k codes (the rows are padded with zeros to a multiple of 4). */
    static int quads(int k) { return (k + 3) / 4; }

    /**
     * The weights of `out` outputs as the kernel's B. codes: out x channels x taps (a linear layer's rows: taps 1; a
     * convolution's: kh·kw taps). A row of B takes them tap-major, channel within tap (the order of a channels-last
     * input's pixels); with `split` each tap holds the channels and then their negations, against the activations'
     * max(x, 0) and max(-x, 0).
     */
    static int[] packWeights(byte[] codes, int out, int channels, int taps, boolean split) {
        int slots = split ? 2 * channels : channels;
        return (int[]) cached(codes, split ? 1 : 0, () -> pack(weightRows(codes, out, out, channels, taps, split, slots), out, quads(taps * slots)));
    }

    /**
     * A layer's weights as the kernel takes them, made once per codes array (a quantized layer's codes do not change):
     * four forms, packed or rows, split or not. Weak keys: gone with the layer.
     */
    private static final java.util.Map<byte[], Object[]> WEIGHTS = new java.util.WeakHashMap<>();

    /** Under the map's lock, so a form made by one thread is seen whole by the others (a layer's first call makes it). */
    private static Object cached(byte[] codes, int form, java.util.function.Supplier<Object> make) {
        synchronized (WEIGHTS) {
            Object[] forms = WEIGHTS.computeIfAbsent(codes, c -> new Object[4]);
            if (forms[form] == null) forms[form] = make.get();
            return forms[form];
        }
    }

    /**
     * A convolution's weights as the kernel's A (its broadcast operand): {@link #weightRows} with each tap's channels
     * (and their negations) padded to whole words of 4, as {@link #slots} says, and out rounded up to whole panels;
     * cached as {@link #packWeights}.
     */
    static byte[] weightPanels(byte[] codes, int out, int channels, int taps, boolean split) {
        return (byte[]) cached(codes, split ? 3 : 2, () -> weightRows(codes, (out + MR - 1) / MR * MR, out, channels, taps, split, slots(channels, split)));
    }

    /** Codes a channels-last pixel holds for the kernel: the channels (twice with `split`) rounded up to whole ints. */
    static int slots(int channels, boolean split) { return ((split ? 2 * channels : channels) + 3) / 4 * 4; }

    /**
     * The rows unpacked, `rows` >= out of them (the rest 0): tap t's codes from t · slots (channels, then their negations
     * with `split`, then zeros up to slots); each row padded to whole steps of 4.
     */
    static byte[] weightRows(byte[] codes, int rows, int out, int channels, int taps, boolean split, int slots) {
        int quads = quads(taps * slots), kp = 4 * quads;
        byte[] w = new byte[rows * kp];
        for (int o = 0; o < out; o++) for (int c = 0; c < channels; c++) for (int t = 0; t < taps; t++) {
            byte v = codes[(o * channels + c) * taps + t];
            int at = o * kp + t * slots + c;
            w[at] = v;
            if (split) w[at + channels] = (byte) -v;
        }
        return w;
    }

    /** Activation code v as the kernel's unsigned operand: v, or with `split` max(v, 0) at `at` and max(-v, 0) at at + channels. */
    static void putCode(byte[] dst, int at, int v, int channels, boolean split) {
        if (!split) {
            dst[at] = (byte) v;
        } else {
            dst[at] = (byte) Math.max(v, 0);
            dst[at + channels] = (byte) Math.max(-v, 0);
        }
    }

    /**
     * w (n rows of 4·quads codes) as the kernel's B: tile by tile (16 rows of w, the last padded with zero rows), step by
     * step, the 4 codes of each of the 16 rows.
     */
    static int[] pack(byte[] w, int n, int quads) {
        int[] p = new int[(n + NR - 1) / NR * quads * NR];   // a step's 4 codes an int, their bytes in memory order
        int kp = 4 * quads;
        for (int j = 0; j < n; j++) {
            int tile = j / NR, col = j % NR;
            for (int q = 0; q < quads; q++) p[(tile * quads + q) * NR + col] = (int) INTS.get(w, j * kp + 4 * q);
        }
        return p;
    }

    /**
     * Row panels [p0, p1) of a (MR rows of 4·quads bytes a panel, from offset 0) times every tile of b (packed):
     * C[row][16 · tile + col] in c, rows ldc apart. Tiles go in blocks whose packed bytes stay in L2 while the panels pass.
     */
    static void product(byte[] a, int p0, int p1, int quads, int[] b, int tiles, int[] c, int ldc, boolean unsignedA) {
        int tileInts = quads * NR, block = Math.max(1, (64 << 10) / Math.max(1, tileInts));
        for (int t0 = 0; t0 < tiles; t0 += block) {
            int t1 = Math.min(tiles, t0 + block);
            for (int p = p0; p < p1; p++) rows(a, p * MR * 4 * quads, quads, b, t0 * tileInts, c, p * MR * ldc + t0 * NR, ldc, t1 - t0, unsignedA, IN_USE);
        }
    }

    /**
     * One panel of MR rows (from a[ao]) against `tiles` packed tiles (from b[bo], an int per step and column): C from c[co]. unsignedA: A's codes are
     * the unsigned operand (0-127), else B's. Indices checked here: the code does not.
     */
    static void rows(byte[] a, int ao, int quads, int[] b, int bo, int[] c, int co, int ldc, int tiles, boolean unsignedA, Vnni form) {
        if (tiles <= 0) return;
        if (quads < 0 || ldc < NR) throw new IllegalArgumentException("int8 AVX2 kernel: quads must be >= 0 and ldc >= " + NR + ", got " + quads + " and " + ldc);
        Objects.checkFromIndexSize(ao, (long) MR * 4 * quads, a.length);
        Objects.checkFromIndexSize(bo, (long) tiles * quads * NR, b.length);
        Objects.checkFromIndexSize(co, (long) (MR - 1) * ldc + (long) tiles * NR, c.length);
        try {
            MemorySegment pa = MemorySegment.ofArray(a).asSlice(ao), pb = MemorySegment.ofArray(b).asSlice(4L * bo), pc = MemorySegment.ofArray(c).asSlice(4L * co);
            MethodHandle[] forms = KERNELS.get(form);
            if (forms == null) throw new IllegalArgumentException("this processor has no " + form + " int8 kernel: " + forms());
            forms[unsignedA ? 0 : 1].invokeExact(pa, pb, pc, (long) quads, 4L * ldc, (long) tiles);
        } catch (Throwable t) {
            throw new IllegalStateException("the int8 AVX2 kernel failed", t);
        }
    }

    /**
     * {@code void rows(int8* a, int8* b, int32* c, long quads, long ldcBytes, long tiles)} (System V: rdi, rsi, rdx, rcx,
     * r8, r9). Rows 0-2 of A are [a + i·lda], rows 3-4 [a3 + (i-3)·lda] with lda = 4·quads in rcx; B runs on from one tile
     * to the next, C moves 16 ints right.
     */
    static byte[] rowCode(boolean unsignedA, Vnni vnni) {
        X86Assembler x = new X86Assembler();
        int a = RDI, b = RSI, c = RDX, lda = RCX, ldc = R8, tiles = R9, k = RAX, pa = R10, pa3 = R11;
        int ones = 15, b0 = 0, b1 = 1, bcast = 2, t0 = 3, t1 = 14;
        x.shlImm(lda, 2);
        x.vpcmpeqw(ones, ones, ones);
        x.vpabsw(ones, ones);   // -1 -> 1 in every 16-bit lane
        int tile = x.here();
        for (int y = 4; y < 4 + 2 * MR; y++) x.vzero(y);
        x.mov(pa, a);
        x.mov(pa3, a);
        x.add(pa3, lda);
        x.add(pa3, lda);
        x.add(pa3, lda);
        x.mov(k, lda);
        x.shrImm(k, 2);
        x.test(k, k);
        int stepsDone = x.jumpForward(JZ);
        int step = x.here();
        x.vmovupsLoad(b0, b, 0);
        x.vmovupsLoad(b1, b, 32);
        for (int r = 0; r < MR; r++) {
            int base = r < 3 ? pa : pa3, i = r % 3;
            if (i == 0) x.vpbroadcastd(bcast, base, 0);
            else x.vpbroadcastd(bcast, base, lda, i, 0);
            int acc = 4 + 2 * r;
            if (vnni != Vnni.NONE) {
                boolean evex = vnni == Vnni.EVEX;
                if (unsignedA) {
                    x.vpdpbusd(acc, bcast, b0, evex);
                    x.vpdpbusd(acc + 1, bcast, b1, evex);
                } else {
                    x.vpdpbusd(acc, b0, bcast, evex);
                    x.vpdpbusd(acc + 1, b1, bcast, evex);
                }
                continue;
            }
            if (unsignedA) {
                x.vpmaddubsw(t0, bcast, b0);
                x.vpmaddubsw(t1, bcast, b1);
            } else {
                x.vpmaddubsw(t0, b0, bcast);
                x.vpmaddubsw(t1, b1, bcast);
            }
            x.vpmaddwd(t0, t0, ones);
            x.vpmaddwd(t1, t1, ones);
            x.vpaddd(acc, acc, t0);
            x.vpaddd(acc + 1, acc + 1, t1);
        }
        x.addImm(pa, 4);
        x.addImm(pa3, 4);
        x.addImm(b, NR * 4);
        x.dec(k);
        x.jumpBack(JNZ, step);
        x.bind(stepsDone);
        x.storeTileThenNext(c, pa, ldc, MR, 4, 32, false, tiles, tile);   // the int32 sums stored as they are
        return x.code();
    }
}
