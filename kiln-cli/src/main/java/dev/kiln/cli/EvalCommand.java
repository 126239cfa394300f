package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.Dataset;
import dev.kiln.data.TrainingData;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.train.Evaluation;
import dev.kiln.train.LanguageModel;
import dev.kiln.train.LanguageModelRun;
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
        description = "Reports the test accuracy of a checkpoint written by 'kiln train'; for a language model (gpt, lstm), its validation "
                + "loss (mean next-token cross-entropy), perplexity and next-token accuracy on the held-out last 10%% of its text.")
final class EvalCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "a model.safetensors file, or the folder kiln train wrote it to")
    Path checkpoint;

    @Option(names = "--model", description = "a zoo model (default: the model named in the checkpoint)")
    String model;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--data", description = {"Fashion-MNIST IDX files, CIFAR-10 binary batches, or train/ and val/ folders of class folders",
            "of images (default: /usr/share/datasets/fashion-mnist); for a language model, the text file (default: the one it was trained on)"})
    Path data;

    @Option(names = "--json", description = "print the result as JSON")
    boolean json;

    /** A checkpoint file, or a run folder holding model.safetensors (as kiln train writes it). */
    static Path checkpointFile(Path p) throws NoSuchFileException {
        if (!Files.isDirectory(p)) return p;
        Path f = p.resolve("model.safetensors");
        if (!Files.isRegularFile(f)) throw new NoSuchFileException(p.toString(), null, "a folder without model.safetensors (give the checkpoint file or a kiln train --out folder)");
        return f;
    }

    @Override public Integer call() throws Exception {
        ModelZoo kind;
        Device dev;
        try {
            kind = model == null || LanguageModel.Kind.find(model) != null ? null : ModelZoo.parse(model);
            dev = Devices.parse(device);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Path file = checkpointFile(checkpoint);
        Safetensors.Contents contents = Safetensors.read(file);
        if (LanguageModelRun.isLanguageModel(contents.metadata())) return evalLanguageModel(file, contents, dev);
        if (model != null && kind == null) {
            throw new IllegalArgumentException(file + " holds a " + contents.metadata().getOrDefault(TrainRun.META_MODEL, "image") + " image classifier, not a "
                    + model + " language model");
        }
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(file, contents, kind);
        Model m = loaded.model();
        m.to(dev);
        Path data = this.data == null ? FashionMnist.DEFAULT_DIR : this.data;
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
                    jsonString(file.toString()), dev, ev.accuracy(), ev.loss(), ev.samples());
        } else {
            out.printf(Locale.ROOT, "%s: test accuracy %.2f%%, test loss %.4f on %,d images (%s)%n",
                    file, 100 * ev.accuracy(), ev.loss(), ev.samples(), dev);
        }
        out.flush();
        return 0;
    }

    /** The validation loss of a language model on the held-out end of its text (the one it was trained on, or --data). */
    private int evalLanguageModel(Path file, Safetensors.Contents contents, Device dev) throws java.io.IOException {
        LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(file, contents);
        String kind = lm.architecture().kind().cliName();
        if (model != null && !model.equalsIgnoreCase(kind)) throw new IllegalArgumentException(file + " holds a " + kind + " language model, not " + model);
        Path text = data != null ? data : lm.text();
        if (text == null) throw new IllegalArgumentException(file + " does not say which text it was trained on; pass --data FILE.txt");
        Evaluation ev = LanguageModelRun.evaluate(lm, text, dev, 16, 0);
        if (!Double.isFinite(ev.loss())) throw new IllegalStateException(file + ": the model's validation loss is " + ev.loss() + " (are its weights finite?)");
        var out = spec.commandLine().getOut();
        if (json) {
            // a finite but huge loss overflows the perplexity: JSON gets null, never Infinity
            out.printf(Locale.ROOT, "{\"checkpoint\":\"%s\",\"device\":\"%s\",\"val_loss\":%.4f,\"val_ppl\":%s,\"val_acc\":%.4f,\"tokens\":%d}%n",
                    jsonString(file.toString()), dev, ev.loss(), TrainRun.jsonNumber("%.3f", Math.exp(ev.loss())), ev.accuracy(), ev.samples());
        } else {
            out.printf(Locale.ROOT, "%s: validation loss %.4f (perplexity %.2f), next-token accuracy %.2f%% on %,d tokens of %s (%s)%n",
                    file, ev.loss(), Math.exp(ev.loss()), 100 * ev.accuracy(), ev.samples(), text, dev);
        }
        out.flush();
        return 0;
    }

    private static String jsonString(String s) { return s.replace("\\", "\\\\").replace("\"", "\\\""); }
}
