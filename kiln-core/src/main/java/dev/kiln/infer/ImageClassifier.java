package dev.kiln.infer;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.data.ImageFolder;
import dev.kiln.train.TrainRun;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A trained image classifier ready for images: its {@link Predictor}, how an image becomes its input (the size,
 * channels and normalisation its checkpoint records) and its class names. {@code kiln predict} and {@code kiln serve}
 * are built on it.
 */
public final class ImageClassifier implements AutoCloseable {
    private final Predictor predictor;
    private final ImageFolder.Options preprocessing;
    private final List<String> classes;

    /** The checkpoint's model on {@code device}, folded and ready (see {@link Predictor}). */
    public ImageClassifier(TrainRun.LoadedCheckpoint checkpoint, Device device) { this(checkpoint, device, Predictor.Options.DEFAULT); }

    /** As {@link #ImageClassifier(TrainRun.LoadedCheckpoint, Device)} with the predictor's options (its precision, lanes). */
    public ImageClassifier(TrainRun.LoadedCheckpoint checkpoint, Device device, Predictor.Options options) {
        int[] in = checkpoint.inputShape();
        checkpoint.model().to(device);
        this.predictor = new Predictor(checkpoint.model(), Tensor.zeros(1, in[0], in[1], in[2]), options);
        this.preprocessing = checkpoint.preprocessing();
        this.classes = checkpoint.classes();
    }

    public Predictor predictor() { return predictor; }

    public List<String> classes() { return classes; }

    public ImageFolder.Options preprocessing() { return preprocessing; }

    /** One encoded image (PNG, JPEG, ...) as the model's input, (1, C, H, W); {@code name} is what errors call it. */
    public Tensor input(byte[] image, String name) throws IOException { return ImageFolder.load(image, name, preprocessing); }

    /** The top {@code k} classes of each input of a batch (N, C, H, W). */
    public List<List<ClassScore>> classify(Tensor batch, int k) {
        float[] logits = predictor.predict(batch).toFloatArray();
        int n = batch.size(0), c = logits.length / n;
        List<List<ClassScore>> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(top(java.util.Arrays.copyOfRange(logits, i * c, (i + 1) * c), k));
        return out;
    }

    /** The top {@code k} classes of one row of the model's logits. */
    public List<ClassScore> top(float[] logits, int k) { return ClassScore.top(logits, classes, k); }

    @Override public void close() { predictor.close(); }
}
