package dev.kiln.cli;

import dev.kiln.data.FashionMnist;
import dev.kiln.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** The command line, run in-process: exit codes and one-line messages. */
class MainTest {
    @TempDir Path dir;

    record Run(int code, String out, String err) {}

    static Run kiln(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.execute(args, new PrintWriter(out), new PrintWriter(err));
        return new Run(code, out.toString(), err.toString());
    }

    static void assertOneLineError(Run r, String expected) {
        assertNotEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace");
    }

    @Test void helpListsTheCommands() {
        Run r = kiln("--help");
        assertEquals(0, r.code());
        for (String c : new String[]{"train", "eval", "generate", "devices", "bench", "launch"}) assertTrue(r.out().contains(c), r.out());
        Run t = kiln("train", "--help");
        assertEquals(0, t.code());
        assertTrue(t.out().contains("--batch-size") && t.out().contains("--json") && t.out().contains("--limit"), t.out());
    }

    /** Every command's help formats without picocli's warnings (a bare % in a description is a format error there). */
    @Test void everyHelpFormatsCleanly() {
        java.io.PrintStream saved = System.err;
        java.io.ByteArrayOutputStream stderr = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(stderr, true));
        try {
            for (String c : new String[]{"train", "eval", "predict", "serve", "export", "prune", "quantize", "generate", "devices", "bench", "launch"}) {
                assertEquals(0, kiln(c, "--help").code(), c);
            }
        } finally {
            System.setErr(saved);
        }
        assertFalse(stderr.toString().contains("picocli WARN"), stderr.toString());
        assertTrue(kiln("train", "--help").out().contains("first 30% of the steps"));
    }

    @Test void logLevel() {
        assertOneLineError(kiln("--log-level", "loud", "devices"), "unknown log level 'loud'");
        assertOneLineError(kiln("devices", "--log-level", "loud"), "unknown log level 'loud'");
        Run r = kiln("devices", "--log-level", "debug");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("float vectors, GEMM kernel " + dev.kiln.cpu.CpuBackend.INSTANCE.gemmKernel()
                + ", int8 kernel " + dev.kiln.cpu.CpuBackend.INSTANCE.int8Kernel()
                + ", 3x3 convolution kernel " + dev.kiln.cpu.CpuBackend.INSTANCE.conv3x3Kernel()), r.out());
        assertTrue(System.getLogger("dev.kiln.cli.MainTest").isLoggable(System.Logger.Level.DEBUG), "--log-level debug turned debug on");
        assertEquals(0, kiln("devices", "--log-level", "warning").code());
        assertFalse(System.getLogger("dev.kiln.cli.MainTest").isLoggable(System.Logger.Level.INFO), "--log-level warning turned info off");
        kiln("devices");
        assertTrue(System.getLogger("dev.kiln.cli.MainTest").isLoggable(System.Logger.Level.INFO), "each run starts from KILN_LOG_LEVEL (info)");
    }

    /** A command that runs the heap out (as a GPT at batch 64 x 256 did in the JVM's default quarter of memory). */
    @picocli.CommandLine.Command(name = "hungry")
    static final class Hungry implements Runnable {
        @Override public void run() { throw new OutOfMemoryError("Java heap space"); }
    }

    @Test void outOfMemoryIsOneLine() {
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = new picocli.CommandLine(new Hungry());
        int code = Main.executeReportingMemory(cl, new String[0], new PrintWriter(err));
        assertOneLineError(new Run(code, "", err.toString()), "out of memory (Java heap space); try a smaller --batch-size or a larger -Xmx in KILN_JAVA_OPTS");
    }

    @Test void unknownModel() {
        assertOneLineError(kiln("train", "--model", "resnet9000"), "unknown model 'resnet9000' (choose mlp, cnn, cnn-bn, resnet-small, resnet18, resnet34, resnet50, gpt, lstm)");
    }

    @Test void badEpochs() {
        assertOneLineError(kiln("train", "--epochs", "0"), "--epochs must be >= 1");
        assertOneLineError(kiln("train", "--epochs", "many"), "'many' is not an int");
    }

    @Test void badDevice() {
        assertOneLineError(kiln("train", "--device", "tpu"), "bad device 'tpu'");
    }

    @Test void cudaGraphsNeedACudaDevice() {
        assertOneLineError(kiln("train", "--device", "cpu", "--cuda-graphs"), "--cuda-graphs needs a CUDA device, got cpu");
        assertOneLineError(kiln("train", "--device", "cpu", "--cuda-graphs=maybe"), "--cuda-graphs takes auto, on or off, got 'maybe'");
        Run t = kiln("train", "--help");
        assertTrue(t.out().contains("--cuda-graphs"), t.out());
        Run b = kiln("bench", "--help");
        assertTrue(b.out().contains("--cuda-graphs"), b.out());
    }

    /** kiln bench --channels-last as kiln train's: a bad value is one line; on, the CPU runs the image rows from channels-last inputs. */
    @Test void benchChannelsLast() {
        assertOneLineError(kiln("bench", "--only", "cnn_b128", "--channels-last=maybe"), "--channels-last takes auto, on or off, got 'maybe'");
        Run r = kiln("bench", "--device", "cpu", "--only", "cifar_cnn_b128", "--channels-last", "--json");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().matches("(?s).*\"cifar_cnn_b128_fp32_train_samples_s\": [1-9][0-9]*.*"), r.out());
    }

    /** A mistyped --only is an error naming it and the workloads there are, not a run that quietly measures nothing. */
    @Test void benchOnlyMatchingNothingSaysSo() {
        Run r = kiln("bench", "--only", "gemm_1024_flaot32");
        assertOneLineError(r, "--only gemm_1024_flaot32 matches no workload on cpu");
        assertTrue(r.err().contains("gemm_1024_float32_gflops"), "the workloads there are: " + r.err());
    }

    /** Without that GPU the reason is one short line, not the list of every folder the library search tried. */
    @Test void anUnusableGpuIsOneShortLine() {
        Run r = kiln("train", "--device", "cuda:7");
        assertOneLineError(r, "--device cuda:7 is not usable");
        assertTrue(r.err().strip().length() < 300, r.err().length() + " characters: " + r.err());
    }

    @Test void outNamingAFileFailsBeforeTraining() throws IOException {
        Path file = Files.writeString(dir.resolve("taken"), "x");
        Path data = fakeFashionMnist(dir.resolve("tiny"), 32, 16);
        Run r = kiln("train", "--model", "mlp", "--data", data.toString(), "--out", file.toString());
        assertOneLineError(r, file + ": --out names a file, not a folder");
        assertFalse(r.out().contains("epoch 1/1"), "no training before the check");
        assertEquals("x", Files.readString(file), "the file is left as it was");
    }

    @Test void badPrecision() {
        assertOneLineError(kiln("train", "--precision", "fp8"), "unknown precision 'fp8' (choose fp32, tf32, bf16, fp16)");
    }

    @Test void bf16AndFp16TrainOnTheCpuWithAWarning() throws IOException {
        Path data = fakeFashionMnist(dir.resolve("tiny"), 32, 16);
        for (String p : new String[]{"bf16", "fp16"}) {
            Run r = kiln("train", "--model", "mlp", "--batch-size", "16", "--precision", p, "--data", data.toString(),
                    "--out", dir.resolve(p).toString(), "--json");
            assertEquals(0, r.code(), r.toString());
            assertTrue(r.out().contains("warning: --precision " + p + " on the CPU"), r.out());
            assertTrue(r.out().strip().endsWith("}") && r.out().contains("\"precision\":\"" + p + "\""), r.out());
        }
        assertTrue(kiln("train", "--model", "mlp", "--precision", "fp16", "--data", data.toString(), "--out", dir.resolve("f").toString())
                .out().contains("fp16 loss scale"), "an fp16 run reports its loss scale");
    }

    @Test void missingDataFolder() {
        Path nowhere = dir.resolve("nowhere");
        Run r = kiln("train", "--data", nowhere.toString(), "--out", dir.resolve("o").toString());
        assertOneLineError(r, "no such folder");
        assertEquals(1, r.code());
    }

    @Test void corruptDataset() throws IOException {
        Path data = dir.resolve("data");
        Files.createDirectories(data);
        for (String f : new String[]{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
            Files.write(data.resolve(f), new byte[]{0x1f, (byte) 0x8b, 8, 0, 1, 2, 3}); // a gzip header and then nothing sensible
        }
        assertOneLineError(kiln("train", "--data", data.toString(), "--out", dir.resolve("o").toString()), "train-images-idx3-ubyte.gz");
    }

    @Test void missingOrCorruptCheckpoint() throws IOException {
        assertOneLineError(kiln("eval", dir.resolve("none.safetensors").toString()), "none.safetensors");
        Path bad = dir.resolve("bad.safetensors");
        Files.write(bad, new byte[20]);
        assertOneLineError(kiln("eval", bad.toString()), "not a valid safetensors file");
    }

    @Test void noCommandIsAUsageError() {
        Run r = kiln();
        assertEquals(2, r.code());
        assertTrue(r.err().contains("missing command"), r.err());
    }

    @Test void devicesSaysWhatThereIs() {
        Run r = kiln("devices");
        assertEquals(0, r.code());
        assertTrue(r.out().startsWith("cpu"), r.out());
        assertTrue(r.out().contains(Runtime.getRuntime().availableProcessors() + " cores"), r.out());
        if (dev.kiln.cuda.Cuda.isAvailable()) {
            assertTrue(r.out().contains("cuda:0"), "a machine with a GPU lists it: " + r.out());
        } else {
            assertTrue(r.out().contains("no NVIDIA GPU found ("), "a machine without one says so, and why: " + r.out());
        }
        assertTrue(r.out().contains("libraries: ") && r.out().contains("cuDNN"), "the libraries found or not: " + r.out());
    }

    /** A whole run on a tiny fake data set: the files land in --out, --json ends the output, eval reads the checkpoint. */
    @Test void trainThenEvalOnATinyDataset() throws IOException {
        Path data = fakeFashionMnist(dir.resolve("tiny"), 64, 32);
        Path out = dir.resolve("run");
        Run r = kiln("train", "--model", "mlp", "--epochs", "2", "--batch-size", "16", "--data", data.toString(), "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.toString());
        for (String f : new String[]{"model.safetensors", "metrics.csv", "chart.png"}) assertTrue(Files.size(out.resolve(f)) > 0, f);
        String[] lines = r.out().strip().split("\n");
        String last = lines[lines.length - 1];
        assertTrue(last.matches("\\{\"model\":\"mlp\",\"device\":\"cpu\",\"precision\":\"fp32\",\"epochs\":2,\"test_acc\":[0-9.]+,\"train_samples_per_s\":[0-9.]+,\"seconds\":[0-9.]+}"), last);
        assertTrue(r.out().contains("epoch 2/2") && r.out().contains(out.resolve("model.safetensors").toString()), r.out());
        assertEquals(3, Files.readAllLines(out.resolve("metrics.csv")).size(), "a header and a line per epoch");
        assertEquals("mlp", Safetensors.read(out.resolve("model.safetensors")).metadata().get("kiln.model"));

        Run e = kiln("eval", out.resolve("model.safetensors").toString(), "--data", data.toString());
        assertEquals(0, e.code(), e.toString());
        assertTrue(e.out().contains("test accuracy") && e.out().contains("on 32 images"), e.out());
        assertOneLineError(kiln("eval", out.resolve("model.safetensors").toString(), "--model", "cnn", "--data", data.toString()), "does not fit model cnn");

        // the same --out again would replace that run: refused, unless asked for
        assertOneLineError(kiln("train", "--model", "mlp", "--data", data.toString(), "--out", out.toString()),
                out + ": holds an earlier run (model.safetensors); pass --overwrite");
        assertEquals(0, kiln("train", "--model", "mlp", "--batch-size", "16", "--data", data.toString(), "--out", out.toString(), "--overwrite").code());

        // the run folder works as the checkpoint; a folder without one is named
        assertEquals(0, kiln("eval", out.toString(), "--data", data.toString(), "--json").code());
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertOneLineError(kiln("eval", empty.toString()), empty + ": a folder without model.safetensors");

        // NaN weights: a clear failure, never "test_loss":NaN in JSON
        var c = Safetensors.read(out.resolve("model.safetensors"));
        var tensors = new java.util.LinkedHashMap<>(c.tensors());
        tensors.put("1.weight", tensors.get("1.weight").mul(Double.NaN));
        Path nan = dir.resolve("nan.safetensors");
        Safetensors.write(nan, tensors, c.metadata());
        Run n = kiln("eval", nan.toString(), "--data", data.toString(), "--json");
        assertOneLineError(n, "test loss is NaN");
        assertFalse(n.out().contains("NaN"), n.out());
    }

    /** Random images of the right format: n training and m test images with labels cycling 0..9. */
    static Path fakeFashionMnist(Path d, int n, int m) throws IOException {
        Files.createDirectories(d);
        java.util.Random rng = new java.util.Random(0);
        for (String[] set : new String[][]{{"train", Integer.toString(n)}, {"t10k", Integer.toString(m)}}) {
            int count = Integer.parseInt(set[1]);
            byte[] pixels = new byte[count * 784], labels = new byte[count];
            rng.nextBytes(pixels);
            for (int i = 0; i < count; i++) labels[i] = (byte) (i % 10);
            Files.write(d.resolve(set[0] + "-images-idx3-ubyte.gz"), gzip(idx(new int[]{count, 28, 28}, pixels)));
            Files.write(d.resolve(set[0] + "-labels-idx1-ubyte.gz"), gzip(idx(new int[]{count}, labels)));
        }
        assertTrue(Files.isDirectory(d) && FashionMnist.CLASSES.size() == 10);
        return d;
    }

    private static byte[] idx(int[] dims, byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[]{0, 0, 8, (byte) dims.length});
        for (int x : dims) out.writeBytes(new byte[]{(byte) (x >>> 24), (byte) (x >>> 16), (byte) (x >>> 8), (byte) x});
        out.writeBytes(data);
        return out.toByteArray();
    }

    private static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(raw);
        }
        return out.toByteArray();
    }

    @Test void channelsLastTrainsTheSameModel() throws IOException {
        // a few CIFAR-10 records (3 channels, so the activations really are channels-last; the CPU computes on copies)
        Path data = Files.createDirectories(dir.resolve("cifar"));
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
        for (String f : new String[]{"data_batch_1.bin", "test_batch.bin"}) {
            byte[] b = new byte[16 * dev.kiln.data.Cifar10.RECORD];
            rnd.nextBytes(b);
            for (int k = 0; k < 16; k++) b[k * dev.kiln.data.Cifar10.RECORD] = (byte) (k % 10);
            Files.write(data.resolve(f), b);
        }
        java.util.List<float[]> weights = new java.util.ArrayList<>();
        for (boolean cl : new boolean[]{false, true}) {
            Path out = dir.resolve(cl ? "cl" : "plain");
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("train", "--model", "resnet-small", "--batch-size", "8",
                    "--data", data.toString(), "--device", "cpu", "--out", out.toString()));
            if (cl) args.add("--channels-last");
            Run r = kiln(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.toString());
            weights.add(Safetensors.read(out.resolve("model.safetensors")).tensors().get("conv1.weight").toFloatArray());
        }
        assertArrayEquals(weights.get(0), weights.get(1), 1e-5f, "the stem's weights after training, NCHW and channels-last");
    }

    @Test void launchStartsOneProcessPerRankWithTheirRank() {
        Run r = kiln("launch", "--nproc-per-node", "2", "--master-port", "29517", "--", "devices");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("[rank 0] cpu") && r.out().contains("[rank 1] cpu"), r.out());
    }

    @Test void launchAcrossHostsNeedsOneToken() {
        assertOneLineError(kiln("launch", "--nproc-per-node", "1", "--nnodes", "2", "--", "devices"), "needs the same --token on each");
    }

    @Test void ranksNameAMissingRunToResume() {
        // WORLD_SIZE cannot be set in-process: the launcher passes it to a child, which says so in one line and fails
        Run r = kiln("launch", "--nproc-per-node", "2", "--master-port", "29518", "--grace", "5", "--", "train", "--resume", "runs/none");
        assertNotEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("[rank 0] kiln train: runs/none") && r.out().contains("kiln launch: rank"), r.out());
    }

    @Test void aGpuOutOfMemoryIsTheAllocatorsMessageNotAnInternalError() {
        String m = "cuda:0 out of memory: tried to allocate 31,360,000 bytes ...; try a smaller batch (--batch-size)";
        assertEquals(m, Main.message(new dev.kiln.cuda.CudaException.OutOfMemory(m)));
    }
}
