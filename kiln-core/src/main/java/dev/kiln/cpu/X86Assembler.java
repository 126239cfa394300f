package dev.kiln.cpu;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Just enough of an x86-64 assembler for the machine-code kernels ({@link SgemmKernelAvx2}, {@link Int8GemmAvx2}):
 * 256-bit AVX and AVX2 loads, stores, broadcasts, float FMAs and the integer multiply-adds of int8 products, addressing
 * [register + displacement] or [register + index · scale + displacement], and the 64-bit integer moves, loads, adds,
 * shifts, counts, pushes and jumps of their loops; the 512-bit float loads, stores, broadcasts and FMAs of
 * {@link SgemmKernelAvx512} and {@link Conv3x3Kernel}.
 * The 256-bit instructions take the three-byte VEX prefix (valid for all sixteen registers), the 512-bit ones EVEX.
 * Registers are numbered as the hardware does: 0 rax, 1 rcx, 2 rdx, 6 rsi, 7 rdi, 8-11 r8-r11; ymm0-15, zmm0-31.
 */
final class X86Assembler {
    static final int RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7, R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15;
    /** Condition codes of the two-byte Jcc rel32 opcodes (0F 8x). */
    static final int JZ = 0x84, JNZ = 0x85, JL = 0x8C, JGE = 0x8D;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final List<int[]> forward = new ArrayList<>();   // {where a rel32 is, where it jumps to}

    /** The offset of the next instruction: a jump target. */
    int here() { return out.size(); }

    /** The machine code, forward jumps resolved. */
    byte[] code() {
        byte[] c = out.toByteArray();
        for (int[] f : forward) putInt(c, f[0], f[1] - (f[0] + 4));
        return c;
    }

    void vmovupsLoad(int ymm, int base, int disp) { vex(ymm, 0, base, MAP_0F, PP_NONE); emit(0x10); memory(ymm, base, disp); }

    /** ymm = the 8 floats at [base + index · scale + disp]. */
    void vmovupsLoad(int ymm, int base, int index, int scale, int disp) {
        vex(ymm, 0, base, index, MAP_0F, PP_NONE);
        emit(0x10);
        memory(ymm, base, index, scale, disp);
    }

    void vmovupsStore(int base, int disp, int ymm) { vex(ymm, 0, base, MAP_0F, PP_NONE); emit(0x11); memory(ymm, base, disp); }

    void vbroadcastss(int ymm, int base, int disp) { vex(ymm, 0, base, MAP_0F38, PP_66); emit(0x18); memory(ymm, base, disp); }

    /** ymm = the float at [base + index · scale + disp] in every lane. */
    void vbroadcastss(int ymm, int base, int index, int scale, int disp) {
        vex(ymm, 0, base, index, MAP_0F38, PP_66);
        emit(0x18);
        memory(ymm, base, index, scale, disp);
    }

    /** ymm = the 32-bit value at [base + index · scale + disp] in every lane. */
    void vpbroadcastd(int ymm, int base, int index, int scale, int disp) {
        vex(ymm, 0, base, index, MAP_0F38, PP_66);
        emit(0x58);
        memory(ymm, base, index, scale, disp);
    }

    /** ymm = the 32-bit value at [base + disp] in every lane. */
    void vpbroadcastd(int ymm, int base, int disp) { vex(ymm, 0, base, MAP_0F38, PP_66); emit(0x58); memory(ymm, base, disp); }

    /** dst = each unsigned byte of u times the signed byte of s beside it, neighbouring products summed into saturated 16-bit words. */
    void vpmaddubsw(int dst, int u, int s) { vex(dst, u, s, MAP_0F38, PP_66); emit(0x04); registers(dst, s); }

    /**
     * acc += each group of 4 unsigned bytes of u times the signed bytes of s beside them, summed into its 32-bit lane
     * (not saturated). evex: the AVX-512 VNNI encoding (ymm form, AVX512VL), else the VEX one of AVX-VNNI.
     */
    void vpdpbusd(int acc, int u, int s, boolean evex) {
        if (evex) {
            // 62, then P0 = R X B R' 0 0 m m (map 0F38), P1 = W vvvv 1 pp (66), P2 = z L'L b V' aaa (256 bits, no mask);
            // R, X, B, R', vvvv and V' inverted. X and R' and V' stay 1: registers below 16
            emit(0x62, ((~acc >> 3 & 1) << 7) | (1 << 6) | ((~s >> 3 & 1) << 5) | (1 << 4) | MAP_0F38,
                    ((~u & 0xF) << 3) | (1 << 2) | PP_66, (1 << 5) | (1 << 3));
        } else {
            vex(acc, u, s, MAP_0F38, PP_66);
        }
        emit(0x50);
        registers(acc, s);
    }

