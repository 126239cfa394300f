package dev.kiln.dist;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The rendezvous of a job's ranks, as threads of one JVM on loopback: payload, refusals, timeouts, failure notice. */
class RendezvousTest {
    /** Own threads: the common pool has a single thread on a 2-core machine, and the ranks must run at once. */
    private static final java.util.concurrent.ExecutorService POOL = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "rank");
        t.setDaemon(true);
        return t;
    });

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static final byte[] ID = new byte[128];

    static {
        for (int i = 0; i < ID.length; i++) ID[i] = (byte) (i * 37 + 11);
    }

    @Test void everyRankGetsRankZerosPayloadAndStrayConnectionsAreRefused() throws Exception {
        int port = freePort();
        List<String> log = new CopyOnWriteArrayList<>();
        var host = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.host(Rendezvous.loopback(port), "secret", 3, ID, Duration.ofSeconds(20), log::add)), POOL);
        // strays first: garbage, a wrong token, a rank out of range, a duplicate of rank 1
        Thread.sleep(200);
        send(port, "GET / HTTP/1.1\n");
        send(port, "KILN-RDZV 1 wrong 1 3\n");
        send(port, "KILN-RDZV 1 secret 7 3\n");
        var r1 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "secret", 1, 3, Duration.ofSeconds(20))), POOL);
        Thread.sleep(500);                                // rank 1 is admitted first; the second "rank 1" is the duplicate
        var r1again = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "secret", 1, 3, Duration.ofSeconds(3))), POOL);
        // rank 2 only once the duplicate was turned away: had it joined first, the rendezvous would be over and the
        // duplicate would find no one listening instead of being refused
        var dup = assertThrows(Exception.class, () -> r1again.get(30, TimeUnit.SECONDS));
        var r2 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "secret", 2, 3, Duration.ofSeconds(20))), POOL);
        try (Rendezvous.Session s0 = host.get(30, TimeUnit.SECONDS); Rendezvous.Session s1 = r1.get(30, TimeUnit.SECONDS);
             Rendezvous.Session s2 = r2.get(30, TimeUnit.SECONDS)) {
            assertArrayEquals(ID, s1.payload());
            assertArrayEquals(ID, s2.payload());
            assertEquals(2, s2.rank());
            assertEquals(3, s0.world());
        }
        assertTrue(dup.getMessage().contains("refused rank 1"), dup.getMessage());
        String all = String.join("\n", log);
        assertTrue(all.contains("not a Kiln rendezvous hello"), all);
        assertTrue(all.contains("wrong job token"), all);
        assertTrue(all.contains("rank 7 outside 1..2"), all);
        assertTrue(all.contains("rank 1 already joined"), all);
    }

    @Test void aMissingRankIsNamedWhenTheTimeoutPasses() throws Exception {
        int port = freePort();
        var r1 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "t", 1, 3, Duration.ofSeconds(10))), POOL);
        var e = assertThrows(IOException.class, () -> Rendezvous.host(Rendezvous.loopback(port), "t", 3, ID, Duration.ofSeconds(2), m -> {}));
        assertTrue(e.getMessage().contains("ranks [2] did not join within 2 s"), e.getMessage());
        assertThrows(Exception.class, () -> r1.get(20, TimeUnit.SECONDS)); // its connection closed with the failed rendezvous
    }

    @Test void aDeadRankIsReportedToEveryOther() throws Exception {
        int port = freePort();
        var host = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.host(Rendezvous.loopback(port), "t", 3, ID, Duration.ofSeconds(20), m -> {})), POOL);
        var r1 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "t", 1, 3, Duration.ofSeconds(20))), POOL);
        var r2 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "t", 2, 3, Duration.ofSeconds(20))), POOL);
        Rendezvous.Session s0 = host.get(30, TimeUnit.SECONDS), s1 = r1.get(30, TimeUnit.SECONDS), s2 = r2.get(30, TimeUnit.SECONDS);
        CountDownLatch seen = new CountDownLatch(2);
        int[] failed = {-1, -1};
        s0.watch(r -> { failed[0] = r; seen.countDown(); });
        s1.watch(r -> { failed[1] = r; seen.countDown(); });
        s2.abandon();                                     // rank 2's process dies: its socket closes, no BYE
        assertTrue(seen.await(10, TimeUnit.SECONDS), "the failure reached rank 0 and rank 1");
        assertEquals(2, failed[0]);
        assertEquals(2, failed[1]);
        s0.close();
        s1.close();
    }

    @Test void aHungRankIsNamedOnceNoRankMovesForTheStallTime() throws Exception {
        for (boolean oneBehind : new boolean[]{true, false}) {
            int port = freePort();
            var host = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.host(Rendezvous.loopback(port), "t", 3, ID, Duration.ofSeconds(20), m -> {})), POOL);
            var r1 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "t", 1, 3, Duration.ofSeconds(20))), POOL);
            var r2 = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.join(Rendezvous.loopback(port), "t", 2, 3, Duration.ofSeconds(20))), POOL);
            Rendezvous.Session s0 = host.get(30, TimeUnit.SECONDS), s1 = r1.get(30, TimeUnit.SECONDS), s2 = r2.get(30, TimeUnit.SECONDS);
            java.util.concurrent.atomic.AtomicLong moving = new java.util.concurrent.atomic.AtomicLong(5);
            int told = oneBehind ? 2 : 3;                  // the hung rank is not told; with none behind every rank is
            CountDownLatch seen = new CountDownLatch(told);
            int[] failed = {-9, -9, -9};
            Duration stall = Duration.ofMillis(600);
            s0.watch(r -> { failed[0] = r; seen.countDown(); }, moving::get, stall);
            s1.watch(r -> { failed[1] = r; seen.countDown(); }, () -> oneBehind ? 3 : 5, stall);   // rank 1 hangs at 3 (or all at 5)
            s2.watch(r -> { failed[2] = r; seen.countDown(); }, moving::get, stall);
            long t0 = System.nanoTime();
            for (int i = 0; i < 8; i++) {                  // ranks 0 and 2 work on for a while: no stall yet
                Thread.sleep(150);
                moving.incrementAndGet();
            }
            assertEquals(told, seen.getCount(), "no failure while a rank moves");
            moving.set(5);                                 // then they wait for rank 1 (at the same count as it when none is behind)
            assertTrue(seen.await(10, TimeUnit.SECONDS), "the stall was reported");
            int expected = oneBehind ? 1 : -1;
            assertEquals(expected, failed[0], "rank 0 names the rank furthest behind (-1: every rank at the same point)");
            assertEquals(expected, failed[2], "and tells the others");
            assertTrue(System.nanoTime() - t0 > 1_500_000_000L, "not before the stall time had passed with no progress");
            s0.close();
            s1.close();
            s2.close();
        }
    }

    @Test void aNormalEndIsNoFailure() throws Exception {
        int port = freePort();
        var host = CompletableFuture.supplyAsync(() -> call(() -> Rendezvous.host(Rendezvous.loopback(port), "t", 2, ID, Duration.ofSeconds(20), m -> {})), POOL);
        Rendezvous.Session s1 = Rendezvous.join(Rendezvous.loopback(port), "t", 1, 2, Duration.ofSeconds(20));
        Rendezvous.Session s0 = host.get(30, TimeUnit.SECONDS);
        CountDownLatch failure = new CountDownLatch(1);
        s1.watch(r -> failure.countDown());
        s0.close();
        assertFalse(failure.await(1, TimeUnit.SECONDS), "rank 0's BYE is not a failure");
        s1.close();
    }

    @Test void theEnvironmentContract() {
        JobEnvironment one = JobEnvironment.from(Map.of());
        assertFalse(one.distributed());
        JobEnvironment e = JobEnvironment.from(Map.of("RANK", "1", "LOCAL_RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "10.0.0.5",
                "MASTER_PORT", "29500", "KILN_JOB_TOKEN", "abc"));
        assertEquals(1, e.rank());
        assertEquals("10.0.0.5:29500", e.master().getHostString() + ":" + e.master().getPort());
        var bad = assertThrows(IllegalArgumentException.class, () -> JobEnvironment.from(Map.of("WORLD_SIZE", "2", "RANK", "2", "MASTER_PORT", "1")));
        assertTrue(bad.getMessage().contains("RANK 2 is outside 0..1"), bad.getMessage());
        bad = assertThrows(IllegalArgumentException.class, () -> JobEnvironment.from(Map.of("WORLD_SIZE", "2", "RANK", "0")));
        assertTrue(bad.getMessage().contains("MASTER_PORT is not set"), bad.getMessage());
    }

    private static void send(int port, String line) {
        try (Socket s = new Socket("127.0.0.1", port)) {
            OutputStream out = s.getOutputStream();
            out.write(line.getBytes(StandardCharsets.UTF_8));
            out.flush();
            s.getInputStream().read(); // until the host closes it
        } catch (IOException ignored) {
            // refused: what the test wants
        }
    }

    interface IoCall<T> { T call() throws IOException; }

    private static <T> T call(IoCall<T> c) {
        try {
            return c.call();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e.getMessage(), e);
        }
    }
}
