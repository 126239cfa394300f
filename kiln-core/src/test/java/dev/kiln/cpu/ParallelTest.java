package dev.kiln.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ParallelTest {
    /** Every worker has a name of its own, so a thread dump or a profile tells them apart. */
    @Test void workersHaveDistinctNames() {
        assumeTrue(Parallel.THREADS > 1, "one thread: no pool workers to tell apart");
        Set<String> names = ConcurrentHashMap.newKeySet();
        // the barrier holds every chunk until all have started, so each runs on a worker of its own
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
        names.forEach(n -> assertEquals(true, n.startsWith("kiln-cpu-"), n));
    }
}