    /** dst = 16-bit x times y, neighbouring products summed into 32-bit lanes. */
    void vpmaddwd(int dst, int x, int y) { vex(dst, x, y, MAP_0F, PP_66); emit(0xF5); registers(dst, y); }

    /** dst = x + y in 32-bit lanes. */
    void vpaddd(int dst, int x, int y) { vex(dst, x, y, MAP_0F, PP_66); emit(0xFE); registers(dst, y); }

    /** dst = 16-bit lanes of x == y as all ones or zero. */
    void vpcmpeqw(int dst, int x, int y) { vex(dst, x, y, MAP_0F, PP_66); emit(0x75); registers(dst, y); }

    /** dst = |src| in 16-bit lanes. */
    void vpabsw(int dst, int src) { vex(dst, 0, src, MAP_0F38, PP_66); emit(0x1D); registers(dst, src); }

    /** acc += x * y. */
    void vfmadd231ps(int acc, int x, int y) { vex(acc, x, y, MAP_0F38, PP_66); emit(0xB8); registers(acc, y); }

    /** dst = x + [base + disp]. */
    void vaddpsLoad(int dst, int x, int base, int disp) { vex(dst, x, base, MAP_0F, PP_NONE); emit(0x58); memory(dst, base, disp); }

    /** dst = 0 (xor of a register with itself). */
    void vzero(int dst) { vex(dst, dst, dst, MAP_0F, PP_NONE); emit(0x57); registers(dst, dst); }

    // 512-bit forms (EVEX, AVX-512F), for zmm0-31. An 8-bit displacement counts in units of the memory operand
    // (64 bytes for a whole vector, 4 for a float), so each takes the operand's size

    void vmovupsLoad512(int zmm, int base, int disp) { evex(zmm, 0, base, false, MAP_0F, PP_NONE); emit(0x10); memory(zmm, base, disp, 64); }

    /** zmm = the 16 floats at [base + index · scale + disp] (index below 8). */
    void vmovupsLoad512(int zmm, int base, int index, int scale, int disp) {
        if (index >= 8) throw new IllegalArgumentException("the 512-bit forms here take an index register below 8");
        evex(zmm, 0, base, false, MAP_0F, PP_NONE);
        emit(0x10);
        memory(zmm, base, index, scale, disp, 64);
    }

    void vmovupsStore512(int base, int disp, int zmm) { evex(zmm, 0, base, false, MAP_0F, PP_NONE); emit(0x11); memory(zmm, base, disp, 64); }

    void vbroadcastss512(int zmm, int base, int disp) { evex(zmm, 0, base, false, MAP_0F38, PP_66); emit(0x18); memory(zmm, base, disp, 4); }

    /** zmm = the float at [base + index · scale + disp] in every lane (index below 8). */
    void vbroadcastss512(int zmm, int base, int index, int scale, int disp) {
        if (index >= 8) throw new IllegalArgumentException("the 512-bit forms here take an index register below 8");
        evex(zmm, 0, base, false, MAP_0F38, PP_66);
        emit(0x18);
        memory(zmm, base, index, scale, disp, 4);
    }

    /** acc += x * y. */
    void vfmadd231ps512(int acc, int x, int y) { evex(acc, x, y, true, MAP_0F38, PP_66); emit(0xB8); registers(acc, y); }

    /** dst = x + [base + disp]. */
    void vaddpsLoad512(int dst, int x, int base, int disp) { evex(dst, x, base, false, MAP_0F, PP_NONE); emit(0x58); memory(dst, base, disp, 64); }

    /** dst = 0 (vpxord of a register with itself). */
    void vzero512(int dst) { evex(dst, dst, dst, true, MAP_0F, PP_66); emit(0xEF); registers(dst, dst); }

    /** prefetcht0 [base + disp]: the cache line into every level. */
    void prefetch(int base, int disp) {
        if (base >= 8) emit(0x41);
        emit(0x0F, 0x18);
        memory(1, base, disp);
    }

    /** Clears the upper halves, so SSE code after the call pays no transition penalty. */
    void vzeroupper() { emit(0xC5, 0xF8, 0x77); }

    void mov(int dst, int src) { rex(src, dst); emit(0x89); registers(src, dst); }

    /** dst = the 64-bit value at [base + disp] (a stack argument: base RSP). */
    void movLoad(int dst, int base, int disp) { rex(dst, base); emit(0x8B); memory(dst, base, disp); }

    /** Saves a callee-saved register (rbx, r12-r15) on the stack; {@link #pop} restores it. */
    void push(int r) { if (r >= 8) emit(0x41); emit(0x50 | (r & 7)); }

