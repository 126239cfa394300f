package dev.kiln;

/**
 * The memory behind one or more tensors (views share it). A CPU storage is a Java array, which the garbage
 * collector sees and frees; a GPU storage is device memory from the caching allocator and is handed back
 * deterministically by {@link #release()} (the collector is only a safety net there, see docs/DESIGN-NOTES.md).
 */
public interface Storage {
    Device device();

    DType dtype();

    /** Capacity in elements. */
    long numel();

    /** Returns the memory to its pool. Later use of a tensor on this storage fails with a clear message. */
    void release();

    boolean isReleased();
}
