package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.HostArrays;
import dev.kiln.Storage;

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

    @Override public Device device() { return Device.CPU; }

    @Override public DType dtype() { return dtype; }

    @Override public long numel() { return length; }

    /** Drops the reference so the collector can reclaim the array now; views of it fail clearly afterwards. */
    @Override public void release() { array = null; }

    @Override public boolean isReleased() { return array == null; }
}
