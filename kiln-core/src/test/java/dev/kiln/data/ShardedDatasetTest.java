package dev.kiln.data;

import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Two ranks' shares together are, batch by batch, what one process with the global batch loads. */
class ShardedDatasetTest {
    /** Example i is the number i. */
    private static TensorDataset numbers(int n) {
        double[] x = new double[n];
        long[] y = new long[n];
        for (int i = 0; i < n; i++) {
            x[i] = i;
            y[i] = i;
        }
        return new TensorDataset(Tensor.of(x, n, 1), Tensor.of(y, n));
    }

    private static List<long[]> epoch(Iterator<Batch> it) {
        List<long[]> out = new ArrayList<>();
        while (it.hasNext()) out.add(it.next().targets().toLongArray());
        return out;
    }

    @Test void ranksTogetherSeeTheSingleProcessOrder() {
        TensorDataset data = numbers(103);
        try (DataLoader one = DataLoader.builder(ShardedDataset.of(data, 0, 1, 8, 42)).batchSize(8).build();
             DataLoader r0 = DataLoader.builder(ShardedDataset.of(data, 0, 2, 4, 42)).batchSize(4).build();
             DataLoader r1 = DataLoader.builder(ShardedDataset.of(data, 1, 2, 4, 42)).batchSize(4).build()) {
            List<long[]> previous = null;
            for (int e = 0; e < 3; e++) {
                List<long[]> single = epoch(one.iterator()), a = epoch(r0.iterator()), b = epoch(r1.iterator());
                assertEquals(12, single.size(), "103 examples: 12 global batches of 8, the last 7 dropped");
                assertEquals(single.size(), a.size());
                assertEquals(a.size(), b.size(), "every rank takes the same number of steps");
                for (int k = 0; k < single.size(); k++) {
                    long[] joined = new long[8];
                    System.arraycopy(a.get(k), 0, joined, 0, 4);
                    System.arraycopy(b.get(k), 0, joined, 4, 4);
                    assertArrayEquals(single.get(k), joined, "epoch " + e + " batch " + k);
                }
                if (previous != null) assertFalse(java.util.Arrays.equals(previous.get(0), single.get(0)), "a new order each epoch");
                previous = single;
            }
        }
    }

    @Test void ranksShareNoExampleWithinAnEpoch() {
        TensorDataset data = numbers(64);
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (int r = 0; r < 4; r++) {
            try (DataLoader l = DataLoader.builder(ShardedDataset.of(data, r, 4, 4, 7)).batchSize(4).build()) {
                for (Batch b : l) for (long v : b.targets().toLongArray()) assertTrue(seen.add(v), "example " + v + " twice");
            }
        }
        assertEquals(64, seen.size());
    }

    @Test void badShardsAreNamed() {
        var e = assertThrows(IllegalArgumentException.class, () -> ShardedDataset.of(numbers(10), 2, 2, 4, 0));
        assertTrue(e.getMessage().contains("rank 2 of a world of 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ShardedDataset.of(numbers(10), 0, 2, 8, 0));
        assertTrue(e.getMessage().contains("do not fill one global batch"), e.getMessage());
    }
}
