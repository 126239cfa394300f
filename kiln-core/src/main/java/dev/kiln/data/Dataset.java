package dev.kiln.data;

/**
 * Examples addressed by index. A dataset hands out whole batches, because gathering N rows at once is one pass
 * over memory where N single examples would be N small tensors to stack.
 */
public interface Dataset {
    int size();

    /** The examples at these indices, in this order, as one CPU batch. */
    Batch batch(int[] indices);
}
