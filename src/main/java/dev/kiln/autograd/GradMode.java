package dev.kiln.autograd;

/**
 * Whether ops record the autograd graph on this thread. {@code try (var g = GradMode.disabled()) { ... }}
 * is a no-grad scope (inference, optimizer steps); scopes nest.
 */
public final class GradMode implements AutoCloseable {
    private static final ThreadLocal<int[]> DISABLED_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private final int[] depth;
    private boolean closed;

    private GradMode(int[] depth) { this.depth = depth; }

    public static GradMode disabled() {
        int[] d = DISABLED_DEPTH.get();
        d[0]++;
        return new GradMode(d);
    }

    public static boolean isEnabled() { return DISABLED_DEPTH.get()[0] == 0; }

    @Override public void close() {
        if (!closed) {
            closed = true;
            depth[0]--;
        }
    }
}
