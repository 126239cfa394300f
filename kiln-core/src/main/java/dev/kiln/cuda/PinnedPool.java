package dev.kiln.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A few page-locked host buffers reused round-robin for copies to one device. Pinned memory is what lets
 * {@code cuMemcpyHtoDAsync} run truly asynchronously (from pageable memory the driver stages the bytes itself and the
 * call returns only when they are out), and it is expensive to allocate, so a pool is made once per data loader and
 * never per batch. Each slot carries the event recorded after its last copy was queued: a slot is written again only
 * after that event has completed, which waits for that one copy, not for the device.
 */
public final class PinnedPool implements AutoCloseable {
    private static final long GRAIN = 1L << 20; // slots grow in MiB steps, so a slightly larger batch reuses the slot

    private final CudaDevice device;
    private final Slot[] slots;
    private boolean closed;

    /** One pinned buffer and the events that order its reuse. */
    public final class Slot {
        private MemorySegment host;
        private final Event copied;      // recorded on the copy stream after this slot's last copy
        private final Event deviceFree;  // recorded on the compute stream before the copy into fresh device memory

        private Slot() {
            copied = Event.create(device, false);
            deviceFree = Event.create(device, false);
        }

        /**
         * The buffer, at least {@code bytes} long, once the previous copy out of it has finished (call from the thread
         * that fills it). Grows only when a batch is larger than every batch before it.
         */
        public MemorySegment acquire(long bytes) {
            copied.synchronize();
            if (host == null || host.byteSize() < bytes) {
                device.makeCurrent();
                if (host != null) Driver.memFreeHost(host);
                host = Driver.memHostAlloc(Math.max(GRAIN, (bytes + GRAIN - 1) / GRAIN * GRAIN));
            }
            return host.asSlice(0, bytes);
        }

        /** The event of this slot's last copy (recorded by {@link #copyToDevice}). */
        public Event copied() { return copied; }

        /**
         * Queues copies of this slot's bytes to device memory on the copy stream, then records {@link #copied()}.
         * The destinations are fresh blocks of the caching allocator, which may have been in use by kernels still
         * queued on the compute stream, so the copy stream first waits for everything queued there so far.
         * Each copy is {hostOffset, deviceAddress, bytes}.
         */
        public void copyToDevice(long[][] copies) {
            MemorySegment copyStream = device.copyStream();
            deviceFree.record(device.stream());
            deviceFree.makeWait(copyStream);
            for (long[] c : copies) {
                if (c[2] > 0) Driver.memcpyHtoDAsync(c[1], host.asSlice(c[0], c[2]), c[2], copyStream);
            }
            copied.record(copyStream);
        }
    }

    public PinnedPool(CudaDevice device, int slots) {
        if (slots < 2) throw new IllegalArgumentException("a pinned pool needs at least 2 slots to overlap, got " + slots);
        this.device = device;
        this.slots = new Slot[slots];
        for (int i = 0; i < slots; i++) this.slots[i] = new Slot();
    }

    public CudaDevice device() { return device; }

    public int size() { return slots.length; }

    /** The slot of the k-th batch (round-robin). */
    public Slot slot(long k) { return slots[(int) (k % slots.length)]; }

    /** Pinned bytes held (for tests and logs). */
    public long pinnedBytes() {
        long n = 0;
        for (Slot s : slots) n += s.host == null ? 0 : s.host.byteSize();
        return n;
    }

    /** Waits for each slot's last copy, then frees the pinned memory and the events. */
    @Override public void close() {
        if (closed) return;
        closed = true;
        device.makeCurrent();
        for (Slot s : slots) {
            s.copied.synchronize();
            if (s.host != null) Driver.memFreeHost(s.host);
            s.copied.close();
            s.deviceFree.close();
        }
    }
}
