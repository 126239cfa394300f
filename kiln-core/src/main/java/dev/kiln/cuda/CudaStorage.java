package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Storage;

import java.lang.ref.Cleaner;

/**
 * Device memory behind one or more tensors: a block from the device's caching allocator. {@link #release()} hands
 * the block back at once (later kernels on the device's stream may reuse it; earlier ones still queued finish
 * first, since everything runs on one stream). A {@link Cleaner} returns the block if the storage becomes
 * unreachable unreleased: a safety net only, because the collector does not see device memory.
 */
public final class CudaStorage implements Storage {
    private static final Cleaner CLEANER = Cleaner.create();

    private final CudaDevice device;
    private final DType dtype;
    private final long numel;
    private final Release release;
    private final Cleaner.Cleanable cleanable;

    /** The cleaning action: holds what it frees, never the storage itself. */
    private static final class Release implements Runnable {
        final CudaAllocator allocator;
        final CudaAllocator.Block block;
        volatile boolean released;

        Release(CudaAllocator allocator, CudaAllocator.Block block) {
            this.allocator = allocator;
            this.block = block;
        }

        @Override public void run() {
            released = true;
            allocator.free(block);
        }
    }

    private CudaStorage(CudaDevice device, DType dtype, long numel, CudaAllocator.Block block) {
        this.device = device;
        this.dtype = dtype;
        this.numel = numel;
        this.release = new Release(device.allocator(), block);
        this.cleanable = CLEANER.register(this, release);
    }

    static CudaStorage allocate(CudaDevice device, DType dtype, long numel) {
        if (numel < 0) throw new IllegalArgumentException("negative element count " + numel);
        CudaStorage s = new CudaStorage(device, dtype, numel, device.allocator().allocate(numel * dtype.byteSize()));
        dev.kiln.MemoryScope.track(s);
        return s;
    }

    /** The device address of element 0. */
    public long address() {
        if (release.released) throw new IllegalStateException("cuda tensor memory used after it was released");
        return release.block.address();
    }

    public CudaDevice cudaDevice() { return device; }

    @Override public Device device() { return Device.cuda(device.index()); }

    @Override public DType dtype() { return dtype; }

    @Override public long numel() { return numel; }

    @Override public void release() { cleanable.clean(); }

    @Override public boolean isReleased() { return release.released; }
}
