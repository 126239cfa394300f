package dev.kiln.train;

import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.nn.F;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;

/** Mean cross-entropy and accuracy of a classifier over a data set. */
public record Evaluation(double loss, double accuracy, int samples) {
    /** Runs the model in eval mode without recording gradients; restores the model's mode afterwards. */
    public static <M extends Layer & Forward> Evaluation of(M model, DataLoader loader) { return of(model, loader, Precision.FP32); }

    /** As {@link #of(Layer, DataLoader)} (a model that implements Forward), the forward pass in the given precision (under autocast for bf16, fp16). */
    public static <M extends Layer & Forward> Evaluation of(M model, DataLoader loader, Precision precision) {
        boolean wasTraining = model.isTraining();
        model.eval();
        try {
            return Tensor.noGrad(() -> {
                double lossSum = 0, correct = 0;
                int n = 0;
                var batches = loader.iterator();
                while (batches.hasNext()) {
                    try (MemoryScope ignored = MemoryScope.open()) {
                        Batch b = batches.next();
                        Tensor logits, loss;
                        try (var ac = precision.autocast()) {
                            logits = model.forward(b.inputs());
                            loss = F.crossEntropy(logits, b.targets(), 0, -100, F.Reduction.SUM); // float32 under autocast
                        }
                        lossSum += loss.item();
                        correct += logits.argmax(1, false).eq(b.targets()).to(dev.kiln.DType.INT64).sum().item();
                        n += b.size();
                    }
                }
                if (n == 0) throw new IllegalArgumentException("evaluation over an empty data set");
                return new Evaluation(lossSum / n, correct / n, n);
            });
        } finally {
            model.train(wasTraining);
        }
    }
}
