package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.data.FashionMnist;
import dev.kiln.infer.ImageClassifier;
import dev.kiln.io.Json;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.train.TrainRun;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static dev.kiln.cli.MainTest.assertOneLineError;
import static dev.kiln.cli.MainTest.kiln;
import static org.junit.jupiter.api.Assertions.*;

/** kiln predict and the server of kiln serve (on an ephemeral port) against a tiny Fashion-MNIST run, on the CPU. */
class PredictServeCliTest {
    @TempDir static Path dir;
    static Path data, run, png0, png1;
    static PredictionServer server;
    static ImageClassifier classifier;
    static final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll static void trainAndServe() throws IOException {
        data = MainTest.fakeFashionMnist(dir.resolve("data"), 64, 8);
        run = dir.resolve("run");
        MainTest.Run r = kiln("train", "--model", "mlp", "--epochs", "1", "--batch-size", "16", "--data", data.toString(), "--out", run.toString());
        assertEquals(0, r.code(), r.toString());
        png0 = writeTestImage(0, dir.resolve("images/a.png"));
        png1 = writeTestImage(1, dir.resolve("images/b.png"));
        classifier = Classifiers.load(run, Device.CPU);
        server = new PredictionServer(classifier, "run", new PredictionServer.Config(3, 8, Duration.ofMillis(2), 4, 1 << 20, Duration.ofMillis(700)),
                "127.0.0.1", 0);
    }

    @AfterAll static void stop() {
        if (server != null) server.close();
        if (classifier != null) classifier.close();
    }

    /** Test image i of the fake data set as a grey PNG: the same pixels the model was evaluated on. */
    static Path writeTestImage(int i, Path file) throws IOException {
        float[] x = FashionMnist.load(data, false).batch(new int[]{i}).inputs().toFloatArray();
        BufferedImage img = new BufferedImage(28, 28, BufferedImage.TYPE_BYTE_GRAY);
        for (int p = 0; p < 784; p++) {
            int v = Math.round((x[p] * FashionMnist.STD + FashionMnist.MEAN) * 255);
            img.getRaster().setSample(p % 28, p / 28, 0, v);
        }
        Files.createDirectories(file.getParent());
        ImageIO.write(img, "png", file.toFile());
        return file;
    }

    /** The checkpoint's softmax for test image i, computed from the data set's tensors, not from a PNG. */
    static double[] expectedProbabilities(int i) throws IOException {
        Model m = TrainRun.loadCheckpoint(run.resolve("model.safetensors"), null).model();
        m.eval();
        float[] logits;
        try (GradMode off = GradMode.disabled()) {
            logits = m.forward(FashionMnist.load(data, false).batch(new int[]{i}).inputs()).toFloatArray();
        }
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : logits) max = Math.max(max, v);
        double[] p = new double[logits.length];
        for (int c = 0; c < p.length; c++) sum += p[c] = Math.exp(logits[c] - max);
        for (int c = 0; c < p.length; c++) p[c] /= sum;
        return p;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> top(String json) throws Json.ParseException {
        return (List<Map<String, Object>>) ((Map<String, Object>) Json.parse(json.strip())).get("top");
    }

    static void assertProbabilities(double[] want, List<Map<String, Object>> top) {
        for (Map<String, Object> s : top) {
            int c = ((Number) s.get("index")).intValue();
            assertEquals(FashionMnist.CLASSES.get(c), s.get("class"));
            assertEquals(want[c], ((Number) s.get("probability")).doubleValue(), 1e-5, "class " + c);
        }
    }

    @Test void predictPreparesImagesAsTrainingDid() throws Exception {
        MainTest.Run r = kiln("predict", run.toString(), png0.toString(), "--json", "--top", "10");
        assertEquals(0, r.code(), r.toString());
        List<Map<String, Object>> top = top(r.out());
        assertEquals(10, top.size());
        assertProbabilities(expectedProbabilities(0), top);
        for (int i = 1; i < top.size(); i++) {
            assertTrue(((Number) top.get(i - 1).get("probability")).doubleValue() >= ((Number) top.get(i).get("probability")).doubleValue());
        }
    }

