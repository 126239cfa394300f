package dev.kiln.dist;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import java.util.function.LongSupplier;

/**
 * How the ranks of a job meet before their collectives exist: rank 0 listens at {@code MASTER_ADDR:MASTER_PORT},
 * every other rank connects and says who it is, and rank 0 hands each the same payload (NCCL's unique id). The
 * connections then stay open as the job's liveness channel: when a rank's process dies its socket closes, rank 0
 * sees it and tells the others, and each rank's failure callback names the rank that went ({@link Session#watch}).
 *
 * <p>A connection must open with one line, {@code KILN-RDZV 1 <token> <rank> <world>}, within a few seconds; a wrong
 * token, a rank out of range or already taken, another world size, or anything else (a port scanner, garbage, silence)
 * closes that connection alone, with a line on the log, and the job goes on. Lines are capped at 256 characters.
 */
public final class Rendezvous {
    private Rendezvous() {}

    static final String HELLO = "KILN-RDZV 1";
    private static final int MAX_LINE = 256;
    private static final int HELLO_TIMEOUT_MS = 5_000;

    /**
     * Rank 0's side: binds {@code bind} (the address other hosts reach; loopback for one host), waits until ranks
     * 1..world-1 have joined or {@code timeout} passes, sends each the payload, and returns the open session.
     * Refused connections are reported on {@code log}.
     */
    public static Session host(InetSocketAddress bind, String token, int world, byte[] payload, Duration timeout, Consumer<String> log)
            throws IOException {
        if (world < 1) throw new IllegalArgumentException("rendezvous: world size must be >= 1, got " + world);
        Map<Integer, Socket> joined = new ConcurrentHashMap<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            server.bind(bind, 64);
            while (joined.size() < world - 1) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) {
                    TreeSet<Integer> missing = new TreeSet<>();
                    for (int r = 1; r < world; r++) if (!joined.containsKey(r)) missing.add(r);
                    joined.values().forEach(Rendezvous::closeQuietly);
                    throw new IOException("rendezvous at " + bind + ": ranks " + missing + " did not join within " + timeout.toSeconds()
                            + " s (are they started, with the same MASTER_ADDR:MASTER_PORT and job token?)");
                }
                server.setSoTimeout((int) Math.min(left, Integer.MAX_VALUE));
                Socket s;
                try {
                    s = server.accept();
                } catch (SocketTimeoutException e) {
                    continue;
                }
                admit(s, token, world, joined, log);
            }
        }
        String ok = "OK " + Base64.getEncoder().encodeToString(payload) + "\n";
        for (Socket s : joined.values()) s.getOutputStream().write(ok.getBytes(StandardCharsets.US_ASCII));
        return new Session(0, world, payload, new TreeMap<>(joined), null);
    }

    /** Reads one hello (a bounded line, within the hello timeout) and keeps the socket when it is a rank of this job. */
    private static void admit(Socket s, String token, int world, Map<Integer, Socket> joined, Consumer<String> log) {
        String from = String.valueOf(s.getRemoteSocketAddress());
        try {
            s.setSoTimeout(HELLO_TIMEOUT_MS);
            String line = readLine(s);
            String[] f = line == null ? new String[0] : line.split(" ");
            String reason = null;
            int rank = -1;
            if (f.length != 5 || !(f[0] + " " + f[1]).equals(HELLO)) {
                reason = "not a Kiln rendezvous hello";
            } else if (!MessageDigest.isEqual(f[2].getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8))) {
                reason = "wrong job token";
            } else {
                try {
                    rank = Integer.parseInt(f[3]);
                    int w = Integer.parseInt(f[4]);
                    if (w != world) reason = "world size " + w + ", the job's is " + world;
                    else if (rank < 1 || rank >= world) reason = "rank " + rank + " outside 1.." + (world - 1);
                    else if (joined.putIfAbsent(rank, s) != null) reason = "rank " + rank + " already joined";
                } catch (NumberFormatException e) {
                    reason = "rank or world size not a number";
                }
            }
            if (reason != null) {
                log.accept("rendezvous: refused a connection from " + from + ": " + reason);
                closeQuietly(s);
                return;
            }
            s.setSoTimeout(0);
        } catch (IOException e) {
            log.accept("rendezvous: refused a connection from " + from + ": " + (e instanceof SocketTimeoutException ? "no hello in time" : e.getMessage()));
            closeQuietly(s);
        }
    }

    /**
     * Another rank's side: connects to rank 0 (retrying until it listens, within {@code timeout}), says who it is,
     * and returns the session holding rank 0's payload.
     */
    public static Session join(InetSocketAddress master, String token, int rank, int world, Duration timeout) throws IOException {
        if (rank < 1 || rank >= world) throw new IllegalArgumentException("rendezvous: rank " + rank + " outside 1.." + (world - 1));
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            Socket s = new Socket();
            try {
                s.connect(master, (int) Math.max(1, Math.min(1000, (deadline - System.nanoTime()) / 1_000_000)));
                s.getOutputStream().write((HELLO + " " + token + " " + rank + " " + world + "\n").getBytes(StandardCharsets.UTF_8));
                s.setSoTimeout((int) Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                String line = readLine(s);
                if (line == null || !line.startsWith("OK ")) {
                    closeQuietly(s);
                    throw new IOException("rendezvous at " + master + " refused rank " + rank + " (wrong job token or world size, or the rank is taken)");
                }
                s.setSoTimeout(0);
                return new Session(rank, world, Base64.getDecoder().decode(line.substring(3)), Map.of(0, s), s);
            } catch (SocketTimeoutException e) {
                closeQuietly(s);
                throw new IOException("rendezvous at " + master + ": rank 0 did not answer rank " + rank + " within " + timeout.toSeconds() + " s");
            } catch (IOException e) {
                closeQuietly(s);
                if (e.getMessage() != null && e.getMessage().startsWith("rendezvous")) throw e;
                last = e;
                try {
                    Thread.sleep(100);   // rank 0 not listening yet
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("rendezvous interrupted", ie);
                }
            }
        }
        throw new IOException("rendezvous: could not reach rank 0 at " + master + " within " + timeout.toSeconds() + " s"
                + (last == null ? "" : " (" + last.getMessage() + ")"));
    }

    /** One line without its newline, at most MAX_LINE characters (longer: an IOException); null at end of stream. */
    private static String readLine(Socket s) throws IOException {
        StringBuilder b = new StringBuilder();
        var in = s.getInputStream();
        for (int c; (c = in.read()) != -1; ) {
            if (c == '\n') return b.toString();
            if (b.length() >= MAX_LINE) throw new IOException("a line longer than " + MAX_LINE + " characters");
            b.append((char) c);
        }
        return b.isEmpty() ? null : b.toString();
    }

    static void closeQuietly(Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing a socket that already failed
        }
    }

    /** A loopback address for a one-host job on {@code port}. */
    public static InetSocketAddress loopback(int port) { return new InetSocketAddress(InetAddress.getLoopbackAddress(), port); }

    /**
     * The joined job: this rank, the world size, rank 0's payload, and the open connections (rank 0: one per other
     * rank; the others: the one to rank 0). Close it when the job ends normally, so no rank reads that as a failure.
     */
    public static final class Session implements AutoCloseable {
        private final int rank, world;
        private final byte[] payload;
        private final Map<Integer, Socket> peers;
        private final Socket toHost;
        private volatile boolean closed;

        private Session(int rank, int world, byte[] payload, Map<Integer, Socket> peers, Socket toHost) {
            this.rank = rank;
            this.world = world;
            this.payload = payload;
            this.peers = peers;
            this.toHost = toHost;
        }

        public int rank() { return rank; }

        public int world() { return world; }

        /** The open connection to {@code peer} (rank 0's to every other rank; another rank's to rank 0 only). */
        java.net.Socket socket(int peer) {
            Socket s = peers.get(peer);
            if (s == null) throw new IllegalArgumentException("rank " + rank + " has no connection to rank " + peer);
            return s;
        }

        /** Rank 0's payload (NCCL's unique id), the same bytes on every rank. */
        public byte[] payload() { return payload.clone(); }

        /**
         * Calls {@code onFailure} with the rank that failed when a peer's connection ends before this session is closed:
         * on rank 0 for any other rank (and rank 0 then tells the rest with {@code ABORT <rank>}), elsewhere for rank 0's
         * connection ending or an ABORT from it. Watches on daemon threads.
         */
        public void watch(IntConsumer onFailure) { watch(onFailure, null, null); }

        /**
         * As {@link #watch(IntConsumer)}, and also for a rank that hangs without dying: every rank reports
         * {@code progress} (a count that grows as it works, e.g. its collectives) to rank 0 a few times a
         * {@code stall}; when no rank's count has moved for {@code stall}, rank 0 names the rank furthest behind (the
         * one the others wait for; -1 when all stand at the same count) and aborts the job as for a dead rank. Only for
         * a session whose connections carry nothing else (not under {@link TcpProcessGroup}, whose data they carry).
         */
        public void watch(IntConsumer onFailure, LongSupplier progress, Duration stall) {
            long beatMs = stall == null ? 0 : Math.max(50, Math.min(2_000, stall.toMillis() / 5));
            if (toHost != null) {
                daemon("kiln-rdzv-watch", () -> {
                    int failed = 0;
                    try {
                        BufferedReader in = new BufferedReader(new InputStreamReader(toHost.getInputStream(), StandardCharsets.US_ASCII));
                        String line = in.readLine();
                        if (line != null && line.startsWith("ABORT ")) failed = Integer.parseInt(line.substring(6).trim());
                        if ("BYE".equals(line)) return;
                    } catch (IOException | NumberFormatException e) {
                        // the connection to rank 0 broke: rank 0 failed
                    }
                    if (!closed) onFailure.accept(failed);
                });
                if (progress != null) {
                    daemon("kiln-rdzv-progress", () -> {
                        try {
                            while (!closed) {
                                OutputStream out = toHost.getOutputStream();
                                out.write(("P " + progress.getAsLong() + "\n").getBytes(StandardCharsets.US_ASCII));
                                out.flush();
                                Thread.sleep(beatMs);
                            }
                        } catch (IOException | InterruptedException ignored) {
                            // the connection ended: the watcher above reports it
                        }
                    });
                }
                return;
            }
            java.util.concurrent.ConcurrentHashMap<Integer, Long> counts = new java.util.concurrent.ConcurrentHashMap<>();
            for (Map.Entry<Integer, Socket> e : peers.entrySet()) {
                int r = e.getKey();
                Socket s = e.getValue();
                daemon("kiln-rdzv-watch-" + r, () -> {
                    try {
                        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
                        for (String line; (line = in.readLine()) != null; ) {
                            // a live rank sends only its progress, if asked to; reading blocks until its process ends
                            if (line.startsWith("P ")) counts.put(r, Long.parseLong(line.substring(2).trim()));
                        }
                    } catch (IOException | NumberFormatException ignored) {
                        // a reset connection (or garbage from a rank) is a failed rank too
                    }
                    if (closed) return;
                    fail(r, onFailure);
                });
            }
            if (progress == null) return;
            daemon("kiln-rdzv-stall", () -> {
                java.util.Map<Integer, Long> last = new java.util.HashMap<>();
                long movedAt = System.nanoTime();
                try {
                    while (!closed) {
                        Thread.sleep(beatMs);
                        java.util.Map<Integer, Long> now = new java.util.HashMap<>(counts);
                        now.put(0, progress.getAsLong());
                        if (!now.equals(last)) {
                            last = now;
                            movedAt = System.nanoTime();
                        } else if (System.nanoTime() - movedAt > stall.toNanos() && now.size() == world) {
                            long min = now.values().stream().mapToLong(Long::longValue).min().orElse(0);
                            long behind = now.values().stream().filter(c -> c == min).count();
                            int laggard = behind == world ? -1 : now.entrySet().stream().filter(x -> x.getValue() == min).mapToInt(Map.Entry::getKey).min().orElse(-1);
                            if (!closed) fail(laggard, onFailure);
                            return;
                        }
                    }
                } catch (InterruptedException ignored) {
                    // the process is ending
                }
            });
        }

        private final java.util.concurrent.atomic.AtomicBoolean failing = new java.util.concurrent.atomic.AtomicBoolean();

        /** Rank 0: tells every other rank that {@code rank} failed (once), then this process. */
        private void fail(int rank, IntConsumer onFailure) {
            if (!failing.compareAndSet(false, true)) return;
            broadcast("ABORT " + rank + "\n", rank);
            onFailure.accept(rank);
        }

        private void broadcast(String line, int except) {
            for (Map.Entry<Integer, Socket> e : peers.entrySet()) {
                if (e.getKey() == except) continue;
                try {
                    OutputStream out = e.getValue().getOutputStream();
                    out.write(line.getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                } catch (IOException ignored) {
                    // that rank is gone too; its own watcher reports it
                }
            }
        }

        /** Drops the connections without a word, as a killed process would (for tests of the failure path). */
        void abandon() {
            closed = true;
            peers.values().forEach(Rendezvous::closeQuietly);
        }

        /** Ends the job normally: rank 0 says BYE to the others; every connection closes. */
        @Override public void close() {
            if (closed) return;
            closed = true;
            if (toHost == null) broadcast("BYE\n", -1);
            peers.values().forEach(Rendezvous::closeQuietly);
        }

        private static void daemon(String name, Runnable body) {
            Thread t = new Thread(body, name);
            t.setDaemon(true);
            t.start();
        }
    }
}
