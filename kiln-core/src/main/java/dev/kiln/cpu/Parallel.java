package dev.kiln.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/** Splits index ranges over all cores. Small ranges run on the caller's thread, which costs nothing. */
public final class Parallel {
    private Parallel() {}

    /** The number of threads kernels split work over (system property kiln.cpu.threads overrides). */
    public static final int THREADS = Integer.getInteger("kiln.cpu.threads", Runtime.getRuntime().availableProcessors());

    /** Numbers the workers' names (a worker's pool index is not assigned until after the factory returns). */
    private static final java.util.concurrent.atomic.AtomicInteger WORKERS = new java.util.concurrent.atomic.AtomicInteger();

    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS, pool -> {
        var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
        t.setDaemon(true);
        t.setName("kiln-cpu-" + WORKERS.getAndIncrement());
        return t;
    }, null, false);

    /** Elements per task for one-pass loops over memory: below this a fork costs more than it saves. */
    static final int GRAIN = 1 << 15;

    /** The work of one slice [start, end) of a parallel loop. */
    @FunctionalInterface
    public interface Body {
        void run(int start, int end);
    }

    /**
     * Runs body over [0, n) in chunks of at least {@code grain} items, in parallel when there is more than one chunk.
     */
    public static void range(int n, int grain, Body body) {
        if (n <= 0) return;
        int chunks = Math.min(THREADS, Math.max(1, n / Math.max(grain, 1)));
        if (chunks <= 1 || java.util.concurrent.ForkJoinTask.getPool() == POOL) {
            body.run(0, n);
            return;
        }
        POOL.invoke(new Split(0, chunks, n, chunks, body));
    }

    /** Chunks per thread in {@link #balanced}. */
    private static final int OVERSPLIT = 4;

    /**
     * Runs body over [0, n) in up to 4 chunks per thread, so that work stealing evens out threads that run slower
     * (a core shared with another process or a data-loader thread) instead of every thread waiting for the slowest
     * of equal shares. For tasks that each cost far more than a fork (a convolution's images).
     */
    public static void balanced(int n, Body body) {
        if (n <= 0) return;
        int chunks = Math.min(n, THREADS * OVERSPLIT);
        if (chunks <= 1 || THREADS == 1 || java.util.concurrent.ForkJoinTask.getPool() == POOL) {
            body.run(0, n);
            return;
        }
        POOL.invoke(new Split(0, chunks, n, chunks, body));
    }

    private static final class Split extends RecursiveAction {
        private final int lo, hi, n, chunks;
        private final Body body;

        Split(int lo, int hi, int n, int chunks, Body body) {
            this.lo = lo;
            this.hi = hi;
            this.n = n;
            this.chunks = chunks;
            this.body = body;
        }

        @Override protected void compute() {
            if (hi - lo == 1) {
                body.run((int) ((long) n * lo / chunks), (int) ((long) n * (lo + 1) / chunks));
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Split(lo, mid, n, chunks, body), new Split(mid, hi, n, chunks, body));
        }
    }
}
