package dev.kiln.cpu;

/**
 * Per-thread float buffers that kernels reuse from call to call instead of allocating (and the JVM zeroing) a fresh
 * one per call and per task: slot i of the calling thread, grown on demand, its contents whatever was left there.
 * A kernel owns the slots it names below and must not hold one across a call that may use the same slot.
 */
final class ThreadBuffers {
    private ThreadBuffers() {}

    /**
     * Convolution: im2col (or its packed form, or Conv3x3's padded image), the im2col row, the edge tile, the packed (or
     * Conv3x3's transposed) output gradient, Conv3x3's output rows, Conv3x3's packed weights (the calling thread's, read
     * by all workers).
     */
    static final int CONV_COLS = 0, CONV_ROW = 1, CONV_TILE = 2, CONV_GY = 3, CONV_OUT = 9, CONV_WEIGHTS = 10;
    /**
     * Attention (AttentionF32): one head's (L, S) probabilities and their gradient, its keys and values packed, its
     * operands and gradients at unit row stride.
     */
    static final int ATTENTION_SCORES = 4, ATTENTION_GRADS = 5, ATTENTION_KEYS = 6, ATTENTION_VALUES = 7, ATTENTION_HEAD = 8;
    private static final int SLOTS = 11;

    private static final ThreadLocal<float[][]> BUFFERS = ThreadLocal.withInitial(() -> new float[SLOTS][0]);

    /** The calling thread's buffer in slot, at least len floats long; not cleared. */
    static float[] get(int slot, int len) {
        float[][] b = BUFFERS.get();
        if (b[slot].length < len) b[slot] = new float[len];
        return b[slot];
    }
}
