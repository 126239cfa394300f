package dev.kiln.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Packs kernel arguments into a reused native buffer and launches: {@code Launch.args().ptr(out).i64(n).go(fn, ...)}.
 * Each thread has its own buffers (a ThreadLocal: two threads may launch at once, and a launch must allocate
 * nothing, so the buffers live as long as the thread). The values go into {@code values} at their C alignment,
 * and {@code params} holds a pointer to each, which is the {@code void** kernelParams} cuLaunchKernel wants.
 */
final class Launch {
    private static final int MAX_ARGS = 64; // attention's backward kernels take 34
    private static final ThreadLocal<Launch> PER_THREAD = ThreadLocal.withInitial(Launch::new);

    private final MemorySegment values;
    private final MemorySegment params;
    private final long valuesAddress;
    private int count;
    private long pos;

    private Launch() {
        Arena arena = Arena.ofAuto();   // freed with this thread's Launch
        values = arena.allocate(4096, 16);
        params = arena.allocate(ADDRESS, MAX_ARGS);
        valuesAddress = values.address();
    }

    /** This thread's argument buffer, emptied. */
    static Launch args() {
        Launch l = PER_THREAD.get();
        l.count = 0;
        l.pos = 0;
        return l;
    }

    private long slot(int size, int align) {
        pos = (pos + align - 1) & -align;
        long at = pos;
        params.setAtIndex(JAVA_LONG, count++, valuesAddress + at);
        pos += size;
        return at;
    }

    Launch ptr(long devicePointer) { values.set(JAVA_LONG, slot(8, 8), devicePointer); return this; }

    Launch i64(long v) { values.set(JAVA_LONG, slot(8, 8), v); return this; }

    Launch i32(int v) { values.set(JAVA_INT, slot(4, 4), v); return this; }

    Launch f64(double v) { values.set(JAVA_DOUBLE, slot(8, 8), v); return this; }

    /** A struct of ints (PoolP, ConvP) passed by value. */
    Launch ints(int... v) {
        long at = slot(4 * v.length, 4);
        for (int i = 0; i < v.length; i++) values.set(JAVA_INT, at + 4L * i, v[i]);
        return this;
    }

    /** The GemmP struct: m, n, k, eight strides, accumulate. */
    Launch gemm(long m, long n, long k, long sab, long sam, long sak, long sbb, long sbk, long sbn, long scb, long scm, boolean acc) {
        long at = slot(96, 8);
        long[] v = {m, n, k, sab, sam, sak, sbb, sbk, sbn, scb, scm};
        for (int i = 0; i < v.length; i++) values.set(JAVA_LONG, at + 8L * i, v[i]);
        values.set(JAVA_INT, at + 88, acc ? 1 : 0);
        return this;
    }

    /** The Geo struct of common.cuh: rank, shape[8], stride[4][8]. */
    Launch geo(Geo g) {
        long at = slot(4 + 4 * Geo.MAX_RANK + 16 * Geo.MAX_RANK, 4);
        values.set(JAVA_INT, at, g.rank);
        for (int d = 0; d < Geo.MAX_RANK; d++) values.set(JAVA_INT, at + 4 + 4L * d, g.shape[d]);
        for (int k = 0; k < 4; k++) {
            for (int d = 0; d < Geo.MAX_RANK; d++) values.set(JAVA_INT, at + 4 + 4L * Geo.MAX_RANK + 4L * (k * Geo.MAX_RANK + d), g.strides[k][d]);
        }
        return this;
    }

    /** Tensors per {@link #tensorList} launch: TensorList's MT_MAX in optim.cu (its struct must fit the 4 KiB of kernel parameters). */
    static final int LIST_MAX = 48;

    /** Operand rows of a TensorList (optim.cu's ptr[5]). */
    static final int LIST_OPERANDS = 5;

    /**
     * The TensorList struct of optim.cu: ptr[LIST_OPERANDS][LIST_MAX] (u64), numel[LIST_MAX] (i64), chunkStart[LIST_MAX + 1]
     * and count (int); {@code count} tensors from index {@code from} of each operand array (a null operand array
     * writes null pointers).
     */
    Launch tensorList(long[][] ptrs, long[] numel, int[] chunkStart, int from, int count) {
        int ptrBytes = LIST_OPERANDS * 8 * LIST_MAX, numelBytes = 8 * LIST_MAX, startBytes = 4 * (LIST_MAX + 1);
        long at = slot(ptrBytes + numelBytes + startBytes + 4, 8);
        for (int op = 0; op < LIST_OPERANDS; op++) {
            for (int k = 0; k < LIST_MAX; k++) {
                long v = k < count && op < ptrs.length && ptrs[op] != null ? ptrs[op][from + k] : 0;
                values.set(JAVA_LONG, at + 8L * (op * LIST_MAX + k), v);
            }
        }
        for (int k = 0; k < LIST_MAX; k++) values.set(JAVA_LONG, at + ptrBytes + 8L * k, k < count ? numel[from + k] : 0);
        for (int k = 0; k <= LIST_MAX; k++) {
            int v = chunkStart[from + Math.min(k, count)] - chunkStart[from];
            values.set(JAVA_INT, at + ptrBytes + numelBytes + 4L * k, v);
        }
        values.set(JAVA_INT, at + ptrBytes + numelBytes + startBytes, count);
        pos = (pos + 7) & -8;   // the struct's size is a multiple of its 8-byte alignment
        return this;
    }

    /** Launches {@code fn} on the device's stream: a 1-D grid of {@code grid} blocks of {@code block} threads. */
    void go(CudaDevice device, Kernels.Fn fn, long grid, int block) { go(device, fn, (int) grid, 1, 1, block, 0); }

    void go(CudaDevice device, Kernels.Fn fn, int gx, int gy, int gz, int block, int shared) {
        MemorySegment stream = device.stream();
        Driver.launchKernel(fn.handle(), gx, gy, gz, block, 1, 1, shared, stream, params, fn.name());
    }
}
