package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CIFAR-10 in its binary version ({@code cifar-10-batches-bin}): files of 10,000 records, each one label byte then
 * 3,072 pixel bytes (the red, green and blue 32x32 planes). Images become float32 (N, 3, 32, 32) in [0, 1],
 * normalised per channel with the training set's mean and standard deviation; labels int64 (N). A file whose size is
 * not a whole number of records, or a label outside 0-9, is an error naming the file.
 */
public final class Cifar10 {
    private Cifar10() {}

    /** Bytes of one record: the label, then 3 x 32 x 32 pixels. */
    public static final int RECORD = 1 + 3 * 32 * 32;

    /** Per-channel mean and standard deviation of the 50,000 training images in [0, 1]. */
    public static final float[] MEAN = {0.4914f, 0.4822f, 0.4465f}, STD = {0.2470f, 0.2435f, 0.2616f};

    public static final List<String> CLASSES = List.of("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
            "horse", "ship", "truck");

    /** Whether {@code dir} (or its {@code cifar-10-batches-bin} subfolder) holds the binary batches. */
    public static boolean isCifar10(Path dir) { return Files.isRegularFile(folder(dir).resolve("test_batch.bin")); }

    /**
     * The training set (data_batch_1..5.bin, as many as are there) or the test set (test_batch.bin).
     *
     * @throws IOException a batch file whose size is not a whole number of records, a label outside 0-9, or a file
     *     that cannot be read, the message naming the file; {@link NoSuchFileException} when no batch is there
     */
    public static TensorDataset load(Path dir, boolean train) throws IOException {
        Path d = folder(dir);
        List<Path> files = new ArrayList<>();
        if (train) {
            for (int i = 1; i <= 5; i++) if (Files.isRegularFile(d.resolve("data_batch_" + i + ".bin"))) files.add(d.resolve("data_batch_" + i + ".bin"));
        } else if (Files.isRegularFile(d.resolve("test_batch.bin"))) {
            files.add(d.resolve("test_batch.bin"));
        }
        if (files.isEmpty()) {
            throw new NoSuchFileException(d.toString(), null, "no CIFAR-10 binary batches (" + (train ? "data_batch_1.bin" : "test_batch.bin") + ") here");
        }
        long total = 0;
        for (Path f : files) {
            long size = Files.size(f);
            if (size == 0 || size % RECORD != 0) {
                throw new IOException(f + ": " + size + " bytes is not a whole number of " + RECORD + "-byte CIFAR-10 records");
            }
            if (size > Integer.MAX_VALUE - 8) throw new IOException(f + ": " + size + " bytes, more than one CIFAR-10 batch file can be");
            total += size / RECORD;
        }
        if (total * 3 * 32 * 32 > Integer.MAX_VALUE - 8) throw new IOException(d + ": too many CIFAR-10 records (" + total + ") for one dataset");
        int n = (int) total, plane = 32 * 32;
        float[] x = new float[n * 3 * plane];
        long[] y = new long[n];
        int row = 0;
        for (Path f : files) {
            byte[] bytes = Files.readAllBytes(f);
            // the sizes above were measured before reading: a file that changed since would overrun the arrays
            if (bytes.length % RECORD != 0 || row + bytes.length / RECORD > n) {
                throw new IOException(f + ": changed while it was read (" + bytes.length + " bytes)");
            }
            for (int r = 0; r < bytes.length / RECORD; r++, row++) {
                int at = r * RECORD, label = bytes[at] & 0xFF;
                if (label >= CLASSES.size()) throw new IOException(f + ": label " + label + " of record " + r + " is not a class (0-9)");
                y[row] = label;
                for (int c = 0; c < 3; c++) {
                    float scale = 1f / 255 / STD[c], shift = MEAN[c] / STD[c];
                    int src = at + 1 + c * plane, dst = (row * 3 + c) * plane;
                    for (int i = 0; i < plane; i++) x[dst + i] = (bytes[src + i] & 0xFF) * scale - shift;
                }
            }
        }
        return new TensorDataset(new Tensor(new CpuStorage(DType.FLOAT32, x), new int[]{n, 3, 32, 32}),
                new Tensor(new CpuStorage(DType.INT64, y), new int[]{n}));
    }

    private static Path folder(Path dir) {
        Path sub = dir.resolve("cifar-10-batches-bin");
        return Files.isDirectory(sub) ? sub : dir;
    }
}
