package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TensorDataset;
import dev.kiln.nn.Sequential;
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
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Reports the test accuracy of a checkpoint written by 'kiln train'.")
final class EvalCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "a model.safetensors file")
    Path checkpoint;

    @Option(names = "--model", description = "mlp, cnn or cnn-bn (default: the model named in the checkpoint)")
    String model;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--data", description = "folder with the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)")
    Path data = FashionMnist.DEFAULT_DIR;

    @Option(names = "--json", description = "print the result as JSON")
    boolean json;

    @Override public Integer call() throws Exception {
        ModelZoo kind;
        Device dev;
        try {
            kind = model == null ? null : ModelZoo.parse(model);
            dev = Devices.parse(device);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Sequential m = TrainRun.loadCheckpoint(checkpoint, kind).to(dev);
        TensorDataset test = FashionMnist.load(data, false);
        Evaluation ev;
        try (DataLoader loader = DataLoader.builder(test).batchSize(1000).device(dev).build()) {
            ev = Evaluation.of(m, loader);
        }
        var out = spec.commandLine().getOut();
        if (json) {
            out.printf(Locale.ROOT, "{\"checkpoint\":\"%s\",\"device\":\"%s\",\"test_acc\":%.4f,\"test_loss\":%.4f,\"samples\":%d}%n",
                    checkpoint.toString().replace("\\", "\\\\").replace("\"", "\\\""), dev, ev.accuracy(), ev.loss(), ev.samples());
        } else {
            out.printf(Locale.ROOT, "%s: test accuracy %.2f%%, test loss %.4f on %,d images (%s)%n",
                    checkpoint, 100 * ev.accuracy(), ev.loss(), ev.samples(), dev);
        }
        out.flush();
        return 0;
    }
}
