package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;

import java.lang.foreign.MemorySegment;
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

    public DType inputType() { return inputType; }

    public DType targetType() { return targetType; }

    /** The shape of a batch of {@code rows} inputs. */
    public int[] inputShape(int rows) { return withRows(inputShape, rows); }

    /** The shape of a batch of {@code rows} targets. */
    public int[] targetShape(int rows) { return withRows(targetShape, rows); }

    private static int[] withRows(int[] shape, int rows) {
        int[] s = shape.clone();
        s[0] = rows;
        return s;
    }

    /**
     * Gathers the examples straight into host memory (the GPU input pipeline's pinned buffers), skipping the Java
     * array a {@link #batch} would fill first: inputs into {@code inputsOut}, targets into {@code targetsOut}, each
     * row after row in this dtype's native layout.
     */
    public void gatherInto(int[] indices, MemorySegment inputsOut, MemorySegment targetsOut) {
        gatherInto(inputs, inputType, inputRow, indices, inputsOut);
        gatherInto(targets, targetType, targetRow, indices, targetsOut);
    }

    private void gatherInto(Object src, DType dtype, int row, int[] indices, MemorySegment out) {
        MemorySegment heap = HostArrays.segment(src);
        long rowBytes = (long) row * dtype.byteSize();
        for (int i = 0; i < indices.length; i++) {
            int k = indices[i];
            if (k < 0 || k >= n) throw new IndexOutOfBoundsException("example " + k + " of a dataset of " + n);
            MemorySegment.copy(heap, k * rowBytes, out, i * rowBytes, rowBytes);
        }
    }

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
