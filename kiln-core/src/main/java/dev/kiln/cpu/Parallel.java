package dev.kiln.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;

/**
 * Splits index ranges over all cores. Small ranges run on the caller's thread, which costs nothing.
 *
 * <p>Parallel loops run on a team of THREADS - 1 workers plus the caller, as OpenMP runs MKL's and oneDNN's loops:
 * chunk i of a loop always goes to team member i, so a product split by columns finds its slice of the weights in the
 * cache of the core that used it the step before, and a worker that has just finished a loop spins a little before it
 * sleeps, so the next loop (an LSTM step has three) starts without a wake-up. A second thread that calls while the team
 * is busy (a data-loader worker beside training, concurrent predictors) gets the fork-join pool instead.
 */
public final class Parallel {
    private Parallel() {}

    /** The number of threads kernels split work over (kiln.cpu.threads, else one per processor). */
    public static final int THREADS = dev.kiln.Settings.get().cpuThreads() > 0 ? (int) dev.kiln.Settings.get().cpuThreads()
            : Runtime.getRuntime().availableProcessors();

    /**
     * How long an idle worker spins for the next loop before it parks (kiln.cpu.spin.us). Long enough to bridge the
     * serial code between one op's loop and the next one's; short enough to give an idle core back.
     */
    private static final long SPIN_NS = 1000L * dev.kiln.Settings.get().cpuSpinUs();

    /** Numbers the workers' names (a worker's pool index is not assigned until after the factory returns). */
    private static final AtomicInteger WORKERS = new AtomicInteger();

