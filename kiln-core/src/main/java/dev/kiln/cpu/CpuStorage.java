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

    public CpuStorage(DType dtype, Object array) {
        this.dtype = dtype;
        this.array = array;
        this.length = HostArrays.length(array);
        dev.kiln.MemoryScope.track(this);
    }

    public static CpuStorage allocate(DType dtype, long numel) {
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("cpu tensors hold at most " + (Integer.MAX_VALUE - 8) + " elements, asked for " + numel);
        }
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

    /** A new contiguous CPU tensor, uninitialised. */
    static Tensor newTensor(int[] shape, DType dtype) { return new Tensor(allocate(dtype, Shape.numel(shape)), shape); }

    @Override public Device device() { return Device.CPU; }

    @Override public DType dtype() { return dtype; }

    @Override public long numel() { return length; }

    /** Drops the reference so the collector can reclaim the array now; views of it fail clearly afterwards. */
    @Override public void release() { array = null; }

    @Override public boolean isReleased() { return array == null; }
}
