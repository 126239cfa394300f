package dev.kiln.data;

import dev.kiln.Device;
import dev.kiln.Tensor;

/** One batch: inputs (N, ...) and targets (N, ...), on one device. */
public record Batch(Tensor inputs, Tensor targets) {
    public Batch {
        if (inputs.dim() == 0 || targets.dim() == 0 || inputs.size(0) != targets.size(0)) {
            throw new IllegalArgumentException("batch: inputs and targets must agree in their first dimension, got "
                    + dev.kiln.Shape.str(inputs.shape()) + " and " + dev.kiln.Shape.str(targets.shape()));
        }
    }

    public int size() { return inputs.size(0); }

    public Batch to(Device device) { return new Batch(inputs.to(device), targets.to(device)); }
}