    /** For callers that find the team busy. */
    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS, pool -> {
        var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
        t.setDaemon(true);
        t.setName("kiln-cpu-" + WORKERS.getAndIncrement());
        return t;
    }, null, false);

    /** The team (none on one thread, or with kiln.cpu.team=false: every loop then goes to the fork-join pool). */
    private static final Team TEAM = THREADS > 1 && dev.kiln.Settings.get().cpuTeam() ? new Team(THREADS - 1) : null;

    /** Elements per task for one-pass loops over memory: below this a fork costs more than it saves. */
    static final int GRAIN = 1 << 15;

    /** The work of one slice [start, end) of a parallel loop. */
    @FunctionalInterface
    public interface Body {
        void run(int start, int end);
    }

    /** a[from .. to) = v, on all threads when it is long enough (one thread filled 17 MB in 2.4 ms of a 16-core step). */
    static void fill(float[] a, int from, int to, float v) {
        range(to - from, GRAIN, (lo, hi) -> java.util.Arrays.fill(a, from + lo, from + hi, v));
    }

    /**
     * Runs body over [0, n) in chunks of at least {@code grain} items, in parallel when there is more than one chunk.
     */
    public static void range(int n, int grain, Body body) {
        if (n <= 0) return;
        int chunks = Math.min(THREADS, Math.max(1, n / Math.max(grain, 1)));
        if (chunks <= 1 || inside()) {
            body.run(0, n);
            return;
        }
        run(n, chunks, false, body);
    }

    /** Chunks per thread in {@link #balanced}. */
    private static final int OVERSPLIT = 4;

    /**
     * Runs body over [0, n) in up to 4 chunks per thread, handed out as threads finish, so that a thread that runs
     * slower (a core shared with another process or a data-loader thread) takes fewer chunks instead of every thread
     * waiting for the slowest of equal shares. For tasks that each cost far more than a fork (a convolution's images).
     */
    public static void balanced(int n, Body body) {
        if (n <= 0) return;
        int chunks = Math.min(n, THREADS * OVERSPLIT);
        if (chunks <= 1 || THREADS == 1 || inside()) {
            body.run(0, n);
            return;
        }
        run(n, chunks, true, body);
    }

    /** Whether the calling thread is already running a chunk of a parallel loop (a nested loop then runs inline). */
    public static boolean inside() {
        Thread t = Thread.currentThread();
        return t instanceof Worker || (TEAM != null && TEAM.caller == t) || java.util.concurrent.ForkJoinTask.getPool() == POOL;
    }

    private static void run(int n, int chunks, boolean dynamic, Body body) {
        if (TEAM == null || !TEAM.run(n, chunks, dynamic, body)) POOL.invoke(new Split(0, chunks, n, chunks, body));
    }

    /** Start of chunk c of chunks over [0, n): the fork-join split and the team cut the same chunks. */
    private static int start(int n, int c, int chunks) { return (int) ((long) n * c / chunks); }

    /**
     * One parallel loop handed to the team. Chunk i is member i's (0 the caller), chunks past the members go, in order,
     * to whoever is free (dynamic loops). A member claims its chunk before it runs it, and a member with nothing left
     * runs the chunks whose owners have not claimed them yet: a worker that was asleep when the loop began (a
     * wake-up can take 100 us or more on a virtual machine) costs only the chunks it never started.
     */
    private static final class Job {
        final int n, chunks, members;
        final boolean dynamic;
        /** Cleared when the loop is done, so that idle workers do not keep what it captured (arrays) alive. */
        Body body;
        final AtomicIntegerArray claimed;
        final AtomicInteger next, pending;
        volatile Throwable failure;

        Job(int n, int chunks, int members, boolean dynamic, Body body) {
            this.n = n;
            this.chunks = chunks;
            this.members = members;
            this.dynamic = dynamic;
            this.body = body;
            claimed = new AtomicIntegerArray(members);
            next = new AtomicInteger(members);
            pending = new AtomicInteger(chunks);
        }

        /** Member's share: its own chunk, then (dynamic) chunks no one has taken, then the owned chunks left unclaimed. */
        void work(int member) {
            if (claimed.getAndSet(member, 1) == 0) chunk(member);
            if (dynamic) {
                for (int c; (c = next.getAndIncrement()) < chunks; ) chunk(c);
            }
            for (int c = members - 1; c > 0; c--) {
                if (claimed.get(c) == 0 && claimed.getAndSet(c, 1) == 0) chunk(c);
            }
        }

        private void chunk(int c) {
            try {
                body.run(start(n, c, chunks), start(n, c + 1, chunks));
            } catch (Throwable t) {
                if (failure == null) failure = t;
            } finally {
                pending.decrementAndGet();
            }
        }
    }

    private static final class Team {
        final Worker[] workers;
        final AtomicBoolean busy = new AtomicBoolean();
        /** The job the workers run; each call publishes a new one. */
        volatile Job job;
        /** The thread whose loop the team runs now (its nested loops run inline). */
        volatile Thread caller;

        Team(int size) {
            workers = new Worker[size];
            for (int i = 0; i < size; i++) {
                workers[i] = new Worker(this, i + 1);
                workers[i].start();
            }
        }

        /** Runs the loop on the team; false when the team is busy with another caller's loop. */
        boolean run(int n, int chunks, boolean dynamic, Body body) {
            if (!busy.compareAndSet(false, true)) return false;
            try {
                caller = Thread.currentThread();
                Job j = new Job(n, chunks, Math.min(chunks, workers.length + 1), dynamic, body);
                job = j;
                for (int i = 0; i < j.members - 1; i++) workers[i].wake();
                j.work(0);
                for (int spins = 0; j.pending.get() > 0; spins++) {
                    if (spins < 1 << 16) Thread.onSpinWait();
                    else Thread.yield();    // a worker that has lost its core: let it have this one
                }
                j.body = null;     // every chunk is claimed: no worker reads it again
                Throwable t = j.failure;
                if (t instanceof RuntimeException r) throw r;
                if (t instanceof Error e) throw e;
                if (t != null) throw new RuntimeException(t);
                return true;
            } finally {
                caller = null;
                busy.set(false);
            }
        }
    }

    /** A team member: runs its share of each job published, spinning a while between jobs before it parks. */
    private static final class Worker extends Thread {
        private final Team team;
        private final int member;
        private volatile boolean parked;

        Worker(Team team, int member) {
            super("kiln-cpu-" + WORKERS.getAndIncrement());
            this.team = team;
            this.member = member;
            setDaemon(true);
        }

        void wake() {
            if (parked) LockSupport.unpark(this);
        }

        @Override public void run() {
            Job seen = null;
            while (true) {
                Job j = team.job;
                if (j == seen) {
                    long since = System.nanoTime();
                    while ((j = team.job) == seen && System.nanoTime() - since < SPIN_NS) {
                        for (int i = 0; i < 64; i++) Thread.onSpinWait();
                    }
                    if (j == seen) {
                        parked = true;      // the caller reads it after publishing: either it unparks or we see the job
                        if (team.job == seen) LockSupport.park(this);
                        parked = false;
                        continue;
                    }
                }
                seen = j;
                if (member < j.members) j.work(member);
            }
        }
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
                body.run(start(n, lo, chunks), start(n, lo + 1, chunks));
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Split(lo, mid, n, chunks, body), new Split(mid, hi, n, chunks, body));
        }
    }
}
