package dev.kiln.nn;

import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * The keys and values of the positions seen so far, one entry per attention layer, for generating step by step:
 * each forward pass appends its new positions' keys and values and attends over all of them, so N new tokens cost
 * N small steps instead of N passes over the whole sequence.
 *
 * <p>For inference: the cache holds copies, so no gradient flows through it. Each entry's memory, keys and values
 * of (B, H, capacity, d), is allocated at its first append on that input's device and dtype, outlives any
 * {@link dev.kiln.MemoryScope} (as {@link Tensor#keep()}), and is freed by {@link #close()}.
 */
public final class KvCache implements AutoCloseable {
    private final Entry[] entries;
    private final int capacity;

    /** A cache for {@code layers} attention layers of up to {@code capacity} positions (a model's context). */
    public KvCache(int layers, int capacity) {
        if (layers < 1 || capacity < 1) throw new IllegalArgumentException("KvCache: layers and capacity must be >= 1, got " + layers + " and " + capacity);
        this.capacity = capacity;
        this.entries = new Entry[layers];
        for (int i = 0; i < layers; i++) entries[i] = new Entry(i);
    }

    /** The number of layers. */
    public int layers() { return entries.length; }

    /** The most positions it holds. */
    public int capacity() { return capacity; }

    /** Positions held: those of the first layer, which is the count of every layer between forward passes. */
    public int length() { return entries[0].length; }

    /** Layer i's keys and values. */
    public Entry layer(int i) {
        if (i < 0 || i >= entries.length) throw new IndexOutOfBoundsException("KvCache: layer " + i + " of " + entries.length);
        return entries[i];
    }

    /** Forgets every position and keeps the memory, for a new sequence of the same batch size. */
    public void reset() { for (Entry e : entries) e.length = 0; }

    /** Frees the memory; the cache is empty afterwards and allocates again at its next append. */
    @Override public void close() {
        for (Entry e : entries) e.free();
    }

    /** One layer's cached keys and values, (B, H, length, d) each. */
    public final class Entry {
        private final int index;
        private Tensor keys, values;   // (B, H, capacity, d) once allocated
        private int length;

        private Entry(int index) { this.index = index; }

        /** Positions held. */
        public int length() { return length; }

        /**
         * Stores k and v (B, H, T, d), the keys and values of the T positions after those held.
         *
         * @throws IllegalStateException when T more positions do not fit
         * @throws IllegalArgumentException when k and v differ in shape, or from the batch, heads, width, dtype or
         *         device of what the entry holds
         */
        public void append(Tensor k, Tensor v) {
            if (k.dim() != 4 || !java.util.Arrays.equals(k.shape(), v.shape())) {
                throw new IllegalArgumentException("KvCache: keys and values must both be (B, H, T, d), got " + Shape.str(k.shape()) + " and " + Shape.str(v.shape()));
            }
            int t = k.size(2);
            if (length + t > capacity) {
                throw new IllegalStateException("KvCache: layer " + index + " holds " + length + " of " + capacity + " positions; " + t + " more do not fit");
            }
            int[] full = {k.size(0), k.size(1), capacity, k.size(3)};
            if (keys == null) {
                keys = Tensor.empty(full, k.dtype(), k.device()).keep();
                values = Tensor.empty(full, v.dtype(), v.device()).keep();
            } else if (!java.util.Arrays.equals(keys.shape(), full) || keys.dtype() != k.dtype() || !keys.device().equals(k.device())) {
                throw new IllegalArgumentException("KvCache: layer " + index + " holds (B, H, capacity, d) = " + Shape.str(keys.shape()) + " " + keys.dtype()
                        + " on " + keys.device() + ", got keys " + Shape.str(k.shape()) + " " + k.dtype() + " on " + k.device() + " (reset or close it for another batch)");
            }
            keys.narrow(2, length, t).copyFrom(k);
            values.narrow(2, length, t).copyFrom(v);
            length += t;
        }

        /** The keys held, (B, H, length, d): a view of the cache's memory. */
        public Tensor keys() { return held(keys); }

        /** The values held, (B, H, length, d): a view of the cache's memory. */
        public Tensor values() { return held(values); }

        private Tensor held(Tensor t) {
            if (t == null || length == 0) throw new IllegalStateException("KvCache: layer " + index + " holds no positions yet");
            return t.narrow(2, 0, length);
        }

        private void free() {
            if (keys != null) {
                keys.close();
                values.close();
            }
            keys = values = null;
            length = 0;
        }
    }
}
