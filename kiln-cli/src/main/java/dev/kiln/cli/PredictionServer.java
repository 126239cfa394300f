package dev.kiln.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.kiln.Tensor;
import dev.kiln.infer.Batcher;
import dev.kiln.infer.ClassScore;
import dev.kiln.infer.ImageClassifier;
import dev.kiln.io.Json;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code kiln serve}'s HTTP server (the JDK's com.sun.net.httpserver): POST /predict takes an image (the raw bytes, or
 * JSON {@code {"image_base64": ...}}) and answers its top classes as JSON; GET /health and GET /metrics say how it is.
 * Requests run on a bounded pool (when it and its queue are full, the JDK closes new connections); images go through a
 * {@link Batcher}, so concurrent requests share one forward pass. A bad request gets a 4xx status and a JSON reason and
 * never reaches the model: a body over the cap is refused (413) from its Content-Length or as it streams in (read and
 * dropped first up to 8 MB, since an answer over an unread body can be lost to the connection's reset), and a body
 * that is not complete within the read timeout gets 408 and its connection closed, so a slow client holds one worker for
 * at most that long.
 */
final class PredictionServer implements AutoCloseable {
    static {
        // the JDK's own limit on a request's headers and body (seconds), for clients that stall before our handler runs;
        // read when the server class loads, so it is set here, before any server exists, unless the user chose one
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) System.setProperty("sun.net.httpserver.maxReqTime", "60");
    }

    /** How the server runs: top classes per answer, batching, pool size, body cap and read timeout. */
    record Config(int top, int maxBatch, Duration maxWait, int threads, long maxBodyBytes, Duration readTimeout) {
        Config {
            if (top < 1 || maxBatch < 1 || threads < 1 || maxBodyBytes < 1 || maxWait.isNegative() || readTimeout.isNegative() || readTimeout.isZero()) {
                throw new IllegalArgumentException("serve: --top, --max-batch, --threads and --max-body-bytes must be >= 1 and the timeouts positive");
            }
        }
    }

    private static final java.util.Set<String> ENDPOINTS = java.util.Set.of("/predict", "/health", "/metrics");

    /** A request refused with this status and reason. */
    private static final class Refused extends Exception {
        final int status;

        Refused(int status, String reason) {
            super(reason, null, false, false);
            this.status = status;
        }
    }

    private final ImageClassifier classifier;
    private final Config config;
    private final String name;   // what /health calls the model: its run
    private final Batcher batcher;
    private final ThreadPoolExecutor pool;
    private final ExecutorService bodyReaders = Executors.newVirtualThreadPerTaskExecutor();
    private final ServerMetrics metrics = new ServerMetrics();
    private final HttpServer server;

    /** Binds host:port (0: any free port) and starts answering. */
    PredictionServer(ImageClassifier classifier, String name, Config config, String host, int port) throws IOException {
        this.classifier = classifier;
        this.config = config;
        this.name = name;
        this.batcher = new Batcher(classifier.predictor(), config.maxBatch(), config.maxWait());
        this.pool = new ThreadPoolExecutor(config.threads(), config.threads(), 30, TimeUnit.SECONDS, new ArrayBlockingQueue<>(4 * config.threads()),
                Thread.ofPlatform().name("kiln-serve-", 0).daemon().factory());
        this.server = HttpServer.create(new InetSocketAddress(host, port), 128);
        server.setExecutor(pool);
        server.createContext("/", this::handle);
        server.start();
    }

    /** The port it listens on (the one chosen when 0 was asked for). */
    int port() { return server.getAddress().getPort(); }

    ServerMetrics metrics() { return metrics; }

    private void handle(HttpExchange ex) {
        long t0 = System.nanoTime();
        int status;
        String body;
        try {
            body = route(ex);
            status = 200;
        } catch (Refused r) {
            status = r.status;
            body = "{\"error\":" + Json.quote(r.getMessage()) + "}";
        } catch (RuntimeException | Error e) {   // the model failed: this request fails, the server stays
            if (e instanceof VirtualMachineError vm && !(vm instanceof OutOfMemoryError)) throw vm;
            status = 500;
            body = "{\"error\":" + Json.quote("internal error: " + Main.message(e)) + "}";
        }
        String path = ex.getRequestURI().getPath();
        // counted before the answer is written, so a client that has its answer sees it counted; unknown paths are
        // counted together, so a client inventing paths cannot grow the table
        metrics.record(ENDPOINTS.contains(path) ? path : "other", status, System.nanoTime() - t0);
        respond(ex, status, body);
    }

    private String route(HttpExchange ex) throws Refused {
        String path = ex.getRequestURI().getPath(), method = ex.getRequestMethod();
        return switch (path) {
            case "/predict" -> {
                requireMethod(method, "POST", path);
                yield predict(ex);
            }
            case "/health" -> {
                requireMethod(method, "GET", path);
                yield String.format(Locale.ROOT, "{\"status\":\"ok\",\"model\":%s,\"classes\":%d,\"device\":\"%s\",\"input\":\"%s\"}",
                        Json.quote(name), classifier.classes().size(), classifier.predictor().device(), Arrays.toString(classifier.predictor().exampleShape()));
            }
            case "/metrics" -> {
                requireMethod(method, "GET", path);
                yield metrics.json();
            }
            default -> throw new Refused(404, "no such endpoint " + path + " (POST /predict, GET /health, GET /metrics)");
        };
    }

    private static void requireMethod(String method, String expected, String path) throws Refused {
        if (!method.equalsIgnoreCase(expected)) throw new Refused(405, path + " takes " + expected + ", not " + method);
    }

    private String predict(HttpExchange ex) throws Refused {
        byte[] image = image(ex, readBody(ex));
        Tensor x;
        try {
            x = classifier.input(image, "the request's image");
        } catch (IOException e) {
            throw new Refused(e instanceof dev.kiln.data.ImageFolder.TooLarge ? 413 : 400, e.getMessage());
        }
        float[] logits;
        try {
            logits = batcher.submit(x.reshape(classifier.predictor().exampleShape())).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Refused(503, "the server is shutting down");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        }
        List<ClassScore> top = classifier.top(logits, config.top());
        return "{\"top\":" + PredictCommand.jsonScores(top) + "}";
    }

    /** The image bytes: the body itself, or the base64 field of a JSON body. */
    private static byte[] image(HttpExchange ex, byte[] body) throws Refused {
        String type = ex.getRequestHeaders().getFirst("Content-Type");
        boolean json = type != null ? type.toLowerCase(Locale.ROOT).startsWith("application/json") : body.length > 0 && body[0] == '{';
        if (body.length == 0) throw new Refused(400, "empty body: send the image's bytes, or JSON {\"image_base64\": \"...\"}");
        if (!json) return body;
        Object parsed;
        try {
            parsed = Json.parse(new String(body, StandardCharsets.UTF_8));
        } catch (Json.ParseException | RuntimeException e) {
            throw new Refused(400, "malformed JSON: " + e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?> m) || !(m.get("image_base64") instanceof String b64)) {
            throw new Refused(400, "JSON body needs a string field image_base64");
        }
        try {
            return Base64.getDecoder().decode(b64.replaceAll("\\s", ""));   // strict, but line breaks are allowed
        } catch (IllegalArgumentException e) {
            throw new Refused(400, "image_base64 is not base64: " + e.getMessage());
        }
    }

    /**
     * The request body, read on a virtual thread so that this worker can give up on it: a body over the cap is refused
     * (413) once read and dropped, or at once from its Content-Length when larger than DRAIN_BYTES; one not complete
     * within the read timeout gets 408 (the reader is interrupted, which closes the connection).
     */
    private byte[] readBody(HttpExchange ex) throws Refused {
        String length = ex.getRequestHeaders().getFirst("Content-Length");
        long declared = -1;
        if (length != null) {
            try {
                declared = Long.parseLong(length.trim());
            } catch (NumberFormatException e) {
                throw new Refused(400, "bad Content-Length '" + length + "'");
            }
        }
        String tooLarge = declared > config.maxBodyBytes() ? "body of " + declared + " bytes, more than the " + config.maxBodyBytes() + " this server takes"
                : "body larger than the " + config.maxBodyBytes() + " bytes this server takes";
        if (declared > Math.max(config.maxBodyBytes(), DRAIN_BYTES)) throw new Refused(413, tooLarge);
        BodyRead read = new BodyRead(ex.getRequestBody());
        try {
            byte[] body = read.result.get(config.readTimeout().toMillis(), TimeUnit.MILLISECONDS);
            if (body == null) throw new Refused(413, tooLarge);
            return body;
        } catch (TimeoutException e) {
            ex.setAttribute(PENDING_READ, read);   // abandoned once the answer is out: that closes the connection
            if (declared > config.maxBodyBytes()) throw new Refused(413, tooLarge);
            throw new Refused(408, "the body was not received within " + config.readTimeout().toMillis() + " ms");
        } catch (InterruptedException e) {
            ex.setAttribute(PENDING_READ, read);
            Thread.currentThread().interrupt();
            throw new Refused(503, "the server is shutting down");
        } catch (ExecutionException e) {
            throw new Refused(400, "the body could not be read: " + e.getCause().getMessage());
        }
    }

    /**
     * A request body read on a virtual thread of its own, so that the worker can give up on a client that stalls (and go
     * on to other requests). Giving up interrupts the reader: an interrupted channel read closes its channel, which ends
     * the connection without draining the rest of the body (as closing the exchange would, waiting on the client).
     */
    private final class BodyRead implements java.util.concurrent.Callable<byte[]> {
        private final InputStream in;
        private volatile Thread reader;
        private volatile boolean abandoned;
        final Future<byte[]> result;

        BodyRead(InputStream in) {
            this.in = in;
            this.result = bodyReaders.submit(this);
        }

        @Override public byte[] call() throws IOException {
            reader = Thread.currentThread();
            if (abandoned) reader.interrupt();   // given up before it started: its first read closes the channel
            return readCapped(in, config.maxBodyBytes());
        }

        /**
         * Interrupts the read (started or not) and waits a moment for it to end; returns whether it did. When it did not,
         * the exchange must be left open (closing it would drain the stalled body on this worker): the client has its
         * answer and "Connection: close", and the JDK's maxReqTime closes a connection whose client keeps it open.
         */
        boolean abandon() {
            abandoned = true;
            Thread t = reader;
            if (t != null) t.interrupt();
            try {
                result.get(1, TimeUnit.SECONDS);
                return true;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            } catch (ExecutionException e) {
                return true;   // it ended with the closed channel's exception, as meant
            } catch (TimeoutException e) {
                return false;
            }
        }
    }

    /**
     * A refused body up to this size is still read (and dropped) before the answer: answering and closing with a body
     * unread resets the connection, and a reset can lose the answer at the client. Larger ones are refused unread.
     */
    private static final long DRAIN_BYTES = 8L << 20;

    /** All of in, or null once it passes max bytes (read on to its end, or to DRAIN_BYTES, and dropped). */
    private static byte[] readCapped(InputStream in, long max) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[16384];
        long total = 0;
        for (int n; (n = in.read(buf)) != -1; ) {
            total += n;
            if (total > max) {
                while (total <= DRAIN_BYTES && (n = in.read(buf)) != -1) total += n;
                return null;
            }
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    /** The exchange attribute holding a body read that timed out. */
    private static final String PENDING_READ = "kiln.pending-read";

    /**
     * Writes the answer; an error closes the connection, since its body may not have been read to the end. A body read
     * still blocked (a timed-out client) is abandoned only after the answer is flushed, since abandoning closes the
     * connection; closing the exchange with the read still blocked would wait for the body to be drained.
     */
    private static void respond(HttpExchange ex, int status, String body) {
        byte[] bytes = (body + "\n").getBytes(StandardCharsets.UTF_8);
        try {
            ex.getResponseHeaders().set("Content-Type", "application/json");
            if (status >= 400) ex.getResponseHeaders().set("Connection", "close");
            ex.sendResponseHeaders(status, bytes.length);
            OutputStream out = ex.getResponseBody();
            out.write(bytes);
            out.flush();
        } catch (IOException e) {
            // the client went away: nothing to answer
        }
        if (ex.getAttribute(PENDING_READ) instanceof BodyRead read && !read.abandon()) return;
        ex.close();
    }

    /** Stops listening (waiting up to a second for exchanges in flight), then the batcher and the pools. */
    @Override public void close() {
        server.stop(1);
        batcher.close();
        pool.shutdownNow();
        bodyReaders.shutdownNow();
    }

    /** Request counts by endpoint and status, and latency percentiles over the last requests. */
    static final class ServerMetrics {
        private static final int WINDOW = 10_000;
        private final Map<String, Long> counts = new TreeMap<>();
        private final long[] latencies = new long[WINDOW];   // nanoseconds, a ring of the newest
        private long requests;

        synchronized void record(String path, int status, long nanos) {
            counts.merge(path + " " + status, 1L, Long::sum);
            latencies[(int) (requests++ % WINDOW)] = nanos;
        }

        synchronized long requests() { return requests; }

        synchronized long count(String path, int status) { return counts.getOrDefault(path + " " + status, 0L); }

        /** The q-quantile (0..1) of the recorded latencies in milliseconds; 0 when none. */
        synchronized double percentileMs(double q) {
            int n = (int) Math.min(requests, WINDOW);
            if (n == 0) return 0;
            long[] sorted = Arrays.copyOf(latencies, n);
            Arrays.sort(sorted);
            int rank = Math.clamp((long) Math.ceil(q * n) - 1, 0, n - 1);   // nearest rank
            return sorted[rank] / 1e6;
        }

        synchronized String json() {
            StringBuilder by = new StringBuilder();
            for (var e : counts.entrySet()) by.append(by.isEmpty() ? "" : ",").append(Json.quote(e.getKey())).append(':').append(e.getValue());
            return String.format(Locale.ROOT, "{\"requests\":%d,\"by_endpoint_and_status\":{%s},\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"window\":%d}}",
                    requests, by, percentileMs(0.5), percentileMs(0.9), percentileMs(0.99), Math.min(requests, WINDOW));
        }
    }
}
