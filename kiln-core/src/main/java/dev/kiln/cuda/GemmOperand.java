package dev.kiln.cuda;

/**
 * How one operand of a batched row-major matrix product can be handed to cuBLAS without a copy.
 *
 * <p>A (batch, rows, cols) view whose last two dims have strides {@code (ld, 1)} is a row-major matrix with leading
 * dimension {@code ld} ({@code transposed == false}); strides {@code (1, ld)} make it the transpose of a row-major
 * (cols, rows) matrix, i.e. column-major storage ({@code transposed == true}). Anything else (both strides above 1,
 * negative strides, overlapping rows) cannot be described to cuBLAS and the backend copies it contiguous first.
 *
 * @param transposed  whether the matrix is stored column-major (strides (1, ld))
 * @param ld          leading dimension in elements: the distance between rows (row-major) or columns (column-major)
 * @param batchStride elements between consecutive matrices; 0 broadcasts one matrix over the batch
 */
public record GemmOperand(boolean transposed, int ld, long batchStride) {
    public GemmOperand {
        if (ld < 1) throw new IllegalArgumentException("GemmOperand: leading dimension must be >= 1, got " + ld);
        if (batchStride < 0) throw new IllegalArgumentException("GemmOperand: batch stride must be >= 0, got " + batchStride);
    }

    /** A contiguous row-major (batch, rows, cols) operand. */
    public static GemmOperand contiguous(int rows, int cols) {
        return new GemmOperand(false, Math.max(1, cols), (long) rows * cols);
    }

    /**
     * Decides whether a strided (batch, rows, cols) view is usable by cuBLAS as it is.
     *
     * @param shape   {batch, rows, cols} or {rows, cols} (batch 1)
     * @param strides element strides, same length as shape
     * @return the operand's layout, or {@code null} when the view must be copied contiguous first
     */
    public static GemmOperand of(long[] shape, long[] strides) {
        if (shape.length != strides.length || shape.length < 2 || shape.length > 3) {
            throw new IllegalArgumentException("GemmOperand.of: expected (batch, rows, cols) or (rows, cols) with matching strides, got shape "
                    + java.util.Arrays.toString(shape) + " strides " + java.util.Arrays.toString(strides));
        }
        int r = shape.length - 2;
        long batch = shape.length == 3 ? shape[0] : 1;
        long batchStride = shape.length == 3 ? strides[0] : 0;
        return of(batch, shape[r], shape[r + 1], batchStride, strides[r], strides[r + 1]);
    }

    /** As {@link #of(long[], long[])} with the dims and strides spelled out. */
    public static GemmOperand of(long batch, long rows, long cols, long batchStride, long rowStride, long colStride) {
        if (batch < 0 || rows < 0 || cols < 0) throw new IllegalArgumentException("GemmOperand.of: negative dimension");
        // A stride along a dim of size 1 is never used to step, so it may be anything: pick the one that fits.
        if (batch <= 1) batchStride = 0;
        if (cols <= 1) colStride = 1;
        if (rows <= 1) rowStride = Math.max(1, cols);
        if (batchStride < 0 || rowStride < 0 || colStride < 0) return null;
        if (colStride == 1 && rowStride >= Math.max(1, cols) && fitsInt(rowStride)) {
            return new GemmOperand(false, (int) rowStride, batchStride);
        }
        // column-major: rows are adjacent; a (rows x cols) matrix with column stride ld >= rows
        if (rowStride == 1 && colStride >= Math.max(1, rows) && fitsInt(colStride)) {
            return new GemmOperand(true, (int) colStride, batchStride);
        }
        // rows == 1 and cols == 1 both normalised above, so e.g. a (1 x n) row with colStride k > 1 could be
        // read as a column-major matrix with ld = k: rowStride was normalised to cols, so retry that reading.
        if (rows <= 1 && colStride >= 1 && fitsInt(colStride)) return new GemmOperand(true, (int) colStride, batchStride);
        if (cols <= 1 && rowStride >= 1 && fitsInt(rowStride)) return new GemmOperand(false, (int) rowStride, batchStride);
        return null;
    }

    private static boolean fitsInt(long v) { return v <= Integer.MAX_VALUE; }
}
