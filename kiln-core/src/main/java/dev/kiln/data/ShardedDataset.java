package dev.kiln.data;

/**
 * One rank's share of a dataset in a data-parallel job, arranged so the job as a whole sees what one process would:
 * each epoch the examples are shuffled by (seed, epoch) into a global order, cut into global batches of
 * {@code perRankBatch × world}, and rank r's batch k is slice r of global batch k. Load it without shuffling, with
 * batches of {@code perRankBatch}: then rank r's k-th batch plus the others' k-th batches is, in rank order, the k-th
 * batch a single process with the global batch would load ({@code DataLoader.builder(...).shuffle(seed)} orders differ:
 * compare with {@code ShardedDataset.of(dataset, 0, 1, globalBatch, seed)}). A last global batch that would not fill
 * every rank is dropped, so every rank takes the same number of steps.
 */
public final class ShardedDataset implements Dataset {
    private final Dataset dataset;
    private final int rank, world, perRankBatch;
    private final long seed;
    private final int[] slots; // this epoch's dataset index for each of this rank's positions

    private ShardedDataset(Dataset dataset, int rank, int world, int perRankBatch, long seed, int epoch) {
        this.dataset = dataset;
        this.rank = rank;
        this.world = world;
        this.perRankBatch = perRankBatch;
        this.seed = seed;
        int n = dataset.size(), global = perRankBatch * world, steps = n / global;
        int[] order = EpochShuffle.order(n, EpochShuffle.key(seed, epoch));   // the same on every rank
        slots = new int[steps * perRankBatch];
        for (int k = 0; k < steps; k++) {
            System.arraycopy(order, k * global + rank * perRankBatch, slots, k * perRankBatch, perRankBatch);
        }
    }

    /** Rank {@code rank} of {@code world}'s share, batches of {@code perRankBatch}, the global order drawn from {@code seed}. */
    public static ShardedDataset of(Dataset dataset, int rank, int world, int perRankBatch, long seed) {
        if (world < 1 || rank < 0 || rank >= world) throw new IllegalArgumentException("sharding: rank " + rank + " of a world of " + world);
        if (perRankBatch < 1) throw new IllegalArgumentException("sharding: the batch per rank must be >= 1, got " + perRankBatch);
        if (dataset.size() < perRankBatch * world) {
            throw new IllegalArgumentException("sharding: " + dataset.size() + " examples do not fill one global batch of " + perRankBatch
                    + " x " + world + " ranks");
        }
        return new ShardedDataset(dataset, rank, world, perRankBatch, seed, 0);
    }

    @Override public int size() { return slots.length; }

    /** The dataset this shares out. */
    public Dataset source() { return dataset; }

    /** The source's index of this rank's example at {@code position} (in this epoch's order). */
    public int sourceIndex(int position) { return slots[position]; }

    @Override public Batch batch(int[] indices) {
        int[] mapped = new int[indices.length];
        for (int i = 0; i < indices.length; i++) mapped[i] = slots[indices[i]];
        return dataset.batch(mapped);
    }

    /** Epoch {@code epoch}'s share: a new global order (the same on every rank), of the dataset as that epoch sees it. */
    @Override public Dataset forEpoch(int epoch) {
        return new ShardedDataset(dataset.forEpoch(epoch), rank, world, perRankBatch, seed, epoch);
    }
}
