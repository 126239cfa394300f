package dev.kiln.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelTest {
    /** Every chunk runs on a thread of its own, the workers named so a thread dump or a profile tells them apart. */
    @Test void workersHaveDistinctNames() {
        assumeTrue(Parallel.THREADS > 1, "one thread: no workers to tell apart");
        Set<String> names = ConcurrentHashMap.newKeySet();
        String caller = Thread.currentThread().getName();
        // the barrier holds every chunk until all have started, so each runs on a thread of its own
        CyclicBarrier together = new CyclicBarrier(Parallel.THREADS);
        Parallel.range(Parallel.THREADS, 1, (lo, hi) -> {
            names.add(Thread.currentThread().getName());
            try {
                together.await(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError("chunks did not run at once", e);
            }
        });
        assertEquals(Parallel.THREADS, names.size(), "names " + names);
        names.forEach(n -> assertTrue(n.equals(caller) || n.startsWith("kiln-cpu-"), n));
    }

    /** Both loops cover [0, n) exactly once, in the chunks the range's formula gives, whatever thread runs which. */
    @Test void everyIndexOnceInTheSameChunks() {
        for (int n : new int[]{1, 7, 64, 1000, 100_003}) {
            AtomicIntegerArray hits = new AtomicIntegerArray(n);
            List<int[]> chunks = java.util.Collections.synchronizedList(new ArrayList<>());
            Parallel.range(n, 1, (lo, hi) -> {
                chunks.add(new int[]{lo, hi});
                for (int i = lo; i < hi; i++) hits.incrementAndGet(i);
            });
            Parallel.balanced(n, (lo, hi) -> {
                for (int i = lo; i < hi; i++) hits.incrementAndGet(i);
            });
            for (int i = 0; i < n; i++) assertEquals(2, hits.get(i), "index " + i + " of " + n);
            int parts = Math.min(Parallel.THREADS, n);
            assertEquals(parts, chunks.size(), "chunks of " + n);
            for (int[] c : chunks) {
                boolean found = false;
                for (int p = 0; p < parts; p++) found |= c[0] == (int) ((long) n * p / parts) && c[1] == (int) ((long) n * (p + 1) / parts);
                assertTrue(found, "chunk [" + c[0] + ", " + c[1] + ") of " + n);
            }
        }
    }

    /** A chunk's exception reaches the caller as itself, and the team runs the next loop. */
    @Test void failureReachesTheCaller() {
        IllegalStateException boom = new IllegalStateException("chunk 1 failed");
        var thrown = assertThrows(IllegalStateException.class, () -> Parallel.range(Math.max(2, Parallel.THREADS), 1, (lo, hi) -> {
            if (lo <= 1 && 1 < hi) throw boom;
        }));
        assertSame(boom, thrown);
        AtomicIntegerArray hits = new AtomicIntegerArray(100);
        Parallel.balanced(100, (lo, hi) -> { for (int i = lo; i < hi; i++) hits.incrementAndGet(i); });
        for (int i = 0; i < 100; i++) assertEquals(1, hits.get(i));
    }

    /** A loop inside a chunk runs on that chunk's thread; loops from several threads at once all complete. */
    @Test void nestedAndConcurrentLoops() throws Exception {
        int n = 64;
        long[] sums = new long[n];
        Parallel.range(n, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                Thread outer = Thread.currentThread();
                int row = i;
                Parallel.range(1000, 1, (a, b) -> {
                    assertSame(outer, Thread.currentThread(), "a nested loop left its chunk's thread");
                    for (int j = a; j < b; j++) sums[row] += j;
                });
            }
        });
        for (long s : sums) assertEquals(499_500, s);
        Thread[] callers = new Thread[4];
        long[] totals = new long[callers.length];
        for (int t = 0; t < callers.length; t++) {
            int me = t;
            callers[t] = new Thread(() -> {
                for (int r = 0; r < 200; r++) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(5000);
                    Parallel.range(5000, 1, (lo, hi) -> { for (int i = lo; i < hi; i++) hits.incrementAndGet(i); });
                    for (int i = 0; i < 5000; i++) totals[me] += hits.get(i);
                }
            });
            callers[t].start();
        }
        for (Thread t : callers) t.join(60_000);
        for (long total : totals) assertEquals(200L * 5000, total);
    }
}
