package dev.kiln.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The caching allocator of one device, after PyTorch's: requests are rounded to a size class (512 bytes for
 * small blocks up to 1 MiB, 2 MiB multiples above) and freed blocks go back to a pool of their class, so a loop
 * that asks for the same sizes every step stops calling cuMemAlloc after its first steps. When cuMemAlloc runs
 * out of memory, the cached free blocks are handed back to the driver and the allocation is tried once more.
 *
 * <p>All work of a device runs on its one stream (see {@link CudaDevice}), so a block freed while kernels that
 * use it are still queued can be handed out again at once: the next user's kernels run after them.
 */
public final class CudaAllocator {
    static final long SMALL_LIMIT = 1L << 20;
    static final long SMALL_ROUND = 512;
    static final long LARGE_ROUND = 2L << 20;

    /** One block of device memory: its address and its (rounded) size. */
    public record Block(long address, long size) {}

    /** A snapshot of the allocator's counters. */
    public record Stats(long allocatedBytes, long reservedBytes, long cachedBytes, long allocCalls, long freeCalls,
                        long cacheHits, long liveBlocks) {
        @Override public String toString() {
            return String.format("allocated %,d B in %d blocks, reserved %,d B (%,d B cached free), cuMemAlloc calls %d, cuMemFree calls %d, cache hits %d",
                    allocatedBytes, liveBlocks, reservedBytes, cachedBytes, allocCalls, freeCalls, cacheHits);
        }
    }

    private final CudaDevice device;
    private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
    private long peakAllocated; // the high-water mark of allocated since the last resetPeak()
    private long allocated, reserved, cached, allocCalls, freeCalls, cacheHits, live;

    CudaAllocator(CudaDevice device) { this.device = device; }

    static long roundSize(long bytes) {
        if (bytes <= 0) return 0;
        if (bytes <= SMALL_LIMIT) return (bytes + SMALL_ROUND - 1) / SMALL_ROUND * SMALL_ROUND;
        return (bytes + LARGE_ROUND - 1) / LARGE_ROUND * LARGE_ROUND;
    }

    /** A block of at least {@code bytes}; a zero-byte request gets the null block. */
    public synchronized Block allocate(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation: " + bytes + " bytes");
        if (bytes == 0) return new Block(0, 0);
        long size = roundSize(bytes);
        ArrayDeque<Block> pool = free.get(size);
        Block b = pool == null ? null : pool.poll();
        if (b != null) {
            cacheHits++;
            cached -= size;
        } else {
            b = new Block(cudaMalloc(size, bytes), size);
        }
        allocated += size;
        peakAllocated = Math.max(peakAllocated, allocated);
        live++;
        return b;
    }

    /** Returns a block to its pool (no driver call). */
    public synchronized void free(Block b) {
        if (b.size() == 0) return;
        allocated -= b.size();
        live--;
        cached += b.size();
        free.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b);
    }

    /** Hands every cached free block back to the driver (waits for the device first). */
    public synchronized void emptyCache() {
        if (cached == 0) return;
        device.synchronize();
        device.makeCurrent();
        for (ArrayDeque<Block> pool : free.values()) {
            for (Block b : pool) {
                Driver.memFree(b.address());
                freeCalls++;
                reserved -= b.size();
            }
            pool.clear();
        }
        cached = 0;
    }

    /** The most bytes handed out at once (rounded sizes) since the allocator was made or {@link #resetPeak()}. */
    public synchronized long peakAllocatedBytes() { return peakAllocated; }

    /** Starts a new high-water mark from the bytes allocated now. */
    public synchronized void resetPeak() { peakAllocated = allocated; }

    public synchronized Stats stats() { return new Stats(allocated, reserved, cached, allocCalls, freeCalls, cacheHits, live); }

    private long cudaMalloc(long size, long requested) {
        device.makeCurrent();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            int r = Driver.memAlloc(p, size);
            if (r == Driver.CUDA_ERROR_OUT_OF_MEMORY) {
                emptyCache();
                r = Driver.memAlloc(p, size);
            }
            if (r == Driver.CUDA_ERROR_OUT_OF_MEMORY) {
                long[] info = Driver.memGetInfo();
                throw new CudaException.OutOfMemory(String.format(
                        "cuda:%d out of memory: tried to allocate %,d bytes (%s); the device has %,d bytes free of %,d; Kiln's allocator: %s",
                        device.index(), requested, human(requested), info[0], info[1], stats()));
            }
            Driver.check(r, "cuMemAlloc(" + size + " bytes)");
            allocCalls++;
            reserved += size;
            return p.get(JAVA_LONG, 0);
        }
    }

    static String human(long bytes) {
        if (bytes >= 1L << 30) return String.format("%.2f GiB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format("%.2f MiB", bytes / (double) (1L << 20));
        if (bytes >= 1L << 10) return String.format("%.2f KiB", bytes / 1024.0);
        return bytes + " B";
    }
}
