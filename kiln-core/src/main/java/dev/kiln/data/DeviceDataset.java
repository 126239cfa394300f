package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;

/**
 * A whole dataset resident on one device: inputs and targets are uploaded once, and a batch is an index_select on
 * the device, so an epoch copies only its order (one small upload, by the {@link DataLoader}) instead of every
 * image. For datasets that fit: Fashion-MNIST's 60,000 images are 188 MB of float32. Close it to free the memory.
 */
public final class DeviceDataset implements Dataset, AutoCloseable {
    private final Tensor inputs, targets;

    /** Uploads {@code source} to {@code device}. */
    public DeviceDataset(TensorDataset source, Device device) {
        int[] all = new int[source.size()];
        java.util.Arrays.setAll(all, i -> i);
        Batch b = source.batch(all);
        // kept: the dataset outlives every step's scope
        this.inputs = b.inputs().to(device).keep();
        this.targets = b.targets().to(device).keep();
    }

    /** Device bytes a dataset of these tensors takes once resident (to decide whether it fits). */
    public static long bytesFor(TensorDataset source) {
        return (long) source.size() * (Shape.numel(source.inputShape(1)) * source.inputType().byteSize()
                + Shape.numel(source.targetShape(1)) * source.targetType().byteSize());
    }

    public Device device() { return inputs.device(); }

    @Override public int size() { return inputs.size(0); }

    /** The examples at these indices (uploaded as one small index tensor), gathered on the device. */
    @Override public Batch batch(int[] indices) {
        long[] idx = new long[indices.length];
        for (int i = 0; i < idx.length; i++) idx[i] = indices[i];
        return batch(Tensor.fromHost(idx, DType.INT64, new int[]{idx.length}, device()));
    }

    /** The examples at a device tensor of INT64 indices. */
    public Batch batch(Tensor indices) {
        try (GradMode g = GradMode.disabled()) {
            return new Batch(inputs.indexSelect(0, indices), targets.indexSelect(0, indices));
        }
    }

    @Override public void close() {
        inputs.close();
        targets.close();
    }
}
