package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ReLU keeps NaN, as PyTorch's: in the elementwise op's vector lanes and scalar tail alike (a NaN once became 0 or
 * stayed NaN by its position in the array), and in every fused ReLU on the CPU (the convolution's epilogue, batch
 * norm's, the stem tail's), each against the unfused ops. ReluNaNGpuTest holds CUDA to the same.
 */
public class ReluNaNTest {
    /** 37 values: two 16-lane vectors and a tail at 512 bits (more vectors and shorter tails at 256 and 128). */
    static float[] pattern() {
        float[] v = new float[37];
        for (int i = 0; i < v.length; i++) v[i] = i % 3 == 0 ? Float.NaN : i % 3 == 1 ? -1.5f - i : 0.25f * i;
        return v;
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64", "BFLOAT16", "FLOAT16"})
    void reluKeepsNaNAtEveryPosition(DType t) {
        float[] v = pattern();
        double[] y = Tensor.of(v, v.length).to(t).relu().toDoubleArray();
        for (int i = 0; i < v.length; i++) {
            if (Float.isNaN(v[i])) assertTrue(Double.isNaN(y[i]), t + ": relu(NaN) at " + i + " gave " + y[i]);
            else assertEquals(v[i] < 0 ? 0 : Tensor.of(new float[]{v[i]}, 1).to(t).toDoubleArray()[0], y[i], 0, t + ": relu at " + i);
        }
    }

    /** x (2, 3, 6, 6) with NaN at a few places, the rest random-looking but fixed. */
    static Tensor imageWithNaN(DType t) {
        float[] v = new float[2 * 3 * 6 * 6];
        for (int i = 0; i < v.length; i++) v[i] = (float) Math.sin(i * 0.7) * 2;
        v[7] = v[50] = v[151] = Float.NaN;
        return Tensor.of(v, 2, 3, 6, 6).to(t);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void fusedReluEpiloguesKeepNaNAsTheUnfusedOps(DType t) {
        Tensor x = imageWithNaN(t);
        float[] wv = new float[4 * 3 * 3 * 3];
        for (int i = 0; i < wv.length; i++) wv[i] = (float) Math.cos(i * 1.3) * 0.4f;
        Tensor w = Tensor.of(wv, 4, 3, 3, 3).to(t), b = Tensor.of(new float[]{0.1f, -0.2f, 0.3f, -0.4f}, 4).to(t);
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        sameWithNaN(Convolution.conv2d(x, w, b, p).relu(), Convolution.conv2d(x, w, b, p, true), "conv2d + relu " + t);

        Tensor rm = Tensor.of(new float[]{0.1f, -0.3f, 0.2f}, 3).to(t), rv = Tensor.of(new float[]{1.5f, 0.5f, 2f}, 3).to(t);
        Tensor g = Tensor.of(new float[]{1.2f, 0.8f, -1f}, 3).to(t), bb = Tensor.of(new float[]{0.5f, -0.1f, 0f}, 3).to(t);
        Tensor res = imageWithNaN(t).mul(-0.5);
        Tensor plain = Normalization.batchNorm(x, rm, rv, g, bb, false, 0.1, 1e-5);
        sameWithNaN(plain.relu(), Normalization.batchNorm(x, rm, rv, g, bb, null, false, 0.1, 1e-5, true), "batch norm + relu " + t);
        sameWithNaN(plain.add(res).relu(), Normalization.batchNorm(x, rm, rv, g, bb, res, false, 0.1, 1e-5, true), "batch norm + add + relu " + t);
        Pool2dParams pool = Pool2dParams.of(3, 2, 1);
        sameWithNaN(Pooling.maxPool2d(plain.relu(), pool), Normalization.batchNormReluMaxPool(x, rm, rv, null, g, bb, false, 0.1, 1e-5, pool),
                1e-5, "batch norm + relu + max pool " + t, false);
    }

    static void sameWithNaN(Tensor expected, Tensor actual, String what) { sameWithNaN(expected, actual, 1e-5, what, true); }

    /**
     * Equal values (relative tolerance tl) and NaN exactly where expected has NaN; when nanExpected, at least one (the
     * check would be vacuous without). Max pooling may pass over a NaN (its rule is its own), so the stem tail only
     * matches its two ops. ReluNaNGpuTest uses it too.
     */
    public static void sameWithNaN(Tensor expected, Tensor actual, double tl, String what, boolean nanExpected) {
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        assertEquals(e.length, a.length, what + ": size");
        int nans = 0;
        for (int i = 0; i < e.length; i++) {
            assertEquals(Double.isNaN(e[i]), Double.isNaN(a[i]), what + ": NaN at " + i + " (expected " + e[i] + ", got " + a[i] + ")");
            if (Double.isNaN(e[i])) nans++;
            else assertEquals(e[i], a[i], tl * Math.max(1, Math.abs(e[i])), what + ": element " + i);
        }
        assertTrue(nans > 0 || !nanExpected, what + ": no NaN reached the output");
    }
}