    void pop(int r) { if (r >= 8) emit(0x41); emit(0x58 | (r & 7)); }

    void add(int dst, int src) { rex(src, dst); emit(0x01); registers(src, dst); }

    void addImm(int dst, int imm) { arithmeticImm(0, dst, imm); }

    void subImm(int dst, int imm) { arithmeticImm(5, dst, imm); }

    void cmpImm(int dst, int imm) { arithmeticImm(7, dst, imm); }

    void andImm(int dst, int imm) { arithmeticImm(4, dst, imm); }

    void shlImm(int dst, int bits) { rex(0, dst); emit(0xC1); registers(4, dst); emit(bits); }

    void shrImm(int dst, int bits) { rex(0, dst); emit(0xC1); registers(5, dst); emit(bits); }

    void dec(int dst) { rex(0, dst); emit(0xFF); registers(1, dst); }

    void test(int a, int b) { rex(b, a); emit(0x85); registers(b, a); }

    void ret() { emit(0xC3); }

    /** A jump (cc one of JZ, JNZ, JL, JGE) back to an offset already emitted. */
    void jumpBack(int cc, int target) {
        emit(0x0F, cc);
        int at = here();
        emitInt(target - (at + 4));
    }

    /** A forward jump; returns a label to {@link #bind}. */
    int jumpForward(int cc) {
        emit(0x0F, cc);
        int at = here();
        emitInt(0);
        return at;
    }

    /** Points the forward jump `label` here. */
    void bind(int label) { forward.add(new int[]{label, here()}); }

    /** Emits one k step of a kernel: its A operands at [pa + aDisp], its B operands at [b + bDisp]. */
    interface Step { void emit(int aDisp, int bDisp); }

    /** Prefetches (prefetcht0) a tile's `rows` rows of rowBytes each, ldc bytes apart from c (through pc): every line a row touches. */
    void prefetchTile(int c, int pc, int ldc, int rows, int rowBytes) {
        mov(pc, c);
        for (int i = 0; i < rows; i++) {
            for (int at = 0; at < rowBytes - 4; at += 64) prefetch(pc, at);
            prefetch(pc, rowBytes - 4);
            if (i < rows - 1) add(pc, ldc);
        }
    }

    /**
     * The k loop of a row-of-tiles kernel (both kernels'): kc steps (a count register, taken into k) over A's panel from
     * a (through pa) and B's from b, aStep and bStep bytes a step; `unroll` steps a turn, then the rest one by one.
     */
    void kLoop(int pa, int a, int b, int k, int kc, int unroll, int aStep, int bStep, Step step) {
        mov(pa, a);
        mov(k, kc);
        cmpImm(k, unroll);
        int fewSteps = jumpForward(JL);
        int unrolled = here();
        for (int s = 0; s < unroll; s++) step.emit(s * aStep, s * bStep);
        addImm(pa, unroll * aStep);
        addImm(b, unroll * bStep);
        subImm(k, unroll);
        cmpImm(k, unroll);
        jumpBack(JGE, unrolled);
        bind(fewSteps);
        test(k, k);
        int stepsDone = jumpForward(JZ);
        int single = here();
        step.emit(0, 0);
        addImm(pa, aStep);
        addImm(b, bStep);
        dec(k);
        jumpBack(JNZ, single);
        bind(stepsDone);
    }

    /**
     * The end of a row-of-tiles kernel (both kernels'): the tile's `rows` x 2 accumulators (registers from firstAcc on,
     * vectorBytes 32 or 64) stored to C (added to it first when accumulating; float lanes), rows ldc bytes apart from c
     * (through pc), c moved to the next tile, and back to `tile` while tiles remain; then the return.
     */
    void storeTileThenNext(int c, int pc, int ldc, int rows, int firstAcc, int vectorBytes, boolean accumulate, int tiles, int tile) {
        storeTile(c, pc, ldc, rows, firstAcc, vectorBytes, accumulate);
        addImm(c, 2 * vectorBytes);
        dec(tiles);
        jumpBack(JNZ, tile);
        vzeroupper();
        ret();
    }

    /** A tile's `rows` x 2 accumulators (registers from firstAcc on) stored to C (added to it first when accumulating), rows ldc bytes apart from c (through pc). */
    void storeTile(int c, int pc, int ldc, int rows, int firstAcc, int vectorBytes, boolean accumulate) {
        boolean wide = vectorBytes == 64;
        mov(pc, c);
        for (int i = 0; i < rows; i++) {
            for (int h = 0; h < 2; h++) {
                int v = firstAcc + 2 * i + h, disp = h * vectorBytes;
                if (accumulate) {
                    if (wide) vaddpsLoad512(v, v, pc, disp);
                    else vaddpsLoad(v, v, pc, disp);
                }
                if (wide) vmovupsStore512(pc, disp, v);
                else vmovupsStore(pc, disp, v);
            }
            if (i < rows - 1) add(pc, ldc);
        }
    }

