package dev.kiln.dist;

import dev.kiln.Tensor;

/**
 * The collectives the ranks of a job run together, as PyTorch's process group: every rank calls the same operations in
 * the same order. NCCL's group (one GPU per rank) is the one for training; {@link #single()} is a job of one.
 */
public interface ProcessGroup extends AutoCloseable {
    int rank();

    int world();

    /** Replaces t on every rank with the sum over the ranks of t, in place. */
    void allReduceSum(Tensor t);

    /**
     * Replaces t on every rank with the mean over the ranks of t, in place, possibly in the background: t may be
     * read, written or freed only after {@link #awaitReductions()}. NCCL's group runs it on a communication stream
     * beside the device's compute; this default is synchronous.
     */
    default void allReduceMeanAsync(Tensor t) {
        allReduceSum(t);
        Tensor.noGrad(() -> t.copyFrom(t.div(world())));
    }

    /** Makes the work queued after this call (on the reduced tensors' devices) see every {@link #allReduceMeanAsync} result. */
    default void awaitReductions() {}

    /**
     * Notes that this rank has moved on without calling a collective itself (a replayed CUDA graph runs its collectives
     * on the device): the group's hang detection counts it as progress.
     */
    default void markProgress() {}

    /** Replaces t on every rank with rank {@code root}'s t, in place. */
    void broadcast(Tensor t, int root);

    @Override default void close() {}

    /** The job of one process: every collective leaves its tensor as it is. */
    static ProcessGroup single() {
        return new ProcessGroup() {
            @Override public int rank() { return 0; }

            @Override public int world() { return 1; }

            @Override public void allReduceSum(Tensor t) {}

            @Override public void broadcast(Tensor t, int root) {
                if (root != 0) throw new IllegalArgumentException("broadcast from rank " + root + " in a job of one");
            }
        };
    }
}
