package dev.kiln.train;

import dev.kiln.Generator;
import dev.kiln.nn.*;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The models {@code kiln train} knows, for 1 x 28 x 28 images and 10 classes. {@code mlp} and {@code cnn} are
 * layer for layer the models of bench/torch_ref.py (the Keras MNIST examples), so their parameter counts and
 * state-dict names match PyTorch's.
 */
public enum ModelZoo {
    /** 784-512-512-10 with ReLU and dropout 0.2: 669,706 parameters. */
    MLP("mlp"),
    /** conv 32, conv 64, max-pool, dropout .25, dense 128, dropout .5, dense 10: 1,199,882 parameters. */
    CNN("cnn"),
    /** Four 3x3 convolutions with batch norm in two pooled stages, then dense 256 with batch norm. */
    CNN_BN("cnn-bn");

    private final String cliName;

    ModelZoo(String cliName) { this.cliName = cliName; }

    public String cliName() { return cliName; }

    public static ModelZoo parse(String name) {
        for (ModelZoo m : values()) if (m.cliName.equalsIgnoreCase(name)) return m;
        throw new IllegalArgumentException("unknown model '" + name + "' (choose " + names() + ")");
    }

    public static String names() { return Arrays.stream(values()).map(ModelZoo::cliName).collect(Collectors.joining(", ")); }

    /** A fresh model with PyTorch's default initialisation drawn from g. */
    public Sequential build(Generator g) {
        return switch (this) {
            case MLP -> new Sequential(new Flatten(), new Linear(784, 512, g), new ReLU(), new Dropout(0.2, g),
                    new Linear(512, 512, g), new ReLU(), new Dropout(0.2, g), new Linear(512, 10, g));
            case CNN -> new Sequential(new Conv2d(1, 32, 3, g), new ReLU(), new Conv2d(32, 64, 3, g), new ReLU(),
                    new MaxPool2d(2), new Dropout(0.25, g), new Flatten(), new Linear(9216, 128, g),
                    new ReLU(), new Dropout(0.5, g), new Linear(128, 10, g));
            case CNN_BN -> new Sequential(
                    convBn(1, 32, g), new ReLU(), convBn(32, 32, g), new ReLU(), new MaxPool2d(2),
                    convBn(32, 64, g), new ReLU(), convBn(64, 64, g), new ReLU(), new MaxPool2d(2),
                    new Flatten(), new Linear(64 * 7 * 7, 256, false, g), new BatchNorm1d(256), new ReLU(),
                    new Dropout(0.4, g), new Linear(256, 10, g));
        };
    }

    /** A 3x3 same-padding convolution without bias (the batch norm after it has one) and its batch norm. */
    private static Sequential convBn(int in, int out, Generator g) {
        return new Sequential(new Conv2d(in, out, 3, 1, 1, 1, 1, false, g), new BatchNorm2d(out));
    }
}
