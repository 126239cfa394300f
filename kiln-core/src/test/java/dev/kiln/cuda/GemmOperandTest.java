package dev.kiln.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The strided-operand rule for cuBLAS: which (batch, rows, cols) views go to GEMM as they are. Pure Java. */
class GemmOperandTest {
    @Test void contiguousIsRowMajorWithLdCols() {
        assertEquals(new GemmOperand(false, 5, 15), GemmOperand.of(new long[]{2, 3, 5}, new long[]{15, 5, 1}));
        assertEquals(GemmOperand.contiguous(3, 5), GemmOperand.of(new long[]{2, 3, 5}, new long[]{15, 5, 1}));
    }

    @Test void transposedViewIsColumnMajor() {
        // a (5, 3) row-major matrix viewed transposed as (3, 5): strides (1, 3)
        assertEquals(new GemmOperand(true, 3, 0), GemmOperand.of(new long[]{3, 5}, new long[]{1, 3}));
        // batched transpose: (2, 3, 5) view of (2, 5, 3) storage
        assertEquals(new GemmOperand(true, 3, 15), GemmOperand.of(new long[]{2, 3, 5}, new long[]{15, 1, 3}));
    }

    @Test void rowSliceKeepsParentLd() {
        // columns 2..6 of a (4, 10) matrix: strides (10, 1), ld 10 > cols 5
        assertEquals(new GemmOperand(false, 10, 0), GemmOperand.of(new long[]{4, 5}, new long[]{10, 1}));
    }

    @Test void batchBroadcastIsStrideZero() {
        assertEquals(new GemmOperand(false, 4, 0), GemmOperand.of(new long[]{8, 3, 4}, new long[]{0, 4, 1}));
    }

    @Test void sizeOneDimsIgnoreTheirStride() {
        // a (1, n) row whose row stride is meaningless
        assertEquals(new GemmOperand(false, 7, 0), GemmOperand.of(new long[]{1, 7}, new long[]{999, 1}));
        // a (m, 1) column with stride 1 between rows: column-major with ld m... or row-major with ld 1
        assertNotNull(GemmOperand.of(new long[]{6, 1}, new long[]{1, 42}));
        // a (1, n) row with element stride 4 (a column of a (n, 4) matrix, transposed): column-major, ld 4
        assertEquals(new GemmOperand(true, 4, 0), GemmOperand.of(new long[]{1, 5}, new long[]{1, 4}));
        // batch of one: batch stride irrelevant
        assertEquals(new GemmOperand(false, 3, 0), GemmOperand.of(new long[]{1, 2, 3}, new long[]{12345, 3, 1}));
    }

    @Test void unusableViewsMustBeCopied() {
        assertNull(GemmOperand.of(new long[]{3, 4}, new long[]{8, 2}), "both strides > 1");
        assertNull(GemmOperand.of(new long[]{3, 4}, new long[]{2, 1}), "rows overlap: ld < cols");
        assertNull(GemmOperand.of(new long[]{3, 4}, new long[]{0, 1}), "broadcast rows (stride 0)");
        assertNull(GemmOperand.of(new long[]{3, 4}, new long[]{-4, 1}), "negative stride");
        assertNull(GemmOperand.of(new long[]{2, 3, 4}, new long[]{-12, 4, 1}), "negative batch stride");
        assertNull(GemmOperand.of(new long[]{3, 4}, new long[]{1L << 33, 1}), "ld beyond int");
    }

    @Test void badArgumentsAreReported() {
        var e = assertThrows(IllegalArgumentException.class, () -> GemmOperand.of(new long[]{2, 3, 4, 5}, new long[]{60, 20, 5, 1}));
        assertTrue(e.getMessage().contains("[2, 3, 4, 5]"), e.getMessage());
    }
}
