package dev.kiln.compress;

import dev.kiln.Tensor;
import dev.kiln.nn.Layer;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The masks of a pruned model (1 kept, 0 pruned), each beside the weight it belongs to, on that weight's device and
 * in its dtype. During fine-tuning {@link #apply()} runs after every optimizer step: multiplying the weights again
 * holds them at zero whatever the optimizer does (Adam's momentum from before pruning, weight decay, a learning-rate
 * warm-up), where masking gradients alone would not stop momentum from moving them. Checkpoints need no mask tensors:
 * a pruned weight is saved as 0, and {@link #fromZeros} rebuilds the masks from a pruned checkpoint.
 */
public final class PruneMasks {
    private final Map<String, Tensor> weights, masks;

    private PruneMasks(Map<String, Tensor> weights, Map<String, Tensor> masks) {
        this.weights = weights;
        this.masks = masks;
    }

    static PruneMasks of(Map<String, Tensor> weights, Map<String, float[]> masks) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        weights.forEach((name, w) -> m.put(name, Tensor.of(masks.get(name), w.shape()).to(w.dtype()).to(w.device()).keep()));
        return new PruneMasks(weights, m);
    }

    /** The masks of a model whose pruned weights are its zeros (a pruned checkpoint, loaded). */
    public static PruneMasks fromZeros(Layer model) {
        Map<String, Tensor> weights = Pruning.prunableWeights(model);
        Map<String, float[]> masks = new LinkedHashMap<>();
        weights.forEach((name, w) -> {
            float[] v = w.toFloatArray();
            for (int i = 0; i < v.length; i++) v[i] = v[i] == 0 ? 0 : 1;
            masks.put(name, v);
        });
        return of(weights, masks);
    }

    /** Sets the pruned weights to zero again (in place: optimizers and CUDA graphs keep seeing the same tensors). Returns this. */
    public PruneMasks apply() {
        Tensor.noGrad(() -> {
            weights.forEach((name, w) -> w.copyFrom(w.mul(masks.get(name))));
            return null;
        });
        return this;
    }

    /** The state-dict names of the pruned weights. */
    public Set<String> names() { return masks.keySet(); }

    /** The mask of one weight, by state-dict name. */
    public Tensor mask(String name) {
        Tensor m = masks.get(name);
        if (m == null) throw new IllegalArgumentException("no mask for '" + name + "' (pruned: " + masks.keySet() + ")");
        return m;
    }

    /** The fraction of the masked weights that are pruned. */
    public double sparsity() {
        long zeros = 0, total = 0;
        for (Tensor m : masks.values()) {
            for (float v : m.toFloatArray()) if (v == 0) zeros++;
            total += m.numel();
        }
        return total == 0 ? 0 : (double) zeros / total;
    }
}
