package dev.kiln.cpu;

import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * Walks up to four same-shape strided operands row by row: dimensions that are laid out alike in every operand
 * are merged first, so contiguous tensors are one long row. The body gets each operand's offset and stride for
 * the row and loops over it itself, which keeps the inner loop tight (and vectorisable when strides are 1 or 0).
 */
final class Rows {
    private Rows() {}

    @FunctionalInterface
    interface Body {
        /** One row of n elements: operand k starts at o[k] and steps by s[k]. */
        void row(int n, int o0, int s0, int o1, int s1, int o2, int s2, int o3, int s3);
    }

    static void forEach(int[] shape, Tensor[] ops, Body body) {
        int k = ops.length;
        int[][] st = new int[k][];
        int[] base = new int[4];
        for (int i = 0; i < k; i++) {
            st[i] = ops[i].strides();
            base[i] = ops[i].offset();
        }
        Shape.Merged merged = Shape.merge(shape, st);
        int m = merged.rank();
        int[] ms = merged.shape();
        int[][] mst = new int[4][];
        for (int i = 0; i < 4; i++) mst[i] = i < k ? merged.strides()[i] : new int[m];
        long total = 1;
        for (int d : shape) total *= d;
        if (total == 0) return;
        if (m == 0) {
            body.row(1, base[0], 0, base[1], 0, base[2], 0, base[3], 0);
            return;
        }
        int inner = ms[m - 1];
        int[] is = {mst[0][m - 1], mst[1][m - 1], mst[2][m - 1], mst[3][m - 1]};
        int rows = (int) (total / inner);
        if (rows == 1) {
            // one long row: split it across threads
            Parallel.range(inner, Parallel.GRAIN, (a, b) -> body.row(b - a,
                    base[0] + a * is[0], is[0], base[1] + a * is[1], is[1], base[2] + a * is[2], is[2], base[3] + a * is[3], is[3]));
            return;
        }
        int outerRank = m - 1;
        int grainRows = Math.max(1, Parallel.GRAIN / Math.max(inner, 1));
        Parallel.range(rows, grainRows, (a, b) -> {
            int[] idx = new int[outerRank];
            int rem = a;
            for (int d = outerRank - 1; d >= 0; d--) {
                idx[d] = rem % ms[d];
                rem /= ms[d];
            }
            int[] o = new int[4];
            for (int i = 0; i < 4; i++) {
                o[i] = base[i];
                for (int d = 0; d < outerRank; d++) o[i] += idx[d] * mst[i][d];
            }
            for (int r = a; r < b; r++) {
                body.row(inner, o[0], is[0], o[1], is[1], o[2], is[2], o[3], is[3]);
                for (int d = outerRank - 1; d >= 0; d--) {
                    idx[d]++;
                    for (int i = 0; i < 4; i++) o[i] += mst[i][d];
                    if (idx[d] < ms[d]) break;
                    for (int i = 0; i < 4; i++) o[i] -= mst[i][d] * ms[d];
                    idx[d] = 0;
                }
            }
        });
    }
}
