package dev.kiln.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The caching allocator's CUDA-graph bookkeeping over a fake backing (no GPU): what a capture may take, where blocks
 * freed during and after it go, and what closing the graph gives back.
 */
class CaptureAllocatorTest {
    /** Hands out fake addresses and counts the calls. */
    static final class FakeBacking implements CudaAllocator.Backing {
        long next = 1L << 32;
        int mallocs, frees;

        @Override public long malloc(CudaAllocator allocator, long size, long requested) {
            mallocs++;
            long a = next;
            next += size;
            return a;
        }

        @Override public void free(long address) { frees++; }

        @Override public void synchronize() {}
    }

    private final FakeBacking backing = new FakeBacking();
    private final CudaAllocator alloc = new CudaAllocator(backing);

    @Test void captureServesFromThePoolAndRefusesFreshMemory() {
        CudaAllocator.Block a = alloc.allocate(1000);
        alloc.free(a);
        CudaAllocator.GraphPool g = alloc.beginCapture();
        CudaAllocator.Block b = alloc.allocate(1000);
        assertEquals(a.address(), b.address(), "the cached block");
        var e = assertThrows(CudaAllocator.CaptureNeedsMemory.class, () -> alloc.allocate(5000));
        assertTrue(e.getMessage().contains("the pool has not cached; run the step eagerly first"), e.getMessage());
        assertEquals(1, backing.mallocs, "no cuMemAlloc inside the capture");
        alloc.releaseGraph(g);
    }

    @Test void blocksFreedInsideTheCaptureStayTheGraphsUntilItCloses() {
        CudaAllocator.Block pre = alloc.allocate(2048);   // made before the capture, freed inside it
        CudaAllocator.Block spare = alloc.allocate(2048);
        alloc.free(spare);
        CudaAllocator.GraphPool g = alloc.beginCapture();
        alloc.free(pre);
        CudaAllocator.Block reused = alloc.allocate(2048);
        assertEquals(pre.address(), reused.address(), "the graph's own freed block comes first");
        CudaAllocator.Block out = alloc.allocate(2048);   // the spare, from the shared pool: a static output
        assertEquals(spare.address(), out.address());
        alloc.free(reused);
        alloc.endCapture(g);

        assertEquals(2 * 2048, alloc.graphOwnedBytes(g));
        assertEquals(2048, alloc.graphFreeBytes(g));
        // eager work after the capture must not get the graph's blocks: they are written by every replay
        CudaAllocator.Block eager = alloc.allocate(2048);
        assertNotEquals(pre.address(), eager.address());
        assertNotEquals(spare.address(), eager.address());
        // the static output freed after the capture goes back to the graph, not to the pool
        alloc.free(out);
        assertEquals(2 * 2048, alloc.graphFreeBytes(g));
        assertEquals(0, alloc.stats().cachedBytes());

        alloc.releaseGraph(g);
        assertEquals(0, alloc.graphOwnedBytes(g));
        assertEquals(2 * 2048, alloc.stats().cachedBytes(), "closing the graph returns its blocks to the pool");
        Set<Long> back = new HashSet<>(List.of(alloc.allocate(2048).address(), alloc.allocate(2048).address()));
        assertEquals(Set.of(pre.address(), spare.address()), back);
    }

    @Test void aBlockStillHeldWhenTheGraphClosesBecomesOrdinary() {
        CudaAllocator.Block a = alloc.allocate(512);
        alloc.free(a);
        CudaAllocator.GraphPool g = alloc.beginCapture();
        CudaAllocator.Block held = alloc.allocate(512);
        alloc.endCapture(g);
        alloc.releaseGraph(g);
        alloc.free(held);
        assertEquals(512, alloc.stats().cachedBytes(), "freed after the graph closed: to the shared pool");
    }

