package dev.kiln.dist;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** kiln launch's process model with real child JVMs ({@link LaunchChild}) on loopback. */
class LauncherTest {
    private static List<String> child(String mode) {
        String java = ProcessHandle.current().info().command().orElse("java");
        return List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), LaunchChild.class.getName(), mode);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static String run(Launcher l, String mode, int[] code) throws Exception {
        StringBuilder buf = new StringBuilder();
        code[0] = l.run(child(mode), line -> buf.append(line).append('\n'));
        return buf.toString();
    }

    @Test void ranksMeetAndShareRankZerosPayload() throws Exception {
        Launcher l = new Launcher(3, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(5));
        int[] code = new int[1];
        String out = run(l, "ok", code);
        assertEquals(0, code[0], out);
        var payloads = out.lines().filter(s -> s.contains("payload")).map(s -> s.replaceAll(".*payload (\\w+).*", "$1")).distinct().toList();
        assertEquals(1, payloads.size(), "one payload for all ranks:\n" + out);
        for (int r = 0; r < 3; r++) assertTrue(out.contains("[rank " + r + "] payload"), out);
        assertTrue(out.contains("world 3") && out.contains("nvls 0"), out);
    }

    @Test void aFailedRankStopsTheOthersAndIsNamed() throws Exception {
        Launcher l = new Launcher(3, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(20));
        int[] code = new int[1];
        long t0 = System.nanoTime();
        String out = run(l, "fail", code);
        assertEquals(3, code[0], out);
        assertTrue(out.contains("kiln launch: rank 1 exited with code 3"), out);
        assertTrue(out.contains("[rank 0] rank 1 failed: aborting") && out.contains("[rank 2] rank 1 failed: aborting"), out);
        assertFalse(out.contains("killed"), "the others ended by themselves:\n" + out);
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(15), "the job ended soon after the failure");
    }

    @Test void ranksThatDoNotEndAreKilledAfterTheGrace() throws Exception {
        Launcher l = new Launcher(2, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(1));
        int[] code = new int[1];
        String out = run(l, "hang", code);
        assertEquals(3, code[0], out);
        assertTrue(out.contains("rank 0 did not end within 1 s; killed"), out);
    }

    @Test void twoNodesOnOneHost() throws Exception {
        int port = freePort();
        String token = Launcher.newToken();
        var pool = Executors.newCachedThreadPool();
        try {
            int[] c0 = new int[1], c1 = new int[1];
            var n0 = CompletableFuture.supplyAsync(() -> call(() -> run(new Launcher(1, 2, 0, "127.0.0.1", port, token, Duration.ofSeconds(5)), "ok", c0)), pool);
            var n1 = CompletableFuture.supplyAsync(() -> call(() -> run(new Launcher(1, 2, 1, "127.0.0.1", port, token, Duration.ofSeconds(5)), "ok", c1)), pool);
            String o0 = n0.get(60, TimeUnit.SECONDS), o1 = n1.get(60, TimeUnit.SECONDS);
            assertEquals(0, c0[0], o0);
            assertEquals(0, c1[0], o1);
            assertTrue(o0.contains("[rank 0] payload") && o1.contains("[rank 1] payload"), o0 + o1);
            assertEquals(o0.replaceAll("(?s).*payload (\\w+).*", "$1"), o1.replaceAll("(?s).*payload (\\w+).*", "$1"));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test void badFlagsAreNamed() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Launcher(2, 2, 2, "h", 29500, "t", Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("--node-rank 2 is outside 0..1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Launcher(0, 1, 0, "h", 29500, "t", Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("--nproc-per-node"), e.getMessage());
    }

    interface Call<T> { T call() throws Exception; }

    private static <T> T call(Call<T> c) {
        try {
            return c.call();
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    @Test void twoProcessesTrainDataParallelAsOneProcessDoes() throws Exception {
        int[] code = new int[1];
        String two = run(new Launcher(2, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(10)), "train", code);
        assertEquals(0, code[0], two);
        String one = run(new Launcher(1, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(10)), "train", code);
        assertEquals(0, code[0], one);
        String c0 = two.replaceAll("(?s).*\\[rank 0\\] checksum (-?\\d+).*", "$1"), c1 = two.replaceAll("(?s).*\\[rank 1\\] checksum (-?\\d+).*", "$1");
        String single = one.replaceAll("(?s).*\\[rank 0\\] checksum (-?\\d+).*", "$1");
        assertEquals(c0, c1, "both ranks hold the same parameters, bit for bit:\n" + two);
        double a = Double.longBitsToDouble(Long.parseLong(c0)), b = Double.longBitsToDouble(Long.parseLong(single));
        assertEquals(b, a, 1e-9 * Math.abs(b), "two ranks with half the batch end where one process with the whole batch does");
    }

    /** kiln.dp.reduce.alone: a job of one reduces its buckets (in place, of one rank) and ends bit for bit where the plain job does. */
    @Test void aJobOfOneReducingAloneTrainsAsThePlainOne() throws Exception {
        int[] code = new int[1];
        String plain = run(new Launcher(1, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(10)), "train", code);
        assertEquals(0, code[0], plain);
        String alone = run(new Launcher(1, 1, 0, "127.0.0.1", freePort(), Launcher.newToken(), Duration.ofSeconds(10)), "train-alone", code);
        assertEquals(0, code[0], alone);
        String report = "\\[rank 0\\] reductions (\\d+) buckets (\\d+) flat (\\d+)";
        java.util.regex.Matcher p = java.util.regex.Pattern.compile(report).matcher(plain), a = java.util.regex.Pattern.compile(report).matcher(alone);
        assertTrue(p.find() && a.find(), plain + alone);
        assertEquals("0", p.group(1), "a plain job of one reduces nothing:\n" + plain);
        assertEquals(32 * Long.parseLong(a.group(2)), Long.parseLong(a.group(1)), "32 steps, every bucket reduced at each:\n" + alone);
        assertEquals(a.group(2), a.group(3), "every gradient a slice of its bucket:\n" + alone);
        assertEquals(LaunchChildren.checksum(plain, 0), LaunchChildren.checksum(alone, 0), 0, "the same parameters, bit for bit");
    }
}
