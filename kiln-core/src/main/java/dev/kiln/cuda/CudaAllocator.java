package dev.kiln.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The caching allocator of one device, after PyTorch's: requests are rounded to a size class (512 bytes for
 * small blocks up to 1 MiB, 2 MiB multiples above) and freed blocks go back to a pool of their class, so a loop
 * that asks for the same sizes every step stops calling cuMemAlloc after its first steps. When cuMemAlloc runs
 * out of memory, the cached free blocks are handed back to the driver and the allocation is tried once more.
 *
 * <p>All work of a device runs on its one stream (see {@link CudaDevice}), so a block freed while kernels that
 * use it are still queued can be handed out again at once: the next user's kernels run after them.
 *
 * <p>CUDA graphs ({@link CudaGraph}): while a capture is open, the capturing thread's requests are served from
 * the cache only (cuMemAlloc is not allowed inside a capture; a request the cache cannot serve fails the capture
 * with {@link CaptureNeedsMemory}: run the step eagerly first so the pool holds its sizes). Every block handed out
 * during the capture, and every block the capturing thread frees during it, then belongs to the graph's
 * {@link GraphPool}: replays write those addresses, so they must never go to another tensor while the graph lives.
 * Freed, such a block goes to the graph's private free list (reused by later requests of the same capture), not
 * to the shared pool; {@link #releaseGraph} gives them all back when the graph is closed.
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

    /** Where fresh device memory comes from: cuMemAlloc / cuMemFree on the device, or a fake in CPU tests. */
    interface Backing {
        /** cuMemAlloc of {@code size} bytes; the address, or throws (out of memory after emptying the cache included). */
        long malloc(CudaAllocator allocator, long size, long requested);

        void free(long address);

        /** Waits for the device before memory goes back to the driver. */
        void synchronize();
    }

    /** A capture needed memory the pool had not cached (cuMemAlloc is not allowed inside a capture). */
    public static final class CaptureNeedsMemory extends IllegalStateException {
        private final long bytes;

        CaptureNeedsMemory(long bytes, String message) {
            super(message);
            this.bytes = bytes;
        }

        /** The (rounded) size of the request the pool could not serve: {@link #reserve} it and capture again. */
        public long bytes() { return bytes; }
    }

    /**
     * The blocks one captured graph owns: their addresses, and those of them no tensor holds (the private free
     * list). Guarded by the allocator's lock.
     */
    public static final class GraphPool {
        private final Thread capturingThread;
        private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
        private final Set<Long> owned = new java.util.HashSet<>();
        private long ownedBytes, freeBytes;
        private boolean capturing = true, released;

        private GraphPool(Thread capturingThread) { this.capturingThread = capturingThread; }
    }

    private final CudaDevice device;
    private final Backing backing;
    private final Map<Long, ArrayDeque<Block>> free = new HashMap<>();
    /** The graph that owns each graph-owned block (by address); absent: the block is the shared pool's. */
    private final Map<Long, GraphPool> graphOf = new HashMap<>();
    private GraphPool capture; // the graph being captured on this device, or null
    private long peakAllocated; // the high-water mark of allocated since the last resetPeak()
    private long limit;         // the most bytes this allocator may reserve from the driver; 0: no limit of Kiln's
    private long allocated, reserved, cached, allocCalls, freeCalls, cacheHits, live;

    /** What the calling thread's requests are for (an op's name), while a {@link #traceSites trace} runs. */
    private static final ThreadLocal<String> SITE = new ThreadLocal<>();
    private Map<Long, Site> siteOf;          // the live blocks handed out since the trace began; null: no trace
    private final Map<String, Long> liveBySite = new HashMap<>();   // their bytes per name, kept as they come and go
    private long tracePeak;                  // the trace's own high-water mark (resetPeak leaves it alone)
    private Map<String, Long> sitesAtPeak = Map.of();

    private record Site(String name, long size) {}

    CudaAllocator(CudaDevice device) {
        this.device = device;
        this.limit = dev.kiln.Settings.get().cudaMemoryLimitMb() << 20;
        this.backing = new Backing() {
            @Override public long malloc(CudaAllocator allocator, long size, long requested) { return allocator.cudaMalloc(size, requested); }

            @Override public void free(long address) {
                device.makeCurrent();
                Driver.memFree(address);
            }

            @Override public void synchronize() { device.synchronize(); }
        };
    }

    /** An allocator over a fake backing, for tests of the bookkeeping on machines without a GPU. */
    CudaAllocator(Backing backing) {
        this.device = null;
        this.backing = backing;
    }

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
        GraphPool g = capturingHere();
        Block b = null;
        if (g != null) {
            // the graph's own freed blocks first: they are already reserved for it
            ArrayDeque<Block> own = g.free.get(size);
            b = own == null ? null : own.poll();
            if (b != null) g.freeBytes -= size;
        }
        if (b == null) {
            ArrayDeque<Block> pool = free.get(size);
            b = pool == null ? null : pool.poll();
            if (b != null) {
                cacheHits++;
                cached -= size;
                if (g != null) own(g, b);
            } else if (g != null) {
                throw new CaptureNeedsMemory(size, String.format("CUDA graph capture needs %,d bytes (%s) the pool has not cached; "
                        + "run the step eagerly first (GraphedStep warms up for you), so the caching allocator holds every size "
                        + "the step asks for. Allocator: %s", size, human(size), stats()));
            } else {
                b = fresh(size, bytes);
            }
        }
        return handOut(b);
    }

    /**
     * Caps what this allocator reserves from the driver ({@code kiln.cuda.memory.limit.mb} sets it at start-up): past
     * it a request first empties the cache, then fails as the device running out would. 0 removes the cap.
     */
    public synchronized void setMemoryLimit(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("memory limit must be >= 0 bytes, got " + bytes);
        this.limit = bytes;
    }

    /** A new block from the driver (cuMemAlloc), counted as reserved. */
    private Block fresh(long size, long bytes) {
        if (limit > 0 && reserved + size > limit) {
            emptyCache();
            if (reserved + size > limit) {
                throw new CudaException.OutOfMemory(String.format("%s out of memory: tried to allocate %,d bytes (%s) beyond Kiln's limit of %,d bytes "
                        + "(kiln.cuda.memory.limit.mb); Kiln's allocator: %s. %s", where(), bytes, human(bytes), limit, stats(), OOM_HINT));
            }
        }
        Block b = new Block(backing.malloc(this, size, bytes), size);
        allocCalls++;
        reserved += size;
        return b;
    }

    private Block handOut(Block b) {
        allocated += b.size();
        peakAllocated = Math.max(peakAllocated, allocated);
        live++;
        if (siteOf != null) {
            String site = SITE.get() == null ? "(outside any op)" : SITE.get();
            siteOf.put(b.address(), new Site(site, b.size()));
            liveBySite.merge(site, b.size(), Long::sum);
            if (allocated > tracePeak) snapshotSites();
        }
        return b;
    }

    // ------------------------------------------------------------------ what the memory is for

    /**
     * Names what the calling thread allocates from now on (null: nothing), for {@link #traceSites}; returns the name it
     * replaces, to put back. The profiler names each backend call so.
     */
    public static String nameAllocations(String site) {
        String previous = SITE.get();
        SITE.set(site);
        return previous;
    }

    /**
     * Starts (or stops) keeping, per live block, the name its request was made under, and the bytes each name held
     * at the highest point of allocated memory since the start: PyTorch's memory snapshot in miniature, to see what
     * a step's peak is made of. Costs a map update per request and a pass over the live blocks at each new peak.
     */
    public synchronized void traceSites(boolean on) {
        siteOf = on ? new HashMap<>() : null;
        liveBySite.clear();
        tracePeak = 0;
        if (on) snapshotSites();
    }

    /** Bytes (rounded sizes) per name at the trace's peak, largest first; blocks from before the trace under one name. */
    public synchronized Map<String, Long> sitesAtPeak() { return sitesAtPeak; }

    private void snapshotSites() {
        tracePeak = allocated;
        // a copy of the running totals (a few dozen names), not a pass over the live blocks: a new peak comes with most
        // requests while memory grows, and this runs under the allocator's lock
        Map<String, Long> by = new HashMap<>();
        long named = 0;
        for (var e : liveBySite.entrySet()) {
            if (e.getValue() == 0) continue;
            by.put(e.getKey(), e.getValue());
            named += e.getValue();
        }
        if (allocated > named) by.put("(held before the trace began)", allocated - named);
        Map<String, Long> sorted = new java.util.LinkedHashMap<>();
        by.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).forEach(e -> sorted.put(e.getKey(), e.getValue()));
        sitesAtPeak = java.util.Collections.unmodifiableMap(sorted);
    }

    /**
     * A block from cuMemAlloc, not from the cache: for memory a graph needs beside its step (its replay counter),
     * which must not take one of the cached blocks the capture will ask for. Freed, it joins the pool as usual.
     */
    public synchronized Block allocateUncached(long bytes) {
        if (capturingHere() != null) throw new IllegalStateException("allocateUncached inside a CUDA graph capture");
        return handOut(fresh(roundSize(Math.max(bytes, 1)), bytes));
    }

    /** Adds one block of {@code bytes} (rounded) to the pool with cuMemAlloc: grows it for a capture that needed more. */
    public void reserve(long bytes) { free(allocateUncached(bytes)); }

    /** Returns a block to its pool (no driver call). */
    public synchronized void free(Block b) {
        if (b.size() == 0) return;
        allocated -= b.size();
        live--;
        if (siteOf != null) {
            Site site = siteOf.remove(b.address());
            if (site != null) liveBySite.merge(site.name(), -site.size(), Long::sum);
        }
        GraphPool g = graphOf.get(b.address());
        if (g == null && capture != null && capture.capturingThread == Thread.currentThread()) {
            // freed inside the capture: kernels captured before this free still use it on every replay
            g = capture;
            own(g, b);
        }
        if (g != null) {
            g.freeBytes += b.size();
            g.free.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b);
            return;
        }
        cached += b.size();
        free.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b);
    }

    // ------------------------------------------------------------------ graph capture

    private void own(GraphPool g, Block b) {
        graphOf.put(b.address(), g);
        g.owned.add(b.address());
        g.ownedBytes += b.size();
    }

    /** The pool of the capture open on the calling thread, or null. */
    private GraphPool capturingHere() {
        GraphPool g = capture;
        return g != null && g.capturingThread == Thread.currentThread() ? g : null;
    }

    /** Starts a graph's pool: the calling thread's requests and frees belong to it until {@link #endCapture}. */
    public synchronized GraphPool beginCapture() {
        if (capture != null) throw new IllegalStateException("a CUDA graph is already being captured on this device (by " + capture.capturingThread.getName() + ")");
        capture = new GraphPool(Thread.currentThread());
        return capture;
    }

    /** Ends the capture; the graph keeps its blocks until {@link #releaseGraph}. */
    public synchronized void endCapture(GraphPool g) {
        if (capture == g) capture = null;
        g.capturing = false;
    }

    /**
     * Gives a closed graph's blocks back: the free ones to the shared pool, and the ones tensors still hold (a
     * graph's static outputs) become ordinary blocks that go to the pool when those tensors are freed.
     */
    public synchronized void releaseGraph(GraphPool g) {
        endCapture(g);
        if (g.released) return;
        g.released = true;
        for (ArrayDeque<Block> blocks : g.free.values()) {
            for (Block b : blocks) {
                cached += b.size();
                free.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b);
            }
            blocks.clear();
        }
        for (long address : g.owned) graphOf.remove(address);
        g.owned.clear();
        g.ownedBytes = g.freeBytes = 0;
    }

    /** Bytes the graph owns (held by tensors or on its private free list). */
    public synchronized long graphOwnedBytes(GraphPool g) { return g.ownedBytes; }

    /** Bytes on the graph's private free list. */
    public synchronized long graphFreeBytes(GraphPool g) { return g.freeBytes; }

    /** Whether a capture is open on this device (on any thread). */
    public synchronized boolean capturing() { return capture != null; }

    // ------------------------------------------------------------------ cache

    /** Hands every cached free block back to the driver (waits for the device first). */
    public synchronized void emptyCache() {
        if (cached == 0) return;
        if (capture != null) return; // a capture forbids synchronising; the cache stays until it ends
        backing.synchronize();
        for (ArrayDeque<Block> pool : free.values()) {
            for (Block b : pool) {
                backing.free(b.address());
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

    long cudaMalloc(long size, long requested) {
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
                        "cuda:%d out of memory: tried to allocate %,d bytes (%s); the device has %,d bytes free of %,d; Kiln's allocator: %s. %s",
                        device.index(), requested, human(requested), info[0], info[1], stats(), OOM_HINT));
            }
            Driver.check(r, "cuMemAlloc(" + size + " bytes)");
            return p.get(JAVA_LONG, 0);
        }
    }

    /** What a user can do about running out, appended to both out-of-memory messages. */
    static final String OOM_HINT = "Try a smaller batch (--batch-size), bf16 (--precision bf16), or gradient checkpointing (nn.Checkpoint); "
            + "memory another process holds on the GPU counts too (nvidia-smi)";

    private String where() { return device == null ? "the device" : "cuda:" + device.index(); }

    static String human(long bytes) {
        if (bytes >= 1L << 30) return String.format("%.2f GiB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format("%.2f MiB", bytes / (double) (1L << 20));
        if (bytes >= 1L << 10) return String.format("%.2f KiB", bytes / 1024.0);
        return bytes + " B";
    }
}
