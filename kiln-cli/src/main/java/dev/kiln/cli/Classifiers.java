package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.infer.ImageClassifier;
import dev.kiln.io.Safetensors;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.TrainRun;

import java.io.IOException;
import java.nio.file.Path;

/** Loads a run's image classifier for predict and serve, pointing language models to generate. */
final class Classifiers {
    private Classifiers() {}

    static ImageClassifier load(Path run, Device device) throws IOException {
        Path file = EvalCommand.checkpointFile(run);
        Safetensors.Contents contents = Safetensors.read(file);
        if (LanguageModelRun.isLanguageModel(contents.metadata())) {
            throw new IllegalArgumentException(file + " holds a " + contents.metadata().getOrDefault(TrainRun.META_MODEL, "language")
                    + " language model, which continues text rather than classifying images: use 'kiln generate " + run + " --prompt TEXT'");
        }
        return new ImageClassifier(TrainRun.loadCheckpoint(file, contents, null), device);
    }
}
