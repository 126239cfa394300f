package dev.kiln;

import java.util.Arrays;

/** Static helpers for shapes and strides (shapes are plain int arrays, outermost dimension first). */
public final class Shape {
    private Shape() {}

    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public static int[] contiguousStrides(int[] shape) {
        int[] s = new int[shape.length];
        int acc = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= Math.max(shape[i], 1);
        }
        return s;
    }

    /** The strides of the channels-last layout of a 4-D shape (N, C, H, W): memory order N, H, W, C. */
    public static int[] channelsLastStrides(int[] shape) {
        if (shape.length != 4) throw new IllegalArgumentException("channels-last: expected a shape of rank 4 (N, C, H, W), got " + str(shape));
        int c = Math.max(shape[1], 1), w = Math.max(shape[3], 1), h = Math.max(shape[2], 1);
        return new int[]{h * w * c, 1, w * c, c};
    }

    /** Whether two layouts of one shape place every element at the same position (size-1 dims ignored). */
    public static boolean sameLayout(int[] shape, int[] a, int[] b) {
        for (int i = 0; i < shape.length; i++) if (shape[i] != 1 && a[i] != b[i]) return false;
        return true;
    }

    /** The broadcast shape of two shapes, numpy rules; null if they do not broadcast. */
    public static int[] broadcast(int[] a, int[] b) {
        int n = Math.max(a.length, b.length);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int da = i < n - a.length ? 1 : a[i - (n - a.length)];
            int db = i < n - b.length ? 1 : b[i - (n - b.length)];
            if (da != db && da != 1 && db != 1) return null;
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /** Normalises a possibly negative dimension index for a tensor of rank {@code rank}. */
    public static int dim(int dim, int rank, String op) {
        int r = Math.max(rank, 1);
        if (dim < -r || dim >= r) {
            throw new IllegalArgumentException(op + ": dimension " + dim + " out of range for a tensor of rank " + rank);
        }
        return dim < 0 ? dim + r : dim;
    }

    public static String str(int[] shape) {
        if (shape.length == 0) return "[]";
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) sb.append(i == 0 ? "" : ", ").append(shape[i]);
        return sb.append(']').toString();
    }

    /** "128x784" style, as in PyTorch's matmul message. */
    public static String x(int[] shape) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < shape.length; i++) sb.append(i == 0 ? "" : "x").append(shape[i]);
        return sb.toString();
    }

    public static int[] of(int... dims) { return dims.clone(); }

    /** The permutation that moves {@code dim} last and keeps the others in order. */
    public static int[] moveToEnd(int rank, int dim) {
        int[] perm = new int[rank];
        for (int d = 0, k = 0; d < rank; d++) if (d != dim) perm[k++] = d;
        perm[rank - 1] = dim;
        return perm;
    }

    public static int[] inversePermutation(int[] perm) {
        int[] inv = new int[perm.length];
        for (int i = 0; i < perm.length; i++) inv[perm[i]] = i;
        return inv;
    }

    /**
     * Several same-shape operands with their strides, with size-1 dimensions dropped and neighbouring dimensions
     * merged wherever every operand lays them out alike; a contiguous tensor becomes one dimension. Kernels walk
     * the merged form: fewer, longer rows.
     */
    public record Merged(int[] shape, int[][] strides) {
        public int rank() { return shape.length; }
    }

    public static Merged merge(int[] shape, int[][] strides) {
        int k = strides.length;
        int[] ms = new int[shape.length];
        int[][] mst = new int[k][shape.length];
        int m = 0;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 1) continue;
            if (m > 0) {
                boolean merge = true;
                for (int i = 0; i < k; i++) merge &= mst[i][m - 1] == strides[i][d] * shape[d];
                if (merge) {
                    ms[m - 1] *= shape[d];
                    for (int i = 0; i < k; i++) mst[i][m - 1] = strides[i][d];
                    continue;
                }
            }
            ms[m] = shape[d];
            for (int i = 0; i < k; i++) mst[i][m] = strides[i][d];
            m++;
        }
        int[][] outStrides = new int[k][];
        for (int i = 0; i < k; i++) outStrides[i] = Arrays.copyOf(mst[i], m);
        return new Merged(Arrays.copyOf(ms, m), outStrides);
    }

    public static boolean equal(int[] a, int[] b) { return Arrays.equals(a, b); }
}
