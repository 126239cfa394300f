package dev.kiln.examples;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TensorDataset;
import dev.kiln.nn.*;
import dev.kiln.optim.Adam;
import dev.kiln.train.GraphedStep;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A small residual CNN written against Kiln's API, trained with Adam on Fashion-MNIST (or, without it, on
 * synthetic images): {@code ./run.sh [--steps N] [--device cpu|cuda]}. Exits 1 if the loss did not go down.
 */
public final class ResNetExample {
    // README:begin
    /** conv-BN-ReLU, conv-BN, plus the input (through a 1x1 conv where the shape changes), then ReLU. */
    static final class ResidualBlock extends Layer implements Forward {
        private final Conv2d conv1, conv2;
        private final BatchNorm2d bn1, bn2;
        private final Sequential shortcut; // null when the shape stays

        ResidualBlock(int in, int out, int stride, Generator g) {
            conv1 = registerLayer("conv1", new Conv2d(in, out, 3, stride, 1, 1, 1, false, g));
            bn1 = registerLayer("bn1", new BatchNorm2d(out));
            conv2 = registerLayer("conv2", new Conv2d(out, out, 3, 1, 1, 1, 1, false, g));
            bn2 = registerLayer("bn2", new BatchNorm2d(out));
            shortcut = in == out && stride == 1 ? null : registerLayer("shortcut",
                    new Sequential(new Conv2d(in, out, 1, stride, 0, 1, 1, false, g), new BatchNorm2d(out)));
        }

        @Override public Tensor forward(Tensor x) {
            Tensor y = bn2.forward(conv2.forward(bn1.forward(conv1.forward(x)).relu()));
            return y.add(shortcut == null ? x : shortcut.forward(x)).relu();
        }
    }

    static final class ResNet extends Layer implements Forward {
        private final Sequential stem, blocks;
        private final Linear head;

        ResNet(Generator g) {
            stem = registerLayer("stem", new Sequential(new Conv2d(1, 8, 3, 1, 1, 1, 1, false, g), new BatchNorm2d(8), new ReLU()));
            blocks = registerLayer("blocks", new Sequential(
                    new ResidualBlock(8, 8, 1, g), new ResidualBlock(8, 16, 2, g), new ResidualBlock(16, 32, 2, g)));
            head = registerLayer("head", new Linear(32, 10, g));
        }

        @Override public Tensor forward(Tensor x) {
            Tensor features = blocks.forward(stem.forward(x));          // (N, 32, 7, 7)
            return head.forward(features.mean(new int[]{2, 3}, false)); // global average pooling, then the classifier
        }
    }

    /** Trains for {@code steps} batches, one MemoryScope each (it frees the step's activations); returns the losses. */
    static double[] train(ResNet model, DataLoader loader, int steps) {
        var optimizer = new Adam(model.parameters(), 1e-3);
        double[] losses = new double[steps];
        for (int step = 0; step < steps; ) {
            for (Batch b : loader) {
                if (step == steps) break;
                try (var scope = MemoryScope.open()) {
                    optimizer.zeroGrad();
                    Tensor logits = model.forward(b.inputs());
                    Tensor loss = F.crossEntropy(logits, b.targets());
                    loss.backward();
                    optimizer.step();
                    losses[step++] = loss.item();
                    if (step % 10 == 0 || step == 1) System.out.printf("step %4d  loss %.4f%n", step, losses[step - 1]);
                    if (step == steps) System.out.printf("final training-batch accuracy %.3f%n", accuracy(logits, b.targets()));
                }
            }
        }
        return losses;
    }
    // README:end

    /** The same loop with the step graphed in one call (on CUDA: captured once, then replayed; batch norm included). */
    static double[] trainGraphed(ResNet model, DataLoader loader, int steps) {
        var optimizer = new Adam(model.parameters(), 1e-3);
        double[] losses = new double[steps];
        try (GraphedStep graphed = GraphedStep.of(optimizer, (x, y) -> {
            optimizer.zeroGrad();
            Tensor loss = F.crossEntropy(model.forward(x), y);
            loss.backward();
            optimizer.step();
            return loss;
        })) {
            for (int step = 0; step < steps; ) {
                for (Batch b : loader) {
                    if (step == steps) break;
                    try (var scope = MemoryScope.open()) {
                        losses[step++] = graphed.step(b.inputs(), b.targets()).item();
                    }
                }
            }
        }
        return losses;
    }

