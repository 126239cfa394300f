package dev.kiln.dist;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.cuda.Nccl;
import dev.kiln.profile.Profiler;

import java.io.IOException;
import java.time.Duration;

/**
 * The GPU process group: one NCCL communicator per rank, its id handed out by the rendezvous, collectives queued on the
 * device's stream. The rendezvous stays open as the job's liveness channel: when another rank's process dies this
 * rank aborts its communicator (pending collectives end with an error instead of waiting forever), says which rank
 * failed, and, unless the group is closed first, exits the process with status 1 after {@code exitAfter}, so no rank
 * of a broken job is left behind. A rank that hangs without dying is found the same way: every rank reports how many
 * collectives it has queued, and when none has moved for {@code kiln.dist.timeout.s} rank 0 names the one furthest behind.
 */
public final class NcclProcessGroup implements ProcessGroup {
    private static final System.Logger LOG = dev.kiln.Logging.logger(NcclProcessGroup.class);
    private final Rendezvous.Session session;
    private final Nccl.Communicator comm;
    private final java.util.concurrent.atomic.AtomicLong progress = new java.util.concurrent.atomic.AtomicLong(); // collectives queued
    private volatile int failedRank = NONE;
    private static final int NONE = -2; // failedRank before any failure (-1: the job stalled with every rank at the same point)
    private volatile boolean closed;

    private NcclProcessGroup(Rendezvous.Session session, Nccl.Communicator comm) {
        this.session = session;
        this.comm = comm;
    }

    /** This process's group on {@code device}: rank 0 makes NCCL's id and hosts the rendezvous, the others join. */
    public static NcclProcessGroup connect(JobEnvironment job, Device device, Duration timeout, Duration exitAfter) throws IOException {
        if (!device.isCuda()) throw new IllegalArgumentException("an NCCL process group needs a CUDA device, got " + device);
        Rendezvous.Session s = job.rank() == 0
                ? Rendezvous.host(job.master(), job.token(), job.worldSize(), Nccl.uniqueId(), timeout, m -> LOG.log(System.Logger.Level.WARNING, m))
                : Rendezvous.join(job.master(), job.token(), job.rank(), job.worldSize(), timeout);
        NcclProcessGroup g = new NcclProcessGroup(s, Nccl.communicator(device, job.worldSize(), job.rank(), s.payload()));
        s.watch(r -> g.peerFailed(r, exitAfter), g.progress::get, Duration.ofSeconds(dev.kiln.Settings.get().distTimeoutS()));
        return g;
    }

    private void peerFailed(int rank, Duration exitAfter) {
        if (closed) return;
        failedRank = rank;
        String who = rank == -1 ? "no rank made progress for " + dev.kiln.Settings.get().distTimeoutS() + " s (kiln.dist.timeout.s)"
                : "rank " + rank + " failed (its process ended, or it made no progress for " + dev.kiln.Settings.get().distTimeoutS() + " s)";
        LOG.log(System.Logger.Level.ERROR, "rank " + session.rank() + ": " + who + "; aborting NCCL and exiting within " + exitAfter.toSeconds() + " s");
        try {
            comm.abort();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "ncclCommAbort: " + e.getMessage());
        }
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(exitAfter.toMillis());
            } catch (InterruptedException ignored) {
                // exit now
            }
            if (!closed) Runtime.getRuntime().halt(1);
        }, "kiln-nccl-exit");
        t.setDaemon(true);
        t.start();
    }

    /** Before each collective: counts it as this rank's progress (hang detection) and refuses once a peer failed. */
    private void beginCollective() {
        progress.incrementAndGet();
        if (failedRank != NONE) throw new IllegalStateException("rank " + failedRank + " of the job failed; this rank's NCCL communicator was aborted");
    }

    @Override public int rank() { return session.rank(); }

    @Override public int world() { return session.world(); }

    @Override public void allReduceSum(Tensor t) {
        beginCollective();
        comm.allReduceSum(t);
    }

    @Override public void markProgress() { progress.incrementAndGet(); }

    @Override public void allReduceMeanAsync(Tensor t) {
        beginCollective();
        java.lang.foreign.MemorySegment stream = comm.forkOverlapped();
        try (Profiler.Scope span = Profiler.commSpan(comm.device(), stream, "all_reduce.AVG " + t.dtype().name().toLowerCase(java.util.Locale.ROOT),
                t.numel() * t.dtype().byteSize())) {
            comm.allReduceAverage(t, stream);
        }
    }

    @Override public void awaitReductions() {
        beginCollective();
        comm.joinOverlapped();
    }

    @Override public void broadcast(Tensor t, int root) {
        beginCollective();
        comm.broadcast(t, root);
    }

    /** The communicator, for the other collectives (all-gather, reduce-scatter, groups). */
    public Nccl.Communicator communicator() { return comm; }

    @Override public void close() {
        closed = true;
        comm.close();
        session.close();
    }
}
