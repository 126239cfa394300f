package dev.kiln.data;

import dev.kiln.Generator;

import java.util.SplittableRandom;

/**
 * An epoch's random order: a function of the seed and the epoch alone, so every rank of a data-parallel job and every
 * resumed run draws the same one (DataLoader, ShardedDataset and TokenChunks shuffle with it).
 */
final class EpochShuffle {
    private EpochShuffle() {}

    /** The seed of an epoch's random stream. */
    static long key(long seed, int epoch) { return Generator.mix(seed + 0x9E3779B97F4A7C15L * (epoch + 1)); }

    /** 0 .. n - 1 in the order of the stream seeded by key. */
    static int[] order(int n, long key) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        shuffle(order, new SplittableRandom(key));
        return order;
    }

    /** Fisher-Yates, in place. */
    static void shuffle(int[] a, SplittableRandom rng) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1), t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
