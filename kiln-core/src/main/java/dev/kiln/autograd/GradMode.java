package dev.kiln.autograd;

/**
 * Whether ops record the autograd graph on this thread. {@code try (var g = GradMode.disabled()) { ... }}
 * is a no-grad scope (inference, optimizer steps); scopes nest.
 */
public final class GradMode implements AutoCloseable {
    private static final ThreadLocal<int[]> DISABLED_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private final int[] depth;
    private final int restore; // the depth close() puts back
    private boolean closed;

    private GradMode(int[] depth, int restore) {
        this.depth = depth;
        this.restore = restore;
    }

    public static GradMode disabled() {
        int[] d = DISABLED_DEPTH.get();
        d[0]++;
        return new GradMode(d, d[0] - 1);
    }

    /**
     * A scope that records the graph even inside a no-grad scope (backward runs under no-grad; gradient
     * checkpointing re-runs a forward with grad inside it). Closing it restores the depth it found.
     */
    public static GradMode enabled() {
        int[] d = DISABLED_DEPTH.get();
        GradMode g = new GradMode(d, d[0]);
        d[0] = 0;
        return g;
    }

    public static boolean isEnabled() { return DISABLED_DEPTH.get()[0] == 0; }

    @Override public void close() {
        if (!closed) {
            closed = true;
            depth[0] = restore;
        }
    }
}
