package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** argsort, sort and topk on cuda:0 against the CPU: every dtype, both directions, ties, NaN, rows past a tile. Skips without a GPU. */
class SortingGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(SortingGpuTest.class); }

    /** Random values with many ties (rounded to quarters), some NaN for the floating types. */
    private Tensor values(DType t, boolean nan, int... shape) {
        Tensor x = randn(DType.FLOAT64, shape).mul(t == DType.UINT8 ? 40 : 4).abs();
        double[] v = x.toDoubleArray();
        java.util.Random rnd = new java.util.Random(gen.nextSeed());
        for (int i = 0; i < v.length; i++) {
            v[i] = t.isFloating() ? Math.round(v[i] * 4) / 4.0 * (rnd.nextBoolean() ? 1 : -1) : Math.round(v[i]) * (t == DType.UINT8 || rnd.nextBoolean() ? 1 : -1);
            if (nan && t.isFloating() && rnd.nextInt(50) == 0) v[i] = Double.NaN;
        }
        return Tensor.of(v, shape).to(t);
    }

    @Test void argsortEqualsTheCpuOnEveryDtypeAndDim() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.FLOAT16, DType.INT64, DType.INT32, DType.UINT8}) {
            // one place, rows in one block each (P <= 2048), radix passes: one row and several (the row number's passes
            // too: 300 rows take two), and several dims
            for (int[] shape : new int[][]{{1}, {37}, {3, 2048}, {2, 3000}, {10_000}, {300, 2100}, {6, 5, 7}}) {
                Tensor x = values(t, true, shape);
                for (int d = 0; d < shape.length; d++) {
                    for (boolean desc : new boolean[]{false, true}) {
                        String w = t + " " + Arrays.toString(shape) + " dim " + d + " desc " + desc;
                        assertArrayEquals(x.argsort(d, desc).toLongArray(), gpu(x).argsort(d, desc).toLongArray(), w);
                    }
                }
            }
        }
        // the first k: one block (n <= 2048), a radix select (k <= 2048; ties and NaN among the k-th keys), and the
        // whole sort cut to k (k > 2048)
        for (int[] nk : new int[][]{{1500, 7}, {5000, 1}, {50_000, 50}, {100_000, 1000}, {10_000, 2048}, {5000, 2049}, {3000, 3000}}) {
            for (DType t : new DType[]{DType.FLOAT32, DType.INT64, DType.BFLOAT16, DType.INT32, DType.UINT8}) {
                Tensor x = values(t, true, 3, nk[0]);
                for (boolean largest : new boolean[]{true, false}) {
                    String w = "topk " + nk[1] + " of " + nk[0] + " " + t + " largest " + largest;
                    Tensor.Sorted c = x.topk(nk[1], 1, largest), g = gpu(x).topk(nk[1], 1, largest);
                    assertArrayEquals(c.indices().toLongArray(), g.indices().toLongArray(), w);
                    assertArrayEquals(c.values().toDoubleArray(), g.values().toDoubleArray(), w);
                }
            }
        }
        assertArrayEquals(new int[]{4, 0, 5}, gpu(randn(DType.FLOAT32, 4, 9, 5)).topk(0, 1, true).indices().shape());
        Tensor b = randn(DType.FLOAT32, 5, 300).gt(0);
        assertArrayEquals(b.argsort(1, true).toLongArray(), gpu(b).argsort(1, true).toLongArray(), "bool");
        // arrays past one radix scan chunk (2,048 tiles of 2,048 elements), row counts that fill a digit and pass it
        for (int[] shape : new int[][]{{4_500_000}, {257, 2100}, {3, 1_500_001}}) {
            Tensor x = values(DType.FLOAT32, true, shape);
            for (boolean desc : new boolean[]{false, true}) {
                assertArrayEquals(x.argsort(shape.length - 1, desc).toLongArray(), gpu(x).argsort(shape.length - 1, desc).toLongArray(),
                        "float32 " + Arrays.toString(shape) + " desc " + desc);
            }
        }
        // int64 keys beyond 2^53, where a double key would tie them
        long big = 1L << 60;
        Tensor l = Tensor.of(new long[]{big + 3, big + 1, big + 2, big}, 4);
        assertArrayEquals(new long[]{3, 1, 2, 0}, gpu(l).argsort(0, false).toLongArray());
    }

    @Test void sortAndTopkValuesAndGradients() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            compareGraph("sort " + t, 0, in -> in[0].sort(1, false).values(), randn(t, 8, 300));
            compareGraph("sort desc dim 0 " + t, 0, in -> in[0].sort(0, true).values(), randn(t, 50, 3, 4));
            compareGraph("topk " + t, 0, in -> in[0].topk(5, 1, true).values(), randn(t, 16, 5000));
            compareGraph("topk smallest of a transposed view " + t, 0, in -> in[0].t().topk(3, 1, false).values(), randn(t, 40, 6));
        }
        Tensor x = randn(DType.FLOAT32, 4, 50_000);   // a vocabulary's logits
        Tensor.Sorted c = x.topk(10, 1, true), g = gpu(x).topk(10, 1, true);
        assertArrayEquals(c.indices().toLongArray(), g.indices().toLongArray());
        assertArrayEquals(c.values().toFloatArray(), g.values().toFloatArray());
        assertEquals(GPU, g.indices().device());
    }

    /** A language model's next token drawn on the GPU is the CPU's, draw for draw (the candidates come from topk). */
    @Test void samplingOnTheGpuDrawsWhatTheCpuDraws() {
        Tensor logits = randn(DType.FLOAT32, 50_257).mul(3);
        for (dev.kiln.models.Sampling s : new dev.kiln.models.Sampling[]{dev.kiln.models.Sampling.greedy(), new dev.kiln.models.Sampling(0.8, 50),
                new dev.kiln.models.Sampling(1.0, 0)}) {
            dev.kiln.Generator a = new dev.kiln.Generator(5), b = new dev.kiln.Generator(5);
            Tensor onGpu = gpu(logits);
            for (int i = 0; i < 20; i++) assertEquals(s.next(logits, a), s.next(onGpu, b), s + " draw " + i);
        }
    }
}
