package dev.kiln.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class TokenChunksTest {
    /** Token i is i, so a chunk shows where it was cut. */
    static int[] positions(int n) {
        int[] t = new int[n];
        Arrays.setAll(t, i -> i);
        return t;
    }

    static int[] all(Dataset d) {
        int[] idx = new int[d.size()];
        Arrays.setAll(idx, i -> i);
        return idx;
    }

    @Test void oneEpochCutsTheStreamIntoContiguousNonOverlappingChunks() {
        int n = 1000, t = 8;
        TokenChunks chunks = TokenChunks.shuffled(positions(n), t, 7);
        assertEquals((n - (t - 1) - (t + 1)) / (t + 1) + 1, chunks.size(), "as many chunks as fit after the largest offset");
        for (int epoch = 0; epoch < 5; epoch++) {
            Batch b = chunks.forEpoch(epoch).batch(all(chunks));
            assertArrayEquals(new int[]{chunks.size(), t}, b.inputs().shape());
            long[] x = b.inputs().toLongArray(), y = b.targets().toLongArray();
            int offset = chunks.offset(epoch);
            assertTrue(offset >= 0 && offset < t, "offset " + offset);
            long[] firsts = new long[chunks.size()];
            for (int i = 0; i < chunks.size(); i++) {
                firsts[i] = x[i * t];
                for (int j = 0; j < t; j++) {
                    assertEquals(firsts[i] + j, x[i * t + j], "inputs are consecutive tokens");
                    assertEquals(firsts[i] + j + 1, y[i * t + j], "each target is its input's next token");
                }
            }
            Arrays.sort(firsts);
            for (int k = 0; k < firsts.length; k++) assertEquals(offset + k * (t + 1), firsts[k], "chunk k starts right after chunk k-1 ends");
            assertTrue(firsts[firsts.length - 1] + t + 1 <= n, "the last chunk is inside the stream");
            assertArrayEquals(chunks.starts(epoch), startsOf(x, t), "starts() lists the epoch's chunks in its order");
        }
    }

    static int[] startsOf(long[] inputs, int t) {
        int[] s = new int[inputs.length / t];
        for (int i = 0; i < s.length; i++) s[i] = (int) inputs[i * t];
        return s;
    }

    @Test void targetsAreTheInputsShiftedByOne() {
        SplittableRandom rng = new SplittableRandom(3);
        int[] tokens = new int[500];
        for (int i = 0; i < tokens.length; i++) tokens[i] = rng.nextInt(65);
        TokenChunks chunks = TokenChunks.shuffled(tokens, 16, 11);
        int[] starts = chunks.starts(2);
        Batch b = chunks.forEpoch(2).batch(new int[]{0, 1, 2});
        long[] x = b.inputs().toLongArray(), y = b.targets().toLongArray();
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 16; j++) {
                assertEquals(tokens[starts[i] + j], x[i * 16 + j]);
                assertEquals(tokens[starts[i] + j + 1], y[i * 16 + j]);
                if (j < 15) assertEquals(x[i * 16 + j + 1], y[i * 16 + j]);
            }
        }
    }

    @Test void epochsDifferAndTheSameSeedRepeats() {
        TokenChunks a = TokenChunks.shuffled(positions(5000), 32, 42), b = TokenChunks.shuffled(positions(5000), 32, 42),
                c = TokenChunks.shuffled(positions(5000), 32, 43);
        Set<Integer> offsets = new HashSet<>();
        for (int e = 0; e < 10; e++) {
            offsets.add(a.offset(e));
            assertArrayEquals(a.starts(e), b.starts(e), "same seed, same chunks in the same order");
            assertArrayEquals(a.forEpoch(e).batch(new int[]{0, 5}).inputs().toLongArray(), b.forEpoch(e).batch(new int[]{0, 5}).inputs().toLongArray());
            assertFalse(Arrays.equals(a.starts(e), c.starts(e)), "another seed, other chunks");
            if (e > 0) assertFalse(Arrays.equals(a.starts(e), a.starts(e - 1)), "a new order each epoch");
        }
        assertTrue(offsets.size() > 3, "offsets vary over epochs: " + offsets);
        int[] sorted = a.starts(0);
        Arrays.sort(sorted);
        assertFalse(Arrays.equals(sorted, a.starts(0)), "the chunks are shuffled");
    }

    @Test void theDataLoaderServesEachEpochsChunks() {
        TokenChunks chunks = TokenChunks.shuffled(positions(3000), 10, 5);
        try (DataLoader loader = DataLoader.builder(chunks).batchSize(16).workers(2).build()) {
            for (int epoch = 0; epoch < 3; epoch++) {
                List<long[]> got = new ArrayList<>();
                for (Batch b : loader) got.add(b.inputs().toLongArray());
                int[] starts = chunks.starts(epoch);
                assertEquals(loader.batchCount(), got.size());
                long[] flat = got.stream().flatMapToLong(Arrays::stream).toArray();
                assertArrayEquals(starts, startsOf(flat, 10), "epoch " + epoch + ": the loader's batches are the epoch's chunks in its order");
            }
        }
    }

    @Test void aHeadOfTheChunksChangesWithTheEpochToo() {
        TokenChunks chunks = TokenChunks.shuffled(positions(3000), 10, 5);
        Dataset head = TrainingData.head(chunks, 4);
        assertArrayEquals(chunks.forEpoch(3).batch(new int[]{0, 1, 2, 3}).inputs().toLongArray(),
                head.forEpoch(3).batch(new int[]{0, 1, 2, 3}).inputs().toLongArray());
        assertEquals(4, head.forEpoch(3).size());
    }

    @Test void aTextShorterThanOneChunkSaysHowShort() {
        var e = assertThrows(IllegalArgumentException.class, () -> TokenChunks.shuffled(positions(8), 8, 1));
        assertEquals("TokenChunks: the text has 8 tokens; one chunk of context 8 needs 9 (8 inputs and the token after them)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TokenChunks.inOrder(positions(3), 3));
        TokenChunks one = TokenChunks.shuffled(positions(9), 8, 1);
        assertEquals(1, one.size());
        for (int epoch = 0; epoch < 5; epoch++) assertEquals(0, one.offset(epoch), "no room to move");
    }

    @Test void aShortTextOffsetsOnlyAsFarAsItHasRoom() {
        int n = 12, t = 8; // room for one chunk and 3 spare tokens
        TokenChunks chunks = TokenChunks.shuffled(positions(n), t, 9);
        assertEquals(1, chunks.size());
        Set<Integer> offsets = new HashSet<>();
        for (int e = 0; e < 50; e++) offsets.add(chunks.offset(e));
        assertEquals(Set.of(0, 1, 2, 3), offsets);
    }

    @Test void validationChunksAreInOrderAndTargetEveryTokenOnce() {
        int n = 100, t = 8;
        TokenChunks val = TokenChunks.inOrder(positions(n), t);
        assertEquals((n - 1) / t, val.size());
        Batch b = val.batch(all(val));
        long[] y = b.targets().toLongArray(), x = b.inputs().toLongArray();
        for (int i = 0; i < y.length; i++) assertEquals(i + 1, y[i], "targets 1, 2, 3, ... once each, in order");
        for (int i = 0; i < x.length; i++) assertEquals(i, x[i]);
        assertArrayEquals(val.starts(0), val.starts(7), "no randomness across epochs");
        assertSame(val.forEpoch(0), val.forEpoch(4));
    }
}