    /** --precision bf16 / fp16: the model computes in 16 bits, the probabilities stay near float32's; a bad value is refused. */
    @Test void predictInSixteenBits() throws Exception {
        double[] want = expectedProbabilities(0);
        for (String p : new String[]{"bf16", "fp16"}) {
            MainTest.Run r = kiln("predict", run.toString(), png0.toString(), "--json", "--top", "10", "--precision", p);
            assertEquals(0, r.code(), r.toString());
            assertTrue(r.err().contains("on the CPU runs through the general (scalar) kernels"), "the CPU's 16-bit warning: " + r.err());
            for (Map<String, Object> s : top(r.out())) {
                int c = ((Number) s.get("index")).intValue();
                assertEquals(want[c], ((Number) s.get("probability")).doubleValue(), 2e-2, p + ", class " + c);
            }
        }
        MainTest.Run bad = kiln("predict", run.toString(), png0.toString(), "--precision", "fp8");
        assertEquals(2, bad.code(), bad.toString());
        assertTrue(bad.err().contains("unknown precision 'fp8' (choose fp32, bf16, fp16)"), bad.err());
        assertEquals(2, kiln("serve", run.toString(), "--port", "0", "--precision", "int4").code());
    }

    /** A checkpoint from before the preprocessing keys (kiln.image.*) is taken as Fashion-MNIST from its 1x28x28 shape. */
    @Test void olderCheckpointsWithoutPreprocessingKeysPredictAlike() throws Exception {
        var c = Safetensors.read(run.resolve("model.safetensors"));
        assertEquals("fashion-mnist", c.metadata().get(TrainRun.META_DATA));
        assertEquals(Float.toString(FashionMnist.MEAN), c.metadata().get(TrainRun.META_MEAN));
        var old = new java.util.LinkedHashMap<>(c.metadata());
        old.keySet().removeIf(k -> k.startsWith("kiln.image.") || k.equals(TrainRun.META_DATA));
        Path file = dir.resolve("old.safetensors");
        Safetensors.write(file, c.tensors(), old);
        MainTest.Run r = kiln("predict", file.toString(), png0.toString(), "--json", "--top", "10");
        assertEquals(0, r.code(), r.toString());
        assertProbabilities(expectedProbabilities(0), top(r.out()));
    }

    @Test void serveRefusesBadOptionsBeforeListening() {
        assertEquals(2, kiln("serve", run.toString(), "--port", "70000").code());
        assertEquals(2, kiln("serve", run.toString(), "--port", "0", "--max-batch", "0").code());
        assertEquals(2, kiln("serve", run.toString()).code(), "--port is required");
    }

    @Test void predictTakesFoldersAndGoesOnPastBadFiles() throws IOException {
        MainTest.Run r = kiln("predict", run.toString(), png0.getParent().toString(), "--top", "2");
        assertEquals(0, r.code(), r.toString());
        List<String> lines = r.out().strip().lines().toList();
        assertEquals(2, lines.size(), r.out());
        assertTrue(lines.get(0).startsWith(png0 + ": ") && lines.get(1).startsWith(png1 + ": "), r.out());
        assertTrue(FashionMnist.CLASSES.stream().anyMatch(lines.get(0)::contains), r.out());

        Path bad = Files.writeString(dir.resolve("bad.png"), "not a png at all");
        MainTest.Run b = kiln("predict", run.toString(), bad.toString(), png1.toString(), dir.resolve("missing.jpg").toString());
        assertEquals(1, b.code(), b.toString());
        assertEquals(1, b.out().strip().lines().count(), "the good file is still classified: " + b.out());
        List<String> errors = b.err().strip().lines().toList();
        assertEquals(2, errors.size(), b.err());
        assertTrue(errors.get(0).contains(bad.toString()) && errors.get(0).contains("not an image format"), b.err());
        assertTrue(errors.get(1).contains("missing.jpg"), b.err());
        assertFalse(b.err().contains("\tat "));
    }

    @Test void predictRefusesBadOptionsAndLanguageModels() throws IOException {
        MainTest.Run t = kiln("predict", run.toString(), png0.toString(), "--top", "0");
        assertEquals(2, t.code(), t.toString());
        Path lm = dir.resolve("lm.safetensors");
        Safetensors.write(lm, Map.of("x", Tensor.zeros(1)), Map.of("kiln.model", "gpt"));
        assertOneLineError(kiln("predict", lm.toString(), png0.toString()), "use 'kiln generate");
        Path empty = Files.createDirectories(dir.resolve("no-images"));
        assertOneLineError(kiln("predict", run.toString(), empty.toString()), "a folder without image files");
    }

    /** kiln export writes an ONNX file whose graph (run by OnnxImport) gives the expected.npy it wrote for its input.npy. */
    @Test void exportWritesOnnxAndItsCheckData() throws Exception {
        Path onnx = dir.resolve("model.onnx"), check = dir.resolve("check");
        MainTest.Run r = kiln("export", run.toString(), "--onnx", onnx.toString(), "--check-data", check.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("opset 17") && r.out().contains("bench/onnx_check.py"), r.out());
        float[] x = readNpy(check.resolve("input.npy"), "(4, 1, 28, 28)"), want = readNpy(check.resolve("expected.npy"), "(4, 10)");
        try (GradMode off = GradMode.disabled()) {
            float[] got = dev.kiln.onnx.OnnxImport.read(onnx).forward(Tensor.of(x, 4, 1, 28, 28)).toFloatArray();
            assertArrayEquals(want, got, 1e-4f);
        }
        assertOneLineError(kiln("export", run.toString()), "--onnx");
    }