    static double accuracy(Tensor logits, Tensor targets) {
        return logits.argmax(1, false).eq(targets).to(DType.INT64).sum().item() / targets.size(0);
    }

    public static void main(String[] args) throws IOException {
        int steps = 100, batch = 64;
        Device device = Device.CPU;
        Path dir = FashionMnist.DEFAULT_DIR;
        boolean bench = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--device" -> device = Device.parse(args[++i]);
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--data" -> dir = Path.of(args[++i]);
                case "--bench" -> bench = true;
                default -> {
                    System.err.println("usage: run.sh [--steps N] [--device cpu|cuda] [--batch N] [--data DIR] [--bench]");
                    System.exit(2);
                }
            }
        }
        TensorDataset data = Files.isDirectory(dir) ? FashionMnist.load(dir, true) : synthetic(steps * batch, new Generator(1));
        if (bench) {
            bench(data, batch, steps, device);
            return;
        }
        System.out.println((Files.isDirectory(dir) ? "Fashion-MNIST" : "synthetic data") + ", " + data.size()
                + " images, " + steps + " steps of " + batch + " on " + device);

        long start = System.nanoTime();
        ResNet model = new ResNet(new Generator(0)).to(device);
        System.out.println("ResNet: " + model.parameterCount() + " parameters");
        double[] losses;
        try (DataLoader loader = DataLoader.builder(data).batchSize(batch).shuffle(0).dropLast(true).device(device).build()) {
            losses = train(model, loader, steps);
        }
        int k = Math.max(1, Math.min(5, steps / 4));
        double first = mean(losses, 0, k), last = mean(losses, steps - k, steps);
        System.out.printf("mean loss of the first %d steps %.4f, of the last %d %.4f (%.1f s)%n", k, first, k, last, (System.nanoTime() - start) / 1e9);
        if (!(last < first)) {
            System.err.println("the loss did not go down");
            System.exit(1);
        }
    }

    /**
     * The loop's speed once warm: steps / 5 steps first (kernel compilation, cuDNN's algorithm search, the JIT), then
     * the rest timed; bench/torch_user_resnet.py runs PyTorch's copy of this model and loop the same way.
     */
    static void bench(TensorDataset data, int batch, int steps, Device device) {
        time("kiln", ResNetExample::train, data, batch, steps, device);
        if (device.isCuda()) time("kiln graphed", ResNetExample::trainGraphed, data, batch, steps, device);
    }

    interface Loop { double[] run(ResNet model, DataLoader loader, int steps); }

    private static void time(String framework, Loop loop, TensorDataset data, int batch, int steps, Device device) {
        ResNet model = new ResNet(new Generator(0)).to(device);
        try (DataLoader loader = DataLoader.builder(data).batchSize(batch).shuffle(0).dropLast(true).device(device).build()) {
            loop.run(model, loader, Math.max(1, steps / 5));
            long t = System.nanoTime();
            loop.run(model, loader, steps);
            double s = (System.nanoTime() - t) / 1e9;
            System.out.printf("{\"model\":\"user_resnet\",\"framework\":\"%s\",\"device\":\"%s\",\"batch\":%d,\"steps\":%d,\"samples_per_s\":%.1f}%n",
                    framework, device, batch, steps, steps * batch / s);
        }
    }

    private static double mean(double[] v, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) s += v[i];
        return s / (to - from);
    }

    /** Ten classes of 1 x 28 x 28 images: a random template per class plus noise. */
    static TensorDataset synthetic(int n, Generator g) {
        Tensor templates = Tensor.randn(g, 10, 1, 28, 28);
        long[] labels = new long[n];
        for (int i = 0; i < n; i++) labels[i] = i % 10;
        Tensor y = Tensor.of(labels, n);
        Tensor x = templates.indexSelect(0, y).add(Tensor.randn(g, n, 1, 28, 28).mul(2));
        return new TensorDataset(x, y);
    }
}
