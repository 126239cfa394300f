package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;

import java.util.SplittableRandom;

/**
 * A token stream cut into chunks for next-token prediction. A chunk is T+1 consecutive tokens: the first T are the
 * inputs, the last T the targets (each input's next token). A batch of B chunks is int64 inputs (B, T) and int64
 * targets (B, T), ready for an embedding and a cross-entropy over (B·T) positions.
 *
 * <p>Training chunks ({@link #shuffled}) change every epoch: epoch e cuts the stream from an offset in [0, T) into
 * non-overlapping chunks and visits them in an order, offset and order both drawn from (seed, e). So the pairs that
 * straddle a chunk boundary in one epoch are trained on in others, and the same seed gives the same batches. Every
 * epoch has the same number of chunks, as many as fit after the largest offset, because a {@link DataLoader} counts
 * an epoch's batches once. Validation chunks ({@link #inOrder}) start at token 0 and step by T, each sharing its
 * first token with the previous chunk's last: every token but the first is a target exactly once, and nothing is
 * random.
 *
 * <p>Why a {@link Dataset}: the training loop takes a {@link DataLoader}, whose worker threads, prefetching and
 * pinned copies to the GPU then serve text as they serve images. What changes per epoch reaches the loader through
 * {@link Dataset#forEpoch}, which it calls as each epoch starts. The chunks shuffle themselves, so build the loader
 * without {@code shuffle}. Used directly, {@link #batch} reads epoch 0.
 *
 * <p>The token array is used as given, not copied (a corpus can be large): do not change it.
 */
public final class TokenChunks implements Dataset {
    private final int[] tokens;
    private final int context, stride, maxOffset, count;
    private final long seed;
    private final boolean shuffled;
    private final Epoch first; // epoch 0, for batch() and for an in-order set, whose epochs are all the same

    private TokenChunks(int[] tokens, int context, boolean shuffled, long seed) {
        if (context < 1) throw new IllegalArgumentException("TokenChunks: the context must be >= 1 token, got " + context);
        if (tokens.length < context + 1) {
            throw new IllegalArgumentException("TokenChunks: the text has " + tokens.length + " tokens; one chunk of context "
                    + context + " needs " + (context + 1) + " (" + context + " inputs and the token after them)");
        }
        this.tokens = tokens;
        this.context = context;
        this.shuffled = shuffled;
        this.seed = seed;
        this.stride = shuffled ? context + 1 : context;
        this.maxOffset = shuffled ? Math.min(context - 1, tokens.length - (context + 1)) : 0;
        // chunk k of an epoch spans [offset + k*stride, offset + k*stride + context + 1)
        this.count = (tokens.length - maxOffset - 1 - context) / stride + 1;
        this.first = new Epoch(computeStarts(0));
    }

    /** Training chunks of {@code context} inputs: a new offset and order each epoch, drawn from (seed, epoch). */
    public static TokenChunks shuffled(int[] tokens, int context, long seed) { return new TokenChunks(tokens, context, true, seed); }

    /** Validation chunks of {@code context} inputs: every token a target once, in order, the same each epoch. */
    public static TokenChunks inOrder(int[] tokens, int context) { return new TokenChunks(tokens, context, false, 0); }

    /** T, the inputs of one chunk. */
    public int context() { return context; }

    /** Tokens in the stream. */
    public int tokenCount() { return tokens.length; }

    /** Chunks per epoch, the same every epoch. */
    @Override public int size() { return count; }

    /** Where epoch {@code epoch} starts cutting (always 0 in order). */
    public int offset(int epoch) { return shuffled ? random(epoch).nextInt(maxOffset + 1) : 0; }

    /** Where each chunk of epoch {@code epoch} starts in the stream, in the order the epoch visits them. */
    public int[] starts(int epoch) { return (shuffled ? computeStarts(epoch) : first.starts).clone(); }

    @Override public Batch batch(int[] indices) { return first.batch(indices); }

    @Override public Dataset forEpoch(int epoch) { return shuffled && epoch != 0 ? new Epoch(computeStarts(epoch)) : first; }

    private SplittableRandom random(int epoch) {
        if (epoch < 0) throw new IllegalArgumentException("TokenChunks: epochs count from 0, got " + epoch);
        return new SplittableRandom(EpochShuffle.key(seed, epoch));
    }

    private int[] computeStarts(int epoch) {
        int[] starts = new int[count];
        if (!shuffled) {
            for (int k = 0; k < count; k++) starts[k] = k * stride;
            return starts;
        }
        SplittableRandom rng = random(epoch);
        int offset = rng.nextInt(maxOffset + 1); // the first draw: offset(epoch) repeats it
        for (int k = 0; k < count; k++) starts[k] = offset + k * stride;
        EpochShuffle.shuffle(starts, rng);
        return starts;
    }

    /** The chunks of one epoch, by the epoch's order. */
    private final class Epoch implements Dataset {
        private final int[] starts;

        Epoch(int[] starts) { this.starts = starts; }

        @Override public int size() { return starts.length; }

        @Override public Batch batch(int[] indices) {
            long[] inputs = new long[indices.length * context], targets = new long[indices.length * context];
            for (int i = 0; i < indices.length; i++) {
                int k = indices[i];
                if (k < 0 || k >= starts.length) throw new IndexOutOfBoundsException("chunk " + k + " of " + starts.length);
                for (int j = 0, s = starts[k]; j < context; j++) {
                    inputs[i * context + j] = tokens[s + j];
                    targets[i * context + j] = tokens[s + j + 1];
                }
            }
            int[] shape = {indices.length, context};
            return new Batch(new Tensor(new CpuStorage(DType.INT64, inputs), shape), new Tensor(new CpuStorage(DType.INT64, targets), shape.clone()));
        }
    }
}