    // ---------------------------------------------------------------- encoding

    private static final int MAP_0F = 1, MAP_0F38 = 2, PP_NONE = 0, PP_66 = 1;

    /** VEX3, 256-bit, W0: reg's, index's and rm's high bits inverted in R, X and B, vvvv the inverted second source. */
    private void vex(int reg, int vvvv, int rm, int index, int map, int pp) {
        emit(0xC4, ((~reg >> 3 & 1) << 7) | ((~index >> 3 & 1) << 6) | ((~rm >> 3 & 1) << 5) | map, ((~vvvv & 0xF) << 3) | (1 << 2) | pp);
    }

    private void vex(int reg, int vvvv, int rm, int map, int pp) { vex(reg, vvvv, rm, 0, map, pp); }

    /**
     * EVEX, 512-bit, W0, no mask: P0 = R X B R' 0 m m m, P1 = W vvvv 1 pp, P2 = z L'L b V' aaa, register bits inverted.
     * A register rm's fifth bit goes in X; a memory base has only four.
     */
    private void evex(int reg, int vvvv, int rm, boolean rmRegister, int map, int pp) {
        int x = rmRegister ? ~rm >> 4 & 1 : 1;
        emit(0x62, ((~reg >> 3 & 1) << 7) | (x << 6) | ((~rm >> 3 & 1) << 5) | ((~reg >> 4 & 1) << 4) | map,
                ((~vvvv & 0xF) << 3) | (1 << 2) | pp, (2 << 5) | ((~vvvv >> 4 & 1) << 3));
    }

    /** REX.W with reg's and rm's high bits. */
    private void rex(int reg, int rm) { emit(0x48 | (reg >> 3 << 2) | (rm >> 3)); }

    private void registers(int reg, int rm) { emit(0xC0 | (reg & 7) << 3 | (rm & 7)); }

    /** [base + disp]: always with a displacement (so rbp and r13 need no special case), a SIB byte for rsp and r12. */
    private void memory(int reg, int base, int disp) {
        boolean small = disp >= -128 && disp <= 127;
        emit((small ? 0x40 : 0x80) | (reg & 7) << 3 | (base & 7));
        if ((base & 7) == 4) emit(0x24);
        if (small) emit(disp & 0xFF);
        else emitInt(disp);
    }

    /** [base + disp] under EVEX: an 8-bit displacement where disp is a multiple of n that fits one once divided. */
    private void memory(int reg, int base, int disp, int n) {
        boolean small = disp % n == 0 && disp / n >= -128 && disp / n <= 127;
        emit((small ? 0x40 : 0x80) | (reg & 7) << 3 | (base & 7));
        if ((base & 7) == 4) emit(0x24);
        if (small) emit(disp / n & 0xFF);
        else emitInt(disp);
    }

    /** [base + index · scale + disp] through a SIB byte (index not rsp; scale 1, 2, 4 or 8). */
    private void memory(int reg, int base, int index, int scale, int disp) { memory(reg, base, index, scale, disp, 1); }

    /** The same under EVEX: an 8-bit displacement where disp is a multiple of n that fits one once divided. */
    private void memory(int reg, int base, int index, int scale, int disp, int n) {
        if ((index & 15) == 4) throw new IllegalArgumentException("rsp cannot be an index");
        boolean small = disp % n == 0 && disp / n >= -128 && disp / n <= 127;
        emit((small ? 0x40 : 0x80) | (reg & 7) << 3 | 4);
        emit(Integer.numberOfTrailingZeros(scale) << 6 | (index & 7) << 3 | (base & 7));
        if (small) emit(disp / n & 0xFF);
        else emitInt(disp);
    }

    /** The 0x83 (imm8) / 0x81 (imm32) group: op 0 add, 4 and, 5 sub, 7 cmp. */
    private void arithmeticImm(int op, int dst, int imm) {
        rex(0, dst);
        boolean small = imm >= -128 && imm <= 127;
        emit(small ? 0x83 : 0x81);
        registers(op, dst);
        if (small) emit(imm & 0xFF);
        else emitInt(imm);
    }

    private void emit(int... bytes) { for (int b : bytes) out.write(b); }

    private void emitInt(int v) { emit(v & 0xFF, v >> 8 & 0xFF, v >> 16 & 0xFF, v >>> 24); }

    private static void putInt(byte[] c, int at, int v) {
        for (int i = 0; i < 4; i++) c[at + i] = (byte) (v >> 8 * i);
    }
}
