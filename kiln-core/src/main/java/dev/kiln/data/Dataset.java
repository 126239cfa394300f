package dev.kiln.data;

/**
 * Examples addressed by index. A dataset hands out whole batches, because gathering N rows at once is one pass
 * over memory where N single examples would be N small tensors to stack.
 */
public interface Dataset {
    int size();

    /** The examples at these indices, in this order, as one CPU batch. */
    Batch batch(int[] indices);

    /**
     * The dataset as epoch {@code epoch} (from 0) sees it, which the {@link DataLoader} asks for at the start of each
     * epoch. Most datasets are the same every epoch; one whose examples change per epoch returns a view of the same
     * size (text cut into chunks at a new offset: {@link TokenChunks}).
     */
    default Dataset forEpoch(int epoch) { return this; }
}
