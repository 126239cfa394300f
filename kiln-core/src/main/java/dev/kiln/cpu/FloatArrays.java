package dev.kiln.cpu;

import java.lang.ref.SoftReference;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Large float32 arrays kept after their tensor's memory is released, for the next tensor of the same length: the CPU's
 * counterpart of the CUDA caching allocator. A training step runs in a {@link dev.kiln.MemoryScope} and autograd
 * releases each backward's temporaries, so from the second step on most of a step's tensors reuse the arrays of the
 * step before. A new Java array is zeroed by the allocating thread alone: 100 MB took 8-10 ms, while 15 other cores
 * waited, and a GPT step on 16 cores allocates gigabytes (PyTorch's allocator hands out memory without clearing it).
 * Arrays are held softly (the collector may take them back when the heap runs short) and up to a quarter of the heap.
 */
final class FloatArrays {
    private FloatArrays() {}

    /**
     * For tests (kiln.cpu.poison): every float32 array, of any length, comes from here; those handed
     * out unset and those given back are filled with NaN, so a kernel that reads memory it did not write, or keeps an
     * array after its release, shows.
     */
    private static final boolean POISON = dev.kiln.Settings.get().cpuPoison();

    /** Shorter arrays are allocated fresh: the young generation makes them cheaply. */
    static final int MIN_LENGTH = POISON ? 1 : 1 << 14;

    private static final long CAP_FLOATS = Runtime.getRuntime().maxMemory() / 4 / Float.BYTES;

    private static final ConcurrentHashMap<Integer, ConcurrentLinkedDeque<SoftReference<float[]>>> FREE = new ConcurrentHashMap<>();
    private static final AtomicLong HELD = new AtomicLong();

    /** An array of exactly n floats, zeroed or not: a kept one when there is one (zeroed on all threads). */
    static float[] take(int n, boolean zeroed) {
        float[] a = null;
        var list = FREE.get(n);
        if (list != null) {
            for (SoftReference<float[]> r; a == null && (r = list.pollFirst()) != null; ) {
                HELD.addAndGet(-n);
                a = r.get();
            }
        }
        if (a == null) return zeroed || !POISON ? new float[n] : fill(new float[n], Float.NaN);
        return zeroed ? fill(a, 0f) : POISON ? fill(a, Float.NaN) : a;
    }

    private static float[] fill(float[] a, float v) {
        Parallel.fill(a, 0, a.length, v);
        return a;
    }

    /**
     * Keeps a released array for {@link #take}. Past a quarter of the heap, kept arrays make room for it (each length's
     * oldest first): refusing new ones instead left an LSTM trained after a GPT, in one process, with none kept.
     */
    static void give(float[] a) {
        if (a.length > CAP_FLOATS) return;
        if (HELD.addAndGet(a.length) > CAP_FLOATS) evict();
        if (POISON) fill(a, Float.NaN);
        FREE.computeIfAbsent(a.length, k -> new ConcurrentLinkedDeque<>()).addFirst(new SoftReference<>(a));
    }

    /** Drops kept arrays, the oldest of each length first, until the rest fit in the cap. */
    private static void evict() {
        for (var e : FREE.entrySet()) {
            for (SoftReference<float[]> r; HELD.get() > CAP_FLOATS && (r = e.getValue().pollLast()) != null; ) HELD.addAndGet(-e.getKey());
            if (HELD.get() <= CAP_FLOATS) return;
        }
    }
}
