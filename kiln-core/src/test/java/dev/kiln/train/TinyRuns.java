package dev.kiln.train;

import dev.kiln.Device;
import dev.kiln.io.Safetensors;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/** Tiny Fashion-MNIST-shaped runs for the resume (and pruning) tests: random images, an MLP, a few steps. */
public final class TinyRuns {
    private TinyRuns() {}

    /** n training and m test images of random pixels, labels cycling 0..9, as uncompressed IDX files. */
    public static Path data(Path d, int n, int m) throws IOException {
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
        return config(data, out, opt, epochs, lr, LrSchedule.COSINE);
    }

    static TrainConfig config(Path data, Path out, OptimizerKind opt, int epochs, double lr, LrSchedule schedule) {
        return new TrainConfig(ModelZoo.MLP, epochs, 8, opt, lr, 7, Device.CPU, data, out, 0, 0, Precision.FP32, false, schedule);
    }

    static TrainRun.Summary run(TrainConfig cfg, TrainRun.Checkpointing ck, TrainCheckpoint.Found resume) throws IOException {
        return run(cfg, ck, resume, new StringWriter());
    }

    static TrainRun.Summary run(TrainConfig cfg, TrainRun.Checkpointing ck, TrainCheckpoint.Found resume, StringWriter log) throws IOException {
        return TrainRun.run(cfg, new PrintWriter(log, true), TrainListener.NONE, null, false, ck, resume);
    }

    /** Whether the two files hold the same tensors bit for bit (each by name, whatever their order in the file). */
    static boolean sameBits(Path expected, Path actual) throws IOException {
        var x = Safetensors.read(expected).tensors();
        var y = Safetensors.read(actual).tensors();
        if (!x.keySet().equals(y.keySet())) return false;
        for (String k : x.keySet()) if (!Arrays.equals(bits(x.get(k)), bits(y.get(k)))) return false;
        return true;
    }

    /** A float tensor's raw bits (so -0.0 and 0.0, or two NaNs, are told apart). */
    static int[] bits(dev.kiln.Tensor t) {
        float[] f = t.toFloatArray();
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) out[i] = Float.floatToRawIntBits(f[i]);
        return out;
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
        if (!sameBits(expected, actual)) {
            var x = Safetensors.read(expected);
            var y = Safetensors.read(actual);
            List<String> differ = new ArrayList<>();
            for (String k : a) if (!Arrays.equals(bits(x.tensors().get(k)), bits(y.tensors().get(k)))) differ.add(k);
            List<String> metaDiffer = new ArrayList<>();
            for (String k : x.metadata().keySet()) {
                if (!k.equals("kiln.metrics") && !java.util.Objects.equals(x.metadata().get(k), y.metadata().get(k))) {
                    metaDiffer.add(k + ": " + x.metadata().get(k) + " vs " + y.metadata().get(k));
                }
            }
            throw new AssertionError(actual + " differs from " + expected + " in its tensor bits: " + differ + "; metadata " + metaDiffer);
        }
    }
}
