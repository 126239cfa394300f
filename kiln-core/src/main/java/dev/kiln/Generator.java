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

    /** How many keys this generator has handed out: with the seed, its whole state (a checkpoint saves it). */
    public synchronized long counter() { return counter; }

    /** Puts the generator back where {@link #counter()} read it, so it hands out the same keys from there (resuming a run). */
    public synchronized void restore(long counter) {
        if (counter < 0) throw new IllegalArgumentException("Generator.restore: counter must be >= 0, got " + counter);
        this.counter = counter;
    }

    public long nextSeed() {
        KeyTape tape = TAPE.get();
        if (tape != null && tape.replaying) return tape.replay();
        long key, drawn;
        synchronized (this) {
            drawn = ++counter;
            key = mix(seed + 0x9E3779B97F4A7C15L * drawn);
        }
        GraphKeys graph = GRAPH_KEYS.get();
        if (graph != null) key = graph.slot(this, drawn);
        if (tape != null) tape.keys.add(key);
        return key;
    }

    /**
     * Keys drawn while a CUDA graph is captured on this thread. A captured step replays many times, and each replay
     * must draw what an eager step would at that point of the generator's stream, so the kernels of a graph do not get
     * a key but a slot: the graph keeps each slot's (seed, counter) and the keys a step draws per generator, and a
     * replay's kernels derive {@code mix(seed + phi * (counter + replays before it * keys per step))}, the eager key.
     * A graphed run thus draws what an eager run draws, step for step (a resumed run, whose first steps run eagerly,
     * ends where an uninterrupted one does).
     */
    public interface GraphKeys {
        /** The slot (a small index the kernels look up) standing for generator g's key number {@code counter}. */
        long slot(Generator g, long counter);
    }

    private static final ThreadLocal<GraphKeys> GRAPH_KEYS = new ThreadLocal<>();

    /** Routes this thread's keys to {@code keys} until the returned scope closes (a CUDA graph capture does this). */
    public static AutoCloseable capturingKeys(GraphKeys keys) {
        GraphKeys outer = GRAPH_KEYS.get();
        GRAPH_KEYS.set(keys);
        return () -> {
            if (outer == null) GRAPH_KEYS.remove();
            else GRAPH_KEYS.set(outer);
        };
    }

    private static final ThreadLocal<KeyTape> TAPE = new ThreadLocal<>();

    /**
     * The keys random ops drew on this thread, from any generator, while the tape was open; replayed, it hands
     * the same keys out again in the same order without advancing any generator. Gradient checkpointing records
     * the forward pass's keys and replays them when it recomputes that pass, so dropout draws the same mask twice
     * and the generators end where they would without checkpointing.
     */
    public static final class KeyTape implements AutoCloseable {
        private final java.util.List<Long> keys;
        private final boolean replaying;
        private final KeyTape outer;
        private int next;

        private KeyTape(java.util.List<Long> keys, boolean replaying) {
            this.keys = keys;
            this.replaying = replaying;
            this.outer = TAPE.get();
            TAPE.set(this);
        }

        /** The keys drawn so far (recording) or to hand out (replaying). */
        public java.util.List<Long> keys() { return java.util.Collections.unmodifiableList(keys); }

        private long replay() {
            if (next == keys.size()) {
                throw new IllegalStateException("a replayed forward pass drew more random keys (" + (next + 1) + ") than it recorded (" + keys.size()
                        + "): the recomputed forward must do the same random ops");
            }
            return keys.get(next++);
        }

        @Override public void close() {
            if (TAPE.get() == this) {
                if (outer == null) TAPE.remove();
                else TAPE.set(outer);
            }
        }
    }

    /** Opens a tape recording every key drawn on this thread. */
    public static KeyTape recordKeys() { return new KeyTape(new java.util.ArrayList<>(), false); }

    /** Opens a tape that hands out {@code keys} in order instead of drawing new ones. */
    public static KeyTape replayKeys(java.util.List<Long> keys) { return new KeyTape(new java.util.ArrayList<>(keys), true); }

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
