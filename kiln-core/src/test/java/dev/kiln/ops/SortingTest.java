package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** sort, argsort and topk on the CPU: orders against Java's stable object sort, NaN and ties, gradients in float64. */
class SortingTest {

    /** The stable order of one line by the rule: numbers by value (-0 equals 0), NaN above all; descending reverses keys only. */
    static long[] referenceOrder(double[] v, boolean descending) {
        Integer[] order = new Integer[v.length];
        for (int i = 0; i < v.length; i++) order[i] = i;
        Comparator<Integer> byKey = (p, q) -> Double.compare(v[p] == 0 ? 0.0 : v[p], v[q] == 0 ? 0.0 : v[q]);
        Arrays.sort(order, descending ? byKey.reversed() : byKey);   // a stable sort: ties keep their order
        return Arrays.stream(order).mapToLong(Integer::longValue).toArray();
    }

    /** argsort of x along dim, line by line from referenceOrder, as x's shape. */
    static long[] reference(Tensor x, int dim, boolean descending) {
        int[] s = x.shape();
        int n = s[dim], inner = 1;
        for (int d = dim + 1; d < s.length; d++) inner *= s[d];
        double[] all = x.toDoubleArray();
        long[] out = new long[all.length];
        for (int line = 0; line < all.length / n; line++) {
            int at = (line / inner) * n * inner + line % inner;
            double[] v = new double[n];
            for (int j = 0; j < n; j++) v[j] = all[at + j * inner];
            long[] o = referenceOrder(v, descending);
            for (int j = 0; j < n; j++) out[at + j * inner] = o[j];
        }
        return out;
    }

    @Test void argsortMatchesAStableSortAlongEveryDim() {
        Random rnd = new Random(3);
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.INT64, DType.INT32, DType.UINT8}) {
            for (int[] shape : new int[][]{{1}, {9}, {5000}, {4, 7}, {3, 5, 6}}) {
                // few distinct values, so most elements tie and stability shows
                double[] v = new double[Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
                for (int i = 0; i < v.length; i++) v[i] = rnd.nextInt(7) - (t == DType.UINT8 ? 0 : 3);
                Tensor x = Tensor.of(v, shape).to(t);
                for (int d = 0; d < shape.length; d++) {
                    for (boolean desc : new boolean[]{false, true}) {
                        Tensor idx = x.argsort(d, desc);
                        assertEquals(DType.INT64, idx.dtype());
                        assertArrayEquals(reference(x, d, desc), idx.toLongArray(), t + " " + Arrays.toString(shape) + " dim " + d + " desc " + desc);
                    }
                }
            }
        }
    }

    @Test void nanIsAboveEveryNumberAndSignedZerosTie() {
        Tensor x = Tensor.of(new double[]{3, Double.NaN, 1, Double.NaN, -0.0, 0.0, Double.NEGATIVE_INFINITY}, 7);
        assertArrayEquals(new long[]{6, 4, 5, 2, 0, 1, 3}, x.argsort(0, false).toLongArray());
        assertArrayEquals(new long[]{1, 3, 0, 2, 4, 5, 6}, x.argsort(0, true).toLongArray());
        assertArrayEquals(new long[]{1, 3}, x.to(DType.FLOAT32).topk(2, 0, true).indices().toLongArray());
        assertArrayEquals(new long[]{6, 4, 5}, x.topk(3, 0, false).indices().toLongArray());
    }

    @Test void sortAndTopkValues() {
        Tensor x = Tensor.of(new double[]{5, 1, 4, 1, 9, 2}, 2, 3);
        Tensor.Sorted s = x.sort(1, false);
        assertArrayEquals(new double[]{1, 4, 5, 1, 2, 9}, s.values().toDoubleArray());
        assertArrayEquals(new long[]{1, 2, 0, 0, 2, 1}, s.indices().toLongArray());
        Tensor.Sorted top = x.topk(2, -1, true);
        assertArrayEquals(new int[]{2, 2}, top.values().shape());
        assertArrayEquals(new double[]{5, 4, 9, 2}, top.values().toDoubleArray());
        assertArrayEquals(new long[]{0, 2, 1, 2}, top.indices().toLongArray());
        assertArrayEquals(new double[]{1, 1, 2}, x.topk(1, 0, false).values().toDoubleArray());
        assertArrayEquals(new long[]{1, 0, 1}, x.topk(1, 0, false).indices().toLongArray());
        assertArrayEquals(new int[]{2, 0}, x.topk(0, 1, true).values().shape());
        assertArrayEquals(x.sort(1, true).values().toDoubleArray(), x.topk(3, 1, true).values().toDoubleArray());
        // a scalar is its own sort
        Tensor scalar = Tensor.of(new double[]{2.5}).reshape();
        assertEquals(2.5, scalar.sort(0, false).values().item());
        assertEquals(0, scalar.argsort(0, true).toLongArray()[0]);
        // empty lines
        assertEquals(0, Tensor.zeros(new int[]{3, 0}, DType.FLOAT32, Device.CPU).argsort(1, false).numel());
    }

    @Test void topkIsTheSortsFirstK() {
        Random rnd = new Random(5);
        double[] v = new double[3 * 5000];
        for (int i = 0; i < v.length; i++) v[i] = rnd.nextInt(100);   // ties everywhere
        for (DType t : new DType[]{DType.FLOAT32, DType.INT64}) {
            Tensor x = Tensor.of(v, 3, 5000).to(t);
            for (boolean largest : new boolean[]{true, false}) {
                Tensor order = x.argsort(1, largest);
                for (int k : new int[]{1, 7, 1500, 5000}) {
                    Tensor.Sorted top = x.topk(k, 1, largest);
                    assertArrayEquals(order.narrow(1, 0, k).contiguous().toLongArray(), top.indices().toLongArray(), t + " k " + k);
                    assertArrayEquals(x.gather(1, top.indices()).toDoubleArray(), top.values().toDoubleArray());
                }
            }
        }
    }

    @Test void badArgumentsAreNamed() {
        Tensor x = Tensor.of(new double[]{1, 2, 3}, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> x.topk(4, 0, true));
        assertEquals("topk: k = 4 out of range for dimension 0 of size 3", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> x.topk(-1, 0, true));
        assertThrows(IllegalArgumentException.class, () -> Tensor.of(new double[]{1}).reshape().topk(0, 0, true));
        assertThrows(IllegalArgumentException.class, () -> x.sort(1, false));
    }

    @Test void gradientsFlowToWhereTheValuesCameFrom() {
        GradCheck.check(x -> x[0].sort(1, false).values(), randn(41, 3, 6));
        GradCheck.check(x -> x[0].sort(0, true).values(), randn(42, 5, 2, 3));
        GradCheck.check(x -> x[0].topk(2, 1, true).values(), randn(43, 4, 5));
        GradCheck.check(x -> x[0].t().topk(3, 0, false).values(), randn(44, 4, 5));   // a transposed view
        Tensor x = Tensor.of(new double[]{0.5, 3, -1, 2}, 4).requiresGrad(true);
        x.topk(2, 0, true).values().mul(Tensor.of(new double[]{10, 1}, 2)).sum().backward();
        assertArrayEquals(new double[]{0, 10, 0, 1}, x.grad().toDoubleArray());
    }
}
