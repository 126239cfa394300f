package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Fashion-MNIST (and MNIST, which has the same files) from a folder of IDX files, gzipped or not. Images become
 * float32 (N, 1, 28, 28), scaled to [0, 1] and normalised with the training set's mean and standard deviation;
 * labels int64 (N).
 */
public final class FashionMnist {
    private FashionMnist() {}

    /** Where Debian's dataset-fashion-mnist package puts the files. */
    public static final Path DEFAULT_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    /** Mean and standard deviation of the 60,000 training images' pixels in [0, 1]. */
    public static final float MEAN = 0.2860f, STD = 0.3530f;

    public static final List<String> CLASSES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    public static TensorDataset load(Path dir, boolean train) throws IOException {
        String prefix = train ? "train" : "t10k";
        Idx.Array images = Idx.read(find(dir, prefix + "-images-idx3-ubyte"));
        Idx.Array labels = Idx.read(find(dir, prefix + "-labels-idx1-ubyte"));
        int[] d = images.dims();
        if (d.length != 3 || d[1] != 28 || d[2] != 28) {
            throw new IOException(dir + ": " + prefix + " images have dims " + Arrays.toString(d) + ", expected (N, 28, 28)");
        }
        if (labels.dims().length != 1 || labels.dims()[0] != d[0]) {
            throw new IOException(dir + ": " + d[0] + " " + prefix + " images but labels of dims " + Arrays.toString(labels.dims()));
        }
        float[] x = new float[images.data().length];
        float scale = 1f / 255 / STD, shift = MEAN / STD;
        for (int i = 0; i < x.length; i++) x[i] = images.get(i) * scale - shift;
        long[] y = new long[d[0]];
        for (int i = 0; i < y.length; i++) {
            y[i] = labels.get(i);
            if (y[i] >= CLASSES.size()) throw new IOException(dir + ": label " + y[i] + " at " + i + " is not a class (0-9)");
        }
        return new TensorDataset(new Tensor(new CpuStorage(DType.FLOAT32, x), new int[]{d[0], 1, 28, 28}),
                new Tensor(new CpuStorage(DType.INT64, y), new int[]{d[0]}));
    }

    private static Path find(Path dir, String name) throws NoSuchFileException {
        for (Path p : List.of(dir.resolve(name + ".gz"), dir.resolve(name))) if (Files.isRegularFile(p)) return p;
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "no such folder; Fashion-MNIST is expected there (Debian: apt-get install dataset-fashion-mnist)");
        }
        throw new NoSuchFileException(dir.resolve(name + ".gz").toString(), null, "missing (a Fashion-MNIST folder holds train-images-idx3-ubyte.gz and three other files)");
    }
}
