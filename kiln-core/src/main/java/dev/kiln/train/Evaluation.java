package dev.kiln.train;

import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.nn.F;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;

/**
 * Mean cross-entropy and accuracy of a model's predictions over a data set: a classifier's logits (N, C) against
 * labels (N), or a language model's (B, T, V) against the next tokens (B, T), where every position is one prediction
 * (the loss is then the mean next-token cross-entropy, the accuracy how often the most likely token was the next one).
 *
 * @param loss the mean cross-entropy per prediction
 * @param accuracy the share of predictions whose most likely class was the target
 * @param samples the predictions scored: images for a classifier, tokens for a language model
 */
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
                        Tensor logits, loss, targets = b.targets().reshape(-1);
                        try (var ac = precision.autocast()) {
                            logits = model.forward(b.inputs());
                            logits = logits.reshape(-1, logits.size(-1)); // (B, T, V) -> (B*T, V); (N, C) as it is
                            loss = F.crossEntropy(logits, targets, 0, -100, F.Reduction.SUM); // float32 under autocast
                        }
                        lossSum += loss.item();
                        correct += logits.argmax(1, false).eq(targets).to(dev.kiln.DType.INT64).sum().item();
                        n += targets.size(0);
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