    @Test void otherThreadsAreNotPartOfTheCapture() throws Exception {
        CudaAllocator.GraphPool g = alloc.beginCapture();
        List<CudaAllocator.Block> got = new ArrayList<>();
        Thread t = new Thread(() -> {
            CudaAllocator.Block b = alloc.allocate(4096);  // may grow the pool: this thread does not capture
            got.add(b);
            alloc.free(b);
        });
        t.start();
        t.join();
        assertEquals(1, got.size());
        assertEquals(1, backing.mallocs);
        assertEquals(0, alloc.graphOwnedBytes(g));
        assertEquals(4096, alloc.stats().cachedBytes());
        assertThrows(IllegalStateException.class, alloc::beginCapture, "one capture at a time");
        alloc.releaseGraph(g);
    }

    @Test void emptyCacheKeepsTheGraphsBlocks() {
        CudaAllocator.Block a = alloc.allocate(512), b = alloc.allocate(512);
        alloc.free(a);
        alloc.free(b);
        CudaAllocator.GraphPool g = alloc.beginCapture();
        alloc.free(alloc.allocate(512));
        alloc.endCapture(g);
        alloc.emptyCache();
        assertEquals(1, backing.frees, "only the shared pool's block goes back to the driver");
        assertEquals(512, alloc.graphOwnedBytes(g));
        alloc.releaseGraph(g);
    }

    @Test void aMemoryLimitEmptiesTheCacheThenFailsWithSizesAndAdvice() {
        alloc.setMemoryLimit(8L << 20);
        CudaAllocator.Block a = alloc.allocate(4L << 20), b = alloc.allocate(2L << 20);
        alloc.free(b);                                          // 2 MiB cached: 6 MiB reserved
        CudaAllocator.Block c = alloc.allocate(4L << 20);        // over the limit with the cache: emptied, then fits
        assertEquals(1, backing.frees, "the cached block went back to the driver before the new one");
        var e = assertThrows(CudaException.OutOfMemory.class, () -> alloc.allocate(1L << 20));
        assertTrue(e.getMessage().contains("tried to allocate 1,048,576 bytes (1.00 MiB)"), e.getMessage());
        assertTrue(e.getMessage().contains("limit of 8,388,608 bytes") && e.getMessage().contains("--batch-size"), e.getMessage());
        alloc.free(a);
        alloc.free(c);
        alloc.setMemoryLimit(0);
        alloc.free(alloc.allocate(64L << 20));                   // no limit: served
    }

    @Test void aTraceNamesWhatTheMemoryWasForAtItsPeak() {
        CudaAllocator.Block before = alloc.allocate(4096);           // held before the trace: one entry of its own
        alloc.traceSites(true);
        String outer = CudaAllocator.nameAllocations("linear");
        CudaAllocator.Block a = alloc.allocate(1024), b = alloc.allocate(1024);
        CudaAllocator.nameAllocations("gelu (linear backward)");
        CudaAllocator.Block c = alloc.allocate(2048);
        alloc.free(a);                                                // after the peak: the snapshot stays
        CudaAllocator.Block d = alloc.allocate(512);
        CudaAllocator.nameAllocations(outer);
        var peak = alloc.sitesAtPeak();
        assertEquals(2048L, peak.get("linear"));
        assertEquals(2048L, peak.get("gelu (linear backward)"));
        assertEquals(4096L, peak.get("(held before the trace began)"));
        assertEquals("(held before the trace began)", peak.keySet().iterator().next(), "largest first");
        // freed blocks leave the totals: a later, higher peak is made of what is live then
        alloc.free(b);
        alloc.free(c);
        CudaAllocator.nameAllocations("attention");
        CudaAllocator.Block e = alloc.allocate(8192);
        CudaAllocator.nameAllocations(outer);
        peak = alloc.sitesAtPeak();
        assertEquals(java.util.Map.of("attention", 8192L, "(held before the trace began)", 4096L, "gelu (linear backward)", 512L), peak);
        alloc.traceSites(false);
        for (CudaAllocator.Block x : new CudaAllocator.Block[]{before, d, e}) alloc.free(x);
        assertEquals(0, alloc.stats().allocatedBytes());
    }
}
