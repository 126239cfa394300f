package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.Dataset;
import dev.kiln.data.TrainingData;
import dev.kiln.nn.Model;
import dev.kiln.train.Evaluation;
import dev.kiln.train.ModelZoo;
import dev.kiln.train.TrainRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Locale;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Reports the test accuracy of a checkpoint written by 'kiln train'.")
final class EvalCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "a model.safetensors file, or the folder kiln train wrote it to")
    Path checkpoint;

    @Option(names = "--model", description = "a zoo model (default: the model named in the checkpoint)")
    String model;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--data", description = {"Fashion-MNIST IDX files, CIFAR-10 binary batches, or train/ and val/ folders of class folders",
            "of images (default: /usr/share/datasets/fashion-mnist)"})
    Path data = FashionMnist.DEFAULT_DIR;

    @Option(names = "--json", description = "print the result as JSON")
    boolean json;

    /** A checkpoint file, or a run folder holding model.safetensors (as kiln train writes it). */
    private static Path checkpointFile(Path p) throws NoSuchFileException {
        if (!Files.isDirectory(p)) return p;
        Path f = p.resolve("model.safetensors");
        if (!Files.isRegularFile(f)) throw new NoSuchFileException(p.toString(), null, "a folder without model.safetensors (give the checkpoint file or a kiln train --out folder)");
        return f;
    }

    @Override public Integer call() throws Exception {
        ModelZoo kind;
        Device dev;
        try {
            kind = model == null ? null : ModelZoo.parse(model);
            dev = Devices.parse(device);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Path file = checkpointFile(checkpoint);
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(file, kind);
        Model m = loaded.model();
        m.to(dev);
        TrainingData td = TrainingData.open(data, loaded.inputShape()[1]);
        if (!java.util.Arrays.equals(td.inputShape(), loaded.inputShape()) || td.classes().size() != loaded.classes().size()) {
            throw new IllegalArgumentException(checkpoint + " was trained on inputs " + java.util.Arrays.toString(loaded.inputShape()) + " with "
                    + loaded.classes().size() + " classes, but " + data + " holds " + td.name() + " (" + java.util.Arrays.toString(td.inputShape())
                    + ", " + td.classes().size() + " classes)");
        }
        Dataset test = td.test();
        Evaluation ev;
        try (DataLoader loader = DataLoader.builder(test).batchSize(1000).device(dev).build()) {
            ev = Evaluation.of(m, loader);
        }
        if (!Double.isFinite(ev.loss())) {
            throw new IllegalStateException(file + ": the model's test loss is " + ev.loss() + " (are its weights finite?); accuracy "
                    + String.format(Locale.ROOT, "%.4f", ev.accuracy()));
        }
        var out = spec.commandLine().getOut();
        if (json) {
            out.printf(Locale.ROOT, "{\"checkpoint\":\"%s\",\"device\":\"%s\",\"test_acc\":%.4f,\"test_loss\":%.4f,\"samples\":%d}%n",
                    file.toString().replace("\\", "\\\\").replace("\"", "\\\""), dev, ev.accuracy(), ev.loss(), ev.samples());
        } else {
            out.printf(Locale.ROOT, "%s: test accuracy %.2f%%, test loss %.4f on %,d images (%s)%n",
                    file, 100 * ev.accuracy(), ev.loss(), ev.samples(), dev);
        }
        out.flush();
        return 0;
    }
}
