package dev.kiln.cli;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.infer.Predictor;
import dev.kiln.infer.ImageClassifier;
import dev.kiln.io.Safetensors;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.TrainRun;

import java.io.IOException;
import java.nio.file.Path;

/** Loads a run's image classifier for predict and serve, pointing language models to generate. */
final class Classifiers {
    private Classifiers() {}

    /** The --precision of predict and serve: fp32, bf16 or fp16, the dtype the model computes in. */
    static DType precision(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "fp32" -> DType.FLOAT32;
            case "bf16" -> DType.BFLOAT16;
            case "fp16" -> DType.FLOAT16;
            default -> throw new IllegalArgumentException("unknown precision '" + name + "' (choose fp32, bf16, fp16)");
        };
    }

    static ImageClassifier load(Path run, Device device) throws IOException { return load(run, device, DType.FLOAT32); }

    static ImageClassifier load(Path run, Device device, DType precision) throws IOException {
        Path file = EvalCommand.checkpointFile(run);
        Safetensors.Contents contents = Safetensors.read(file);
        if (LanguageModelRun.isLanguageModel(contents.metadata())) {
            throw new IllegalArgumentException(file + " holds a " + contents.metadata().getOrDefault(TrainRun.META_MODEL, "language")
                    + " language model, which continues text rather than classifying images: use 'kiln generate " + run + " --prompt TEXT'");
        }
        return new ImageClassifier(TrainRun.loadCheckpoint(file, contents, null), device, Predictor.Options.DEFAULT.withPrecision(precision));
    }
}
