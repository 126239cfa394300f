package dev.kiln.train;

import dev.kiln.Generator;
import dev.kiln.models.ResNet;
import dev.kiln.nn.*;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The models {@code kiln train} knows. {@code mlp} and {@code cnn} are layer for layer the models of
 * bench/torch_ref.py (the Keras MNIST examples), so for 1 x 28 x 28 images and 10 classes their parameter counts and
 * state-dict names match PyTorch's; the ResNets are torchvision's ({@link ResNet}). Each takes the data's input shape
 * (C, H, W) and class count, and says clearly when it cannot.
 */
public enum ModelZoo {
    /** 784-512-512-10 with ReLU and dropout 0.2: 669,706 parameters on Fashion-MNIST. */
    MLP("mlp"),
    /** conv 32, conv 64, max-pool, dropout .25, dense 128, dropout .5, dense 10: 1,199,882 parameters on Fashion-MNIST. */
    CNN("cnn"),
    /** Four 3x3 convolutions with batch norm in two pooled stages, then dense 256 with batch norm. */
    CNN_BN("cnn-bn"),
    /** A small ResNet for 28x28 / 32x32 images (three stages of two basic blocks, 32-64-128 channels). */
    RESNET_SMALL("resnet-small"),
    /** torchvision's ResNet-18 (3-channel images, 224x224 by default). */
    RESNET18("resnet18"),
    /** torchvision's ResNet-34. */
    RESNET34("resnet34"),
    /** torchvision's ResNet-50. */
    RESNET50("resnet50");

    private final String cliName;

    ModelZoo(String cliName) { this.cliName = cliName; }

    public String cliName() { return cliName; }

    public static ModelZoo parse(String name) {
        for (ModelZoo m : values()) if (m.cliName.equalsIgnoreCase(name)) return m;
        throw new IllegalArgumentException("unknown model '" + name + "' (choose " + names() + ")");
    }

    public static String names() { return Arrays.stream(values()).map(ModelZoo::cliName).collect(Collectors.joining(", ")); }

    /** The side images of a folder tree are decoded at for this model: ImageNet's 224 for the large ResNets, else 32. */
    public int imageSize() {
        return switch (this) {
            case RESNET18, RESNET34, RESNET50 -> 224;
            case MLP, CNN, CNN_BN, RESNET_SMALL -> 32;
        };
    }

    /** A fresh model for Fashion-MNIST (1 x 28 x 28, 10 classes) with PyTorch's default initialisation drawn from g. */
    public Model build(Generator g) { return build(g, new int[]{1, 28, 28}, 10); }

    /** A fresh model for inputs of shape (C, H, W) and {@code classes} classes. */
    public Model build(Generator g, int[] input, int classes) {
        if (input.length != 3 || classes < 2) throw new IllegalArgumentException(cliName + ": needs (C, H, W) inputs and at least 2 classes");
        int c = input[0], h = input[1], w = input[2];
        return switch (this) {
            case MLP -> new Sequential(new Flatten(), new Linear(c * h * w, 512, g), new ReLU(), new Dropout(0.2, g),
                    new Linear(512, 512, g), new ReLU(), new Dropout(0.2, g), new Linear(512, classes, g));
            case CNN -> {
                if (h < 6 || w < 6) throw new IllegalArgumentException("cnn: images of at least 6x6, got " + h + "x" + w);
                yield new Sequential(new Conv2d(c, 32, 3, g), new ReLU(), new Conv2d(32, 64, 3, g), new ReLU(),
                        new MaxPool2d(2), new Dropout(0.25, g), new Flatten(), new Linear(64 * ((h - 4) / 2) * ((w - 4) / 2), 128, g),
                        new ReLU(), new Dropout(0.5, g), new Linear(128, classes, g));
            }
            case CNN_BN -> new Sequential(
                    convBn(c, 32, g), new ReLU(), convBn(32, 32, g), new ReLU(), new MaxPool2d(2),
                    convBn(32, 64, g), new ReLU(), convBn(64, 64, g), new ReLU(), new MaxPool2d(2),
                    new Flatten(), new Linear(64 * (h / 4) * (w / 4), 256, false, g), new BatchNorm1d(256), new ReLU(),
                    new Dropout(0.4, g), new Linear(256, classes, g));
            case RESNET_SMALL -> ResNet.small(c, classes, g);
            case RESNET18 -> ResNet.resnet18(requireImages(input, classes), g);
            case RESNET34 -> ResNet.resnet34(requireImages(input, classes), g);
            case RESNET50 -> ResNet.resnet50(requireImages(input, classes), g);
        };
    }

    /** torchvision's ResNets take 3-channel images; returns classes. */
    private int requireImages(int[] input, int classes) {
        if (input[0] != 3 || input[1] < 32 || input[2] < 32) {
            throw new IllegalArgumentException(cliName + " takes 3-channel images of at least 32x32 (224x224 as torchvision), got "
                    + input[0] + "x" + input[1] + "x" + input[2] + "; for small or 1-channel images use resnet-small");
        }
        return classes;
    }

    /** A 3x3 same-padding convolution without bias (the batch norm after it has one) and its batch norm. */
    private static Sequential convBn(int in, int out, Generator g) {
        return new Sequential(new Conv2d(in, out, 3, 1, 1, 1, 1, false, g), new BatchNorm2d(out));
    }
}
