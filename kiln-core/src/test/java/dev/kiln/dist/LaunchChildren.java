package dev.kiln.dist;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;

/**
 * Runs {@link LaunchChild} jobs through the {@link Launcher} for tests in other packages (the GPU ones). The children's
 * classpath is {@code kiln.test.classpath} when set (the GPU bundle's JUnit launcher loads the tests from its own
 * --class-path, which java.class.path does not show), else this JVM's.
 */
public final class LaunchChildren {
    private LaunchChildren() {}

    /** A job of {@code ranks} processes in {@code mode}; its output, and its exit code in code[0]. */
    public static String run(int ranks, String mode, int graceSeconds, int[] code) throws IOException, InterruptedException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = List.of(java, "-Xmx1g", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("kiln.test.classpath", System.getProperty("java.class.path")), LaunchChild.class.getName(), mode);
        StringBuilder out = new StringBuilder();
        code[0] = new Launcher(ranks, 1, 0, "127.0.0.1", port, Launcher.newToken(), Duration.ofSeconds(graceSeconds))
                .run(cmd, line -> out.append(line).append('\n'));
        return out.toString();
    }

    /** The parameter checksum rank {@code rank} printed. */
    public static double checksum(String out, int rank) {
        String bits = out.replaceAll("(?s).*\\[rank " + rank + "\\] checksum (-?\\d+).*", "$1");
        return Double.longBitsToDouble(Long.parseLong(bits));
    }

    /** The figures rank {@code rank} printed after {@code key} (comma-separated double bits, as LaunchChild prints them). */
    public static double[] figures(String out, int rank, String key) {
        String bits = out.replaceAll("(?s).*\\[rank " + rank + "\\] " + key + " (-?[\\d,-]+).*", "$1");
        return java.util.Arrays.stream(bits.split(",")).mapToDouble(b -> Double.longBitsToDouble(Long.parseLong(b))).toArray();
    }
}
