package dev.kiln.cli;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.infer.ClassScore;
import dev.kiln.infer.ImageClassifier;
import dev.kiln.io.Json;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;

@Command(name = "predict", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Classifies images (PNG, JPEG, BMP, GIF) with an image classifier trained by 'kiln train': each image is prepared as "
                + "its training data was (size, grey or colour, normalisation, as the checkpoint records) and its most probable "
                + "classes are printed, one line per image. A file that cannot be read is reported on stderr and the others go on "
                + "(exit code 1). For a language model (gpt, lstm) use 'kiln generate RUN --prompt TEXT'.")
final class PredictCommand implements Callable<Integer> {
    /** Files larger than this are refused unread: no image a classifier takes is near it. */
    static final long MAX_FILE_BYTES = 64L << 20;
    private static final int BATCH = 32;

    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "RUN", description = "a run folder written by kiln train (runs/latest), or its model.safetensors")
    Path checkpoint;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "IMAGE", description = "image files, or folders whose image files are all classified")
    List<Path> images;

    @Option(names = "--top", defaultValue = "3", description = "how many classes to show per image (default: ${DEFAULT-VALUE})")
    int top;

    @Option(names = "--json", description = "one JSON object per image: {\"file\":...,\"top\":[{\"class\":...,\"index\":...,\"probability\":...}]}")
    boolean json;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--precision", defaultValue = "fp32",
            description = "fp32, bf16 or fp16: the dtype the model computes in (16-bit is meant for GPUs; default: ${DEFAULT-VALUE})")
    String precision;

    @Override public Integer call() throws Exception {
        if (top < 1) throw new ParameterException(spec.commandLine(), "--top must be >= 1, got " + top);
        Device dev;
        DType dtype;
        try {
            dev = Devices.parse(device);
            dtype = Classifiers.precision(precision);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        List<Path> files = expand(images);
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        int failed = 0;
        try (ImageClassifier classifier = Classifiers.load(checkpoint, dev, dtype)) {
            List<Path> batchFiles = new ArrayList<>();
            List<Tensor> batch = new ArrayList<>();
            for (int i = 0; i < files.size(); i++) {
                Path f = files.get(i);
                try {
                    batch.add(classifier.input(read(f), f.toString()));
                    batchFiles.add(f);
                } catch (IOException e) {
                    err.println("kiln predict: " + Main.message(e));
                    failed++;
                }
                if (batch.size() == BATCH || (i == files.size() - 1 && !batch.isEmpty())) {
                    List<List<ClassScore>> results = classifier.classify(Tensor.cat(batch, 0), top);
                    for (int j = 0; j < results.size(); j++) out.println(json ? json(batchFiles.get(j), results.get(j)) : text(batchFiles.get(j), results.get(j)));
                    out.flush();
                    batch.clear();
                    batchFiles.clear();
                }
            }
        }
        err.flush();
        return failed == 0 ? 0 : 1;
    }

    /** The files named, with each folder replaced by its image files (sorted, not recursing). */
    private static List<Path> expand(List<Path> paths) throws IOException {
        List<Path> out = new ArrayList<>();
        for (Path p : paths) {
            if (!Files.isDirectory(p)) {
                out.add(p);
                continue;
            }
            List<Path> inside;
            try (Stream<Path> s = Files.list(p)) {
                inside = s.filter(Files::isRegularFile).filter(PredictCommand::isImageName).sorted().toList();
            }
            if (inside.isEmpty()) throw new NoSuchFileException(p.toString(), null, "a folder without image files (.png, .jpg, .jpeg, .bmp, .gif)");
            out.addAll(inside);
        }
        return out;
    }

    private static boolean isImageName(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return !n.startsWith(".") && Stream.of(".png", ".jpg", ".jpeg", ".bmp", ".gif").anyMatch(n::endsWith);
    }

    private static byte[] read(Path f) throws IOException {
        if (Files.isRegularFile(f) && Files.size(f) > MAX_FILE_BYTES) throw new IOException(f + ": " + Files.size(f) + " bytes, more than an image may have (" + MAX_FILE_BYTES + ")");
        return Files.readAllBytes(f);
    }

    static String text(Path file, List<ClassScore> top) {
        return file + ": " + top.stream().map(s -> String.format(Locale.ROOT, "%s %.1f%%", s.name(), 100 * s.probability())).collect(Collectors.joining(", "));
    }

    static String json(Path file, List<ClassScore> top) {
        return "{\"file\":" + Json.quote(file.toString()) + ",\"top\":" + jsonScores(top) + "}";
    }

    /** [{"class":..., "index":..., "probability":...}, ...], as predict --json and serve answer. */
    static String jsonScores(List<ClassScore> top) {
        return top.stream().map(s -> String.format(Locale.ROOT, "{\"class\":%s,\"index\":%d,\"probability\":%.6f}", Json.quote(s.name()), s.index(), s.probability()))
                .collect(Collectors.joining(",", "[", "]"));
    }
}
