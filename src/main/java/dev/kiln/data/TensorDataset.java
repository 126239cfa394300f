package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;

import java.util.Arrays;

/**
 * A dataset over two CPU tensors whose first dimension indexes examples. Rows are copied out of host arrays
 * with System.arraycopy, so a batch costs one copy of its bytes.
 */
public final class TensorDataset implements Dataset {
    private final Object inputs, targets;
    private final DType inputType, targetType;
    private final int[] inputShape, targetShape;
    private final int n, inputRow, targetRow;

    public TensorDataset(Tensor inputs, Tensor targets) {
        if (inputs.dim() == 0 || targets.dim() == 0 || inputs.size(0) != targets.size(0)) {
            throw new IllegalArgumentException("TensorDataset: inputs " + Shape.str(inputs.shape()) + " and targets "
                    + Shape.str(targets.shape()) + " must have the same first dimension");
        }
        this.inputs = inputs.cpu().toHostArray();
        this.targets = targets.cpu().toHostArray();
        this.inputType = inputs.dtype();
        this.targetType = targets.dtype();
        this.inputShape = inputs.shape();
        this.targetShape = targets.shape();
        this.n = inputs.size(0);
        this.inputRow = n == 0 ? 0 : (int) (inputs.numel() / n);
        this.targetRow = n == 0 ? 0 : (int) (targets.numel() / n);
    }

    @Override public int size() { return n; }

    /** The first {@code count} examples (for quick runs on a subset). */
    public TensorDataset head(int count) {
        if (count < 0 || count > n) throw new IllegalArgumentException("head: " + count + " of " + n + " examples");
        int[] idx = new int[count];
        Arrays.setAll(idx, i -> i);
        Batch b = batch(idx);
        return new TensorDataset(b.inputs(), b.targets());
    }

    @Override public Batch batch(int[] indices) {
        return new Batch(gather(inputs, inputType, inputShape, inputRow, indices), gather(targets, targetType, targetShape, targetRow, indices));
    }

    private Tensor gather(Object src, DType dtype, int[] shape, int row, int[] indices) {
        Object dst = HostArrays.allocate(dtype, indices.length * row);
        for (int i = 0; i < indices.length; i++) {
            int k = indices[i];
            if (k < 0 || k >= n) throw new IndexOutOfBoundsException("example " + k + " of a dataset of " + n);
            System.arraycopy(src, k * row, dst, i * row, row);
        }
        int[] s = shape.clone();
        s[0] = indices.length;
        return new Tensor(new CpuStorage(dtype, dst), s); // dst is ours alone: no second copy
    }
}
