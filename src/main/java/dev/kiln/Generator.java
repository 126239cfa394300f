package dev.kiln;

/**
 * A seeded source of random streams. Each random op takes the next 64-bit key from it; kernels turn (key, element
 * index) into numbers with a counter-based hash, so CPU and GPU draw the same numbers for the same seed and
 * nothing random needs state on the device.
 */
public final class Generator {
    private final long seed;
    private long counter;

    public Generator(long seed) { this.seed = seed; }

    public long seed() { return seed; }

    public synchronized long nextSeed() { return mix(seed + 0x9E3779B97F4A7C15L * ++counter); }

    /** splitmix64's finaliser: a good 64-bit hash. Kernels use the same function. */
    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The uniform [0,1) number for element i of the stream keyed by key (24 random bits, exact in float32). */
    public static double uniformAt(long key, long i) {
        return (mix(key + 0x9E3779B97F4A7C15L * (i + 1)) >>> 40) * 0x1.0p-24;
    }
}
