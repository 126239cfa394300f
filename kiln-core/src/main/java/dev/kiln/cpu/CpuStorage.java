package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Storage;
import dev.kiln.Tensor;

/** Host memory: a Java array of the dtype's carrier type (float[], double[], long[], int[], byte[], short[]). */
public final class CpuStorage implements Storage {
    private final DType dtype;
    private Object array;
    private final int length;

    /** Whether the array came from {@link #allocate} and goes back to {@link FloatArrays} on release (arrays handed in never do). */
    private final boolean pooled;

    public CpuStorage(DType dtype, Object array) { this(dtype, array, false); }

    private CpuStorage(DType dtype, Object array, boolean pooled) {
        this.dtype = dtype;
        this.array = array;
        this.length = HostArrays.length(array);
        this.pooled = pooled;
        dev.kiln.MemoryScope.track(this);
    }

    /**
     * New memory, uninitialised as on CUDA (Backend.allocate): large float32 arrays come from those released before
     * ({@link FloatArrays}) and hold their old values.
     */
    public static CpuStorage allocate(DType dtype, long numel) { return allocate(dtype, numel, false); }

    private static CpuStorage allocate(DType dtype, long numel, boolean zeroed) {
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("cpu tensors hold at most " + (Integer.MAX_VALUE - 8) + " elements, asked for " + numel);
        }
        if (dtype == DType.FLOAT32 && numel >= FloatArrays.MIN_LENGTH) return new CpuStorage(dtype, FloatArrays.take((int) numel, zeroed), true);
        return new CpuStorage(dtype, HostArrays.allocate(dtype, (int) numel));
    }

    public Object array() {
        if (array == null) throw new IllegalStateException("cpu tensor used after close()");
        return array;
    }

    // ---- for the kernels of every family

    /** The backing array of a CPU tensor (its elements start at t.offset() and follow t.strides()). */
    static Object arrayOf(Tensor t) { return ((CpuStorage) t.storage()).array(); }

    /** The backing array of a contiguous tensor: the fused kernels index it flat from t.offset(). */
    static Object contiguousArray(String op, Tensor t) {
        if (!t.isContiguous()) throw new IllegalArgumentException(op + ": expected contiguous tensors, got strides of shape " + Shape.str(t.shape()));
        return arrayOf(t);
    }

    /** A new contiguous CPU tensor of zeros (kernels that add into their output, or leave parts of it, count on them). */
    static Tensor newTensor(int[] shape, DType dtype) { return new Tensor(allocate(dtype, Shape.numel(shape), true), shape); }

    /**
     * A new contiguous CPU tensor whose every element the caller writes: its memory may hold old values (no pass
     * clearing it first). For the kernels whose outputs are most of a step's memory; the suite run with kiln.cpu.poison
     * checks that they write it all ({@link FloatArrays}).
     */
    static Tensor unsetTensor(int[] shape, DType dtype) { return new Tensor(allocate(dtype, Shape.numel(shape), false), shape); }

    @Override public Device device() { return Device.CPU; }

    @Override public DType dtype() { return dtype; }

    @Override public long numel() { return length; }

    /**
     * Drops the reference, so the array goes back to {@link FloatArrays} (or to the collector) now; views of it fail
     * clearly afterwards. Synchronized: two threads releasing at once must not give one array back twice.
     */
    @Override public synchronized void release() {
        Object a = array;
        array = null;
        if (pooled && a != null) FloatArrays.give((float[]) a);
    }

    @Override public boolean isReleased() { return array == null; }
}
