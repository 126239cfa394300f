package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Pool2dParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The float32 pooling path against the general one (double per element, taken by a float64 copy): max values and
 * argmax indices exactly, averages to 1e-6 relative.
 */
class PoolingCpuTest {
    private final Generator gen = new Generator(11);

    /** The general (double, HostArrays) path on a float64 copy is the reference. */
    @ParameterizedTest(name = "k{0}x{1} s{2},{3} p{4},{5} includePad {6}")
    @CsvSource({"2,2,2,2,0,0,true", "3,3,2,2,1,1,true", "3,3,2,2,1,1,false", "3,2,1,2,1,0,false", "4,4,3,3,2,2,true"})
    void poolingMatchesGeneralPath(int kh, int kw, int sh, int sw, int ph, int pw, boolean includePad) {
        Pool2dParams p = new Pool2dParams(kh, kw, sh, sw, ph, pw, includePad);
        Tensor x = Tensor.randn(gen, 3, 4, 11, 10);
        float[] xv = x.toFloatArray();
        xv[16] = Float.NaN;                                    // NaN wins its windows (row 1, columns 6 and 7:
        xv[17] = Float.NaN;                                    // one 2x2 window, where the last NaN wins)
        System.arraycopy(xv, 40, xv, 41, 3);                   // ties: the first maximum wins
        x = Tensor.of(xv, 3, 4, 11, 10);
        Tensor x64 = x.to(DType.FLOAT64);

        Tensor[] mf = PoolingCpu.maxPool2d(x, p), md = maxGeneral(x64, p);
        assertArrayEquals(md[1].toLongArray(), mf[1].toLongArray(), "argmax");
        assertArrayEquals(md[0].toFloatArray(), mf[0].toFloatArray(), "max values");
        assertArrayEquals(mf[0].toFloatArray(), PoolingCpu.maxPool2dValues(x, p).toFloatArray(), "max values without indices");
        Tensor gy = Tensor.randn(gen, mf[0].shape());
        int[] xs = x.shape();
        assertArrayEquals(PoolingCpu.maxPool2dBackward(gy.to(DType.FLOAT64), md[1], xs).toFloatArray(),
                PoolingCpu.maxPool2dBackward(gy, mf[1], xs).toFloatArray(), 1e-6f, "max backward");

        Tensor xa = Tensor.randn(gen, 3, 4, 11, 10);
        assertClose(PoolingCpu.avgPool2d(xa.to(DType.FLOAT64), p), PoolingCpu.avgPool2d(xa, p), "avg forward");
        assertClose(PoolingCpu.avgPool2dBackward(gy.to(DType.FLOAT64), xs, p), PoolingCpu.avgPool2dBackward(gy, xs, p), "avg backward");
    }

    /** Wide rows take the vectorised 2x2 path (8 windows at a time) and its scalar tail; NaN and ties inside both. */
    /** A stem's 3x3 stride-2 pad-1 pool without indices on wide rows (its vector path), NaN, ties of ±0 and -inf inside. */
    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"9, 80", "8, 37", "5, 18", "7, 17"})
    void maxPool3x3ValuesMatchTheIndexedPath(int h, int w) {
        Pool2dParams p = new Pool2dParams(3, 3, 2, 2, 1, 1, true);
        Tensor x = Tensor.randn(gen, 2, 3, h, w);
        float[] xv = x.toFloatArray();
        for (int i = 0; i < xv.length; i += 7) xv[i] = i % 3 == 0 ? Float.NaN : i % 3 == 1 ? -0f : 0f;
        for (int i = 3; i < xv.length; i += 29) xv[i] = Float.NEGATIVE_INFINITY;
        for (int i = 2 * w; i < 3 * w; i++) xv[i] = -0f;   // a row of -0 beside the 0s: the first of a tie stays
        x = Tensor.of(xv, 2, 3, h, w);
        Tensor[] md = maxGeneral(x.to(DType.FLOAT64), p);
        float[] ref = md[0].toFloatArray(), got = PoolingCpu.maxPool2dValues(x, p).toFloatArray();
        for (int i = 0; i < ref.length; i++) {
            assertEquals(Float.floatToIntBits(ref[i]), Float.floatToIntBits(got[i]), "output " + i + ": " + ref[i] + " against " + got[i]);
        }
    }

    @Test void maxPool2x2VectorPathMatchesGeneralPath() {
        Pool2dParams p = Pool2dParams.of(2, 2, 0);
        float[] xv = Tensor.randn(gen, 2, 3, 9, 37).toFloatArray();
        xv[37 + 4] = Float.NaN;                                // row 1, column 4: window (0, 2), vector lanes
        xv[5] = Float.NaN;                                     // row 0, column 5: the same window, earlier in order
        xv[9] = Float.NaN;                                     // row 0, column 9: the only NaN of window (0, 4)
        xv[37 + 34] = Float.NaN;                               // row 1, column 34: window (0, 17), scalar tail
        xv[2 * 37 + 20] = xv[2 * 37 + 21] = 100f;              // a tie: the first maximum wins
        Tensor x = Tensor.of(xv, 2, 3, 9, 37);
        Tensor[] mf = PoolingCpu.maxPool2d(x, p), md = PoolingCpu.maxPool2d(x.to(DType.FLOAT64), p);
        assertArrayEquals(md[1].toLongArray(), mf[1].toLongArray(), "argmax");
        assertArrayEquals(md[0].toFloatArray(), mf[0].toFloatArray(), "max values");
        assertArrayEquals(mf[0].toFloatArray(), PoolingCpu.maxPool2dValues(x, p).toFloatArray(), "max values without indices");
        assertEquals(37 + 4, mf[1].toLongArray()[2], "the last NaN of window (0, 2)");
        // the op: under no-grad the values alone, with a gradient the indexed kernel behind the backward
        Tensor xg = x.detach().requiresGrad(true);
        assertArrayEquals(mf[0].toFloatArray(), dev.kiln.ops.Pooling.maxPool2d(xg, p).toFloatArray());
        try (var off = dev.kiln.autograd.GradMode.disabled()) {
            Tensor y = dev.kiln.ops.Pooling.maxPool2d(xg, p);
            assertArrayEquals(mf[0].toFloatArray(), y.toFloatArray());
            assertFalse(y.requiresGrad());
        }
    }

    private static Tensor[] maxGeneral(Tensor x64, Pool2dParams p) { return PoolingCpu.maxPool2d(x64, p); }

    private static void assertClose(Tensor ref, Tensor got, String what) {
        float[] r = ref.toFloatArray(), g = got.toFloatArray();
        assertEquals(r.length, g.length, what);
        for (int i = 0; i < r.length; i++) assertEquals(r[i], g[i], 1e-6 * Math.max(1, Math.abs(r[i])), what + " element " + i);
    }
}
