package dev.kiln.train;

import dev.kiln.Device;
import dev.kiln.io.Safetensors;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/** Tiny Fashion-MNIST-shaped runs for the resume tests: random images, an MLP, a few steps. */
final class TinyRuns {
    private TinyRuns() {}

    /** n training and m test images of random pixels, labels cycling 0..9, as uncompressed IDX files. */
    static Path data(Path d, int n, int m) throws IOException {
        Files.createDirectories(d);
        Random rng = new Random(0);
        for (String set : new String[]{"train", "t10k"}) {
            int count = set.equals("train") ? n : m;
            byte[] pixels = new byte[count * 784], labels = new byte[count];
            rng.nextBytes(pixels);
            for (int i = 0; i < count; i++) labels[i] = (byte) (i % 10);
            Files.write(d.resolve(set + "-images-idx3-ubyte"), idx(new int[]{count, 28, 28}, pixels));
            Files.write(d.resolve(set + "-labels-idx1-ubyte"), idx(new int[]{count}, labels));
        }
        return d;
    }

    private static byte[] idx(int[] dims, byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[]{0, 0, 8, (byte) dims.length});
        for (int x : dims) out.writeBytes(new byte[]{(byte) (x >>> 24), (byte) (x >>> 16), (byte) (x >>> 8), (byte) x});
        out.writeBytes(data);
        return out.toByteArray();
    }

    /** The MLP (it has dropout, so the generator's state matters) on the CPU, batch 8. */
    static TrainConfig config(Path data, Path out, OptimizerKind opt, int epochs, double lr) {
        return new TrainConfig(ModelZoo.MLP, epochs, 8, opt, lr, 7, Device.CPU, data, out, 0, 0, Precision.FP32, false, LrSchedule.COSINE);
    }

    static TrainRun.Summary run(TrainConfig cfg, TrainRun.Checkpointing ck, TrainCheckpoint.Found resume) throws IOException {
        return run(cfg, ck, resume, new StringWriter());
    }

    static TrainRun.Summary run(TrainConfig cfg, TrainRun.Checkpointing ck, TrainCheckpoint.Found resume, StringWriter log) throws IOException {
        return TrainRun.run(cfg, new PrintWriter(log, true), TrainListener.NONE, null, false, ck, resume);
    }

    /** The tensor bytes of a safetensors file (everything after its header): equal bytes are equal tensors, bit for bit. */
    static byte[] tensorBytes(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long headerLen = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return Arrays.copyOfRange(all, (int) (8 + headerLen), all.length);
    }

    /** The newest checkpoint of a run folder. */
    static Path newest(Path run) throws IOException {
        return TrainCheckpoint.checkpoints(run.resolve(TrainCheckpoint.DIR)).getLast();
    }

    /** Fails unless the two files hold the same tensor names with the same bits. */
    static void assertSameTensors(Path expected, Path actual) throws IOException {
        var a = Safetensors.read(expected).tensors().keySet();
        var b = Safetensors.read(actual).tensors().keySet();
        if (!a.equals(b)) throw new AssertionError("tensor names differ: " + a + " vs " + b);
        if (!Arrays.equals(tensorBytes(expected), tensorBytes(actual))) throw new AssertionError(actual + " differs from " + expected + " in its tensor bits");
    }
}
