package dev.kiln.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * A training set and a test set from one folder, whatever its layout: Fashion-MNIST's IDX files, CIFAR-10's binary
 * batches, or an image tree ({@code train/<class>/...} and {@code val/<class>/...} or {@code test/<class>/...}, as
 * torchvision's ImageFolder). {@code kiln train --data DIR} takes any of them.
 *
 * @param name        what was found ("fashion-mnist", "cifar10" or "image-folder")
 * @param train       the training examples
 * @param test        the held-out examples
 * @param classes     class names, by label
 * @param inputShape  one example's input shape (C, H, W)
 */
public record TrainingData(String name, Dataset train, Dataset test, List<String> classes, int[] inputShape) {

    /** Opens {@code dir}; image trees are decoded at {@code imageSize} x {@code imageSize} (RGB, ImageNet normalisation). */
    public static TrainingData open(Path dir, int imageSize) throws IOException {
        if (isIdx(dir)) {
            return new TrainingData("fashion-mnist", FashionMnist.load(dir, true), FashionMnist.load(dir, false), FashionMnist.CLASSES, new int[]{1, 28, 28});
        }
        if (Cifar10.isCifar10(dir)) {
            return new TrainingData("cifar10", Cifar10.load(dir, true), Cifar10.load(dir, false), Cifar10.CLASSES, new int[]{3, 32, 32});
        }
        Path train = dir.resolve("train"), test = Files.isDirectory(dir.resolve("val")) ? dir.resolve("val") : dir.resolve("test");
        if (Files.isDirectory(train) && Files.isDirectory(test)) {
            ImageFolder.Options opt = ImageFolder.Options.rgb(imageSize);
            ImageFolder tr = ImageFolder.open(train, opt), te = ImageFolder.open(test, opt);
            if (!tr.classes().equals(te.classes())) {
                throw new IOException(dir + ": the class folders of " + train.getFileName() + " " + tr.classes() + " and of "
                        + test.getFileName() + " " + te.classes() + " differ");
            }
            return new TrainingData("image-folder", tr, te, tr.classes(), new int[]{3, imageSize, imageSize});
        }
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "no such folder" + (dir.equals(FashionMnist.DEFAULT_DIR)
                    ? "; Fashion-MNIST is expected there (Debian: apt-get install dataset-fashion-mnist)" : ""));
        }
        throw new IOException(dir + ": not a data folder Kiln knows: expected Fashion-MNIST/MNIST IDX files "
                + "(train-images-idx3-ubyte[.gz], ...), CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin), "
                + "or train/ and val/ (or test/) folders of class folders of images");
    }

    /**
     * How one image of this data is made into an input: decoded at its input size, grey for Fashion-MNIST, with the
     * mean and std its examples are normalised by. Checkpoints record it, so {@code kiln predict} prepares images alike.
     */
    public ImageFolder.Options preprocessing() { return preprocessing(name, inputShape); }

    /** The preprocessing of data called {@code name} (as {@link #name}) with inputs of this (C, H, W) shape. */
    public static ImageFolder.Options preprocessing(String name, int[] inputShape) {
        return switch (name) {
            case "fashion-mnist" -> new ImageFolder.Options(inputShape[1], inputShape[1], 1, new float[]{FashionMnist.MEAN}, new float[]{FashionMnist.STD}, false);
            case "cifar10" -> new ImageFolder.Options(inputShape[1], inputShape[1], 3, Cifar10.MEAN, Cifar10.STD, false);
            default -> ImageFolder.Options.rgb(inputShape[1]).withChannels(inputShape[0]);
        };
    }

    private static boolean isIdx(Path dir) {
        return Files.isRegularFile(dir.resolve("train-images-idx3-ubyte.gz")) || Files.isRegularFile(dir.resolve("train-images-idx3-ubyte"));
    }

    /** The first {@code n} examples of {@code d} (all when n is 0 or more than it has). */
    public static Dataset head(Dataset d, int n) {
        if (n <= 0 || n >= d.size()) return d;
        if (d instanceof TensorDataset t) return t.head(n);
        return new Dataset() {
            @Override public int size() { return n; }

            @Override public Batch batch(int[] indices) { return d.batch(indices); }

            @Override public Dataset forEpoch(int epoch) {
                Dataset seen = d.forEpoch(epoch);
                return seen == d ? this : head(seen, n);
            }
        };
    }
}