    /** A float32 .npy of this shape (as its header says). */
    static float[] readNpy(Path file, String shape) throws IOException {
        byte[] b = Files.readAllBytes(file);
        assertEquals("NUMPY", new String(b, 1, 5, StandardCharsets.US_ASCII));
        int headerLength = (b[8] & 0xFF) | (b[9] & 0xFF) << 8;
        assertEquals(0, (10 + headerLength) % 64, "the data starts 64-byte aligned");
        String header = new String(b, 10, headerLength, StandardCharsets.US_ASCII);
        assertTrue(header.contains("'descr': '<f4'") && header.contains("'shape': " + shape), header);
        java.nio.FloatBuffer f = java.nio.ByteBuffer.wrap(b, 10 + headerLength, b.length - 10 - headerLength).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] v = new float[f.remaining()];
        f.get(v);
        return v;
    }

    static URI uri(String path) { return URI.create("http://127.0.0.1:" + server.port() + path); }

    static HttpResponse<String> post(byte[] body, String type) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri("/predict")).POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (type != null) b.header("Content-Type", type);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test void servesImagesAsBytesAndAsBase64Json() throws Exception {
        byte[] png = Files.readAllBytes(png0);
        HttpResponse<String> raw = post(png, "image/png");
        assertEquals(200, raw.statusCode(), raw.body());
        assertEquals(3, top(raw.body()).size());
        assertProbabilities(expectedProbabilities(0), top(raw.body()));
        String json = "{\"image_base64\": \"" + Base64.getEncoder().encodeToString(png) + "\"}";
        HttpResponse<String> viaJson = post(json.getBytes(StandardCharsets.UTF_8), "application/json");
        assertEquals(200, viaJson.statusCode(), viaJson.body());
        assertEquals(top(raw.body()), top(viaJson.body()));
    }

    /** Requests at once, each with its own image, are batched and each gets its own answer. */
    @Test void concurrentRequestsGetTheirOwnAnswers() throws Exception {
        byte[][] pngs = {Files.readAllBytes(png0), Files.readAllBytes(png1)};
        List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            answers.add(http.sendAsync(HttpRequest.newBuilder(uri("/predict")).POST(HttpRequest.BodyPublishers.ofByteArray(pngs[i % 2])).build(),
                    HttpResponse.BodyHandlers.ofString()));
        }
        double[][] want = {expectedProbabilities(0), expectedProbabilities(1)};
        for (int i = 0; i < answers.size(); i++) {
            HttpResponse<String> r = answers.get(i).get();
            assertEquals(200, r.statusCode(), r.body());
            assertProbabilities(want[i % 2], top(r.body()));
        }
    }

    static void assertRefused(HttpResponse<String> r, int status, String reason) {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.body().contains("\"error\"") && r.body().contains(reason), r.body());
    }

    @Test void malformedRequestsGet4xxWithAReason() throws Exception {
        assertRefused(post("not an image".getBytes(StandardCharsets.UTF_8), "image/png"), 400, "not an image format");
        assertRefused(post(new byte[0], null), 400, "empty body");
        assertRefused(post("{\"image_base64\": ".getBytes(StandardCharsets.UTF_8), "application/json"), 400, "malformed JSON");
        assertRefused(post("{\"image\": \"x\"}".getBytes(StandardCharsets.UTF_8), "application/json"), 400, "image_base64");
        assertRefused(post("{\"image_base64\": \"!!!\"}".getBytes(StandardCharsets.UTF_8), "application/json"), 400, "not base64");
        assertRefused(post(new byte[(1 << 20) + 1], "image/png"), 413, "more than the 1048576");
        // streamed without a length (chunked): refused once it passes the cap
        HttpResponse<String> chunked = http.send(HttpRequest.newBuilder(uri("/predict"))
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(new byte[3 << 20]))).build(),
                HttpResponse.BodyHandlers.ofString());
        assertRefused(chunked, 413, "larger than");
        // a small file that decodes to 72 million pixels: refused before decoding
        BufferedImage huge = new BufferedImage(9000, 8000, BufferedImage.TYPE_BYTE_BINARY);
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        ImageIO.write(huge, "png", png);
        assertRefused(post(png.toByteArray(), "image/png"), 413, "pixels refused");
        assertRefused(http.send(HttpRequest.newBuilder(uri("/predict")).GET().build(), HttpResponse.BodyHandlers.ofString()), 405, "takes POST");
        assertRefused(http.send(HttpRequest.newBuilder(uri("/nope")).GET().build(), HttpResponse.BodyHandlers.ofString()), 404, "no such endpoint");
        assertServerStillAnswers();
    }

    /** A client that sends half its body and stalls gets 408 after the read timeout; one that vanishes costs nothing. */
    @Test void slowAndHalfSentBodiesTimeOut() throws Exception {
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(50_000);   // below the JDK's 60 s backstop, so a 408 seen is the server's own
            OutputStream out = s.getOutputStream();
            out.write(("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(new byte[10]);
            out.flush();
            String answer = readAnswer(s.getInputStream());
            assertTrue(answer.startsWith("HTTP/1.1 408"), answer);
            assertTrue(answer.contains("not received within 700 ms"), answer);
        }
        try (Socket s = new Socket("127.0.0.1", server.port())) {   // half a request, then gone
            s.getOutputStream().write("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nabc".getBytes(StandardCharsets.US_ASCII));
        }
        assertServerStillAnswers();
    }

    /**
     * More stalled clients than workers and queue places (4 + 16): the pool stays bounded (those beyond it are closed by
     * the JDK), each stalled one is answered 408 or closed, and the server answers again once they are.
     */
    @Test void aFloodOfStalledClientsDoesNotStopTheServer() throws Exception {
        List<Socket> clients = new ArrayList<>();
        try {
            for (int i = 0; i < 24; i++) {
                Socket s = new Socket("127.0.0.1", server.port());
                s.setSoTimeout(60_000);   // 24 clients, 4 workers, 0.7 s each: about 5 s, more on a loaded machine
                s.getOutputStream().write("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab".getBytes(StandardCharsets.US_ASCII));
                clients.add(s);
            }
            for (Socket s : clients) {
                String answer = readAnswer(s.getInputStream());
                assertTrue(answer.isEmpty() || answer.startsWith("HTTP/1.1 408"), answer);
            }
        } finally {
            for (Socket s : clients) s.close();
        }
        assertServerStillAnswers();
    }

    /** One HTTP answer: status line, headers and the Content-Length body; "" when the server closed without one. */
    private static String readAnswer(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        try {
            for (int c; !head.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n"); head.write(c)) {
                if ((c = in.read()) == -1) return head.toString(StandardCharsets.US_ASCII);
            }
            String h = head.toString(StandardCharsets.US_ASCII);
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)content-length: (\\d+)").matcher(h);
            return h + (m.find() ? new String(in.readNBytes(Integer.parseInt(m.group(1))), StandardCharsets.UTF_8) : "");
        } catch (java.net.SocketException e) {
            return head.toString(StandardCharsets.US_ASCII);   // reset: what was read is the answer
        }
    }

    static void assertServerStillAnswers() throws Exception {
        HttpResponse<String> health = http.send(HttpRequest.newBuilder(uri("/health")).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, health.statusCode(), health.body());
        assertTrue(health.body().contains("\"status\":\"ok\"") && health.body().contains("\"classes\":10"), health.body());
        assertEquals(200, post(Files.readAllBytes(png1), "image/png").statusCode());
    }

    @Test void metricsCountRequestsAndReportLatency() throws Exception {
        long before = server.metrics().count("/predict", 400);
        post("junk".getBytes(StandardCharsets.UTF_8), null);
        post(Files.readAllBytes(png0), null);
        assertEquals(before + 1, server.metrics().count("/predict", 400));
        long others = server.metrics().count("other", 404);
        for (int i = 0; i < 3; i++) http.send(HttpRequest.newBuilder(uri("/made-up-" + i)).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(others + 3, server.metrics().count("other", 404), "invented paths share one counter");
        HttpResponse<String> m = http.send(HttpRequest.newBuilder(uri("/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, m.statusCode());
        @SuppressWarnings("unchecked") Map<String, Object> metrics = (Map<String, Object>) Json.parse(m.body().strip());
        assertTrue(((Number) metrics.get("requests")).longValue() >= 2, m.body());
        @SuppressWarnings("unchecked") Map<String, Object> latency = (Map<String, Object>) metrics.get("latency_ms");
        double p50 = ((Number) latency.get("p50")).doubleValue(), p99 = ((Number) latency.get("p99")).doubleValue();
        assertTrue(p50 > 0 && p99 >= p50, m.body());
    }
}
