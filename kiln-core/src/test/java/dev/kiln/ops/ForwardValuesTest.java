package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Forward values of the nn ops against values computed by hand (numpy, float64) from PyTorch's definitions. */
class ForwardValuesTest {
    private static final double TOL = 1e-6;

    private static Tensor d(double[] v, int... shape) { return Tensor.of(v, shape); }

    private static Tensor ids(long... v) { return Tensor.of(v, v.length); }

    private static final Tensor LOGITS = Tensor.of(new double[]{1, 2, 3, 1, 1, 1, 0.5, -1, 2}, 3, 3);

    @Test void crossEntropyTinyCase() {
        Tensor t = ids(2, 0, 1);
        assertEquals(1.5825098499232155, F.crossEntropy(LOGITS, t).item(), TOL);
        assertArrayEquals(new double[]{0.40760596, 1.09861229, 3.2413113},
                F.crossEntropy(LOGITS, t, 0, -100, Reduction.NONE).toDoubleArray(), 1e-7);
        assertEquals(3 * 1.5825098499232155, F.crossEntropy(LOGITS, t, 0, -100, Reduction.SUM).item(), TOL);
    }

    @Test void crossEntropyIgnoreIndexIsExcludedFromTheMean() {
        Tensor t = ids(2, -100, 1);
        assertEquals(1.8244586305507686, F.crossEntropy(LOGITS, t).item(), TOL);
        assertEquals(0.0, F.crossEntropy(LOGITS, t, 0, -100, Reduction.NONE).toDoubleArray()[1]);
        // a custom ignore index that is a valid class id
        assertEquals(1.8244586305507686, F.crossEntropy(LOGITS, ids(2, 0, 1), 0, 0, Reduction.MEAN).item(), TOL);
    }

    @Test void crossEntropyLabelSmoothingFollowsPyTorchFormula() {
        assertEquals(1.565843183256549, F.crossEntropy(LOGITS, ids(2, 0, 1), 0.1, -100, Reduction.MEAN).item(), TOL);
        assertEquals(1.7994586305507687, F.crossEntropy(LOGITS, ids(2, -100, 1), 0.1, -100, Reduction.MEAN).item(), TOL);
    }

    @Test void crossEntropyWithSpatialDimsMatchesFlattened() {
        Tensor x = Tensor.randn(new Generator(3), new int[]{2, 4, 3, 2}, DType.FLOAT64, Device.CPU);
        Tensor t = Tensor.of(new long[]{0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0}, 2, 3, 2);
        Tensor flat = F.crossEntropy(x.permute(0, 2, 3, 1).reshape(-1, 4), t.reshape(-1));
        assertEquals(flat.item(), F.crossEntropy(x, t).item(), 1e-12);
        assertArrayEquals(new int[]{2, 3, 2}, F.crossEntropy(x, t, 0, -100, Reduction.NONE).shape());
    }

    @Test void nllLossPicksMinusLogProb() {
        Tensor logp = F.logSoftmax(LOGITS, 1);
        assertEquals(1.5825098499232155, F.nllLoss(logp, ids(2, 0, 1), -100, Reduction.MEAN).item(), TOL);
    }

    @Test void softmaxRowsSumToOneAndLogSoftmaxIsItsLog() {
        Tensor p = F.softmax(LOGITS, 1);
        assertArrayEquals(new double[]{1, 1, 1}, p.sum(1, false).toDoubleArray(), 1e-12);
        assertArrayEquals(p.log().toDoubleArray(), F.logSoftmax(LOGITS, -1).toDoubleArray(), 1e-12);
        // stable for large logits
        Tensor big = F.softmax(Tensor.of(new float[]{1000, 1000}), 0);
        assertArrayEquals(new float[]{0.5f, 0.5f}, big.toFloatArray());
    }

    @Test void layerNormHandComputed() {
        Tensor y = F.layerNorm(d(new double[]{1, 2, 3, 4}, 1, 4), new int[]{4}, d(new double[]{1, 2, 1, 1}, 4), d(new double[]{0, 0, 1, 0}, 4), 1e-5);
        assertArrayEquals(new double[]{-1.34163542, -0.89442361, 1.44721181, 1.34163542}, y.toDoubleArray(), 1e-7);
    }

    @Test void batchNormRunningStatsAfterOneStep() {
        Tensor x = d(new double[]{1, 10, 2, 20, 3, 30, 4, 60}, 4, 2);
        Tensor rm = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU), rv = Tensor.ones(new int[]{2}, DType.FLOAT64, Device.CPU);
        Tensor y = F.batchNorm(x, rm, rv, null, null, true, 0.1, 1e-5);
        assertArrayEquals(new double[]{-1.34163542, -1.06904495, -0.44721181, -0.53452248, 0.44721181, 0, 1.34163542, 1.60356743},
                y.toDoubleArray(), 1e-7);
        assertArrayEquals(new double[]{0.25, 3.0}, rm.toDoubleArray(), 1e-12);
        assertArrayEquals(new double[]{1.06666667, 47.56666667}, rv.toDoubleArray(), 1e-7);
        // eval uses the running statistics
        Tensor e = F.batchNorm(d(new double[]{0.25, 3}, 1, 2), rm, rv, d(new double[]{2, 2}, 2), d(new double[]{1, 1}, 2), false, 0.1, 1e-5);
        assertArrayEquals(new double[]{1, 1}, e.toDoubleArray(), 1e-12);
    }

    @Test void bceWithLogitsStableForm() {
        Tensor x = d(new double[]{-2, 0, 3}, 3), t = d(new double[]{0, 1, 0.5}, 3);
        assertArrayEquals(new double[]{0.12692801, 0.69314718, 1.54858735}, F.binaryCrossEntropyWithLogits(x, t, Reduction.NONE).toDoubleArray(), 1e-7);
        assertEquals(0.7895541810588865, F.binaryCrossEntropyWithLogits(x, t, Reduction.MEAN).item(), TOL);
        // no overflow far out
        Tensor far = F.binaryCrossEntropyWithLogits(Tensor.of(new float[]{-200f, 200f}), Tensor.of(new float[]{1f, 0f}), Reduction.NONE);
        assertArrayEquals(new float[]{200f, 200f}, far.toFloatArray());
    }

    @Test void mseLoss() {
        Tensor x = d(new double[]{1, 2, 3}, 3), t = d(new double[]{1, 0, 6}, 3);
        assertEquals(13.0 / 3, F.mseLoss(x, t, Reduction.MEAN).item(), 1e-12);
        assertEquals(13.0, F.mseLoss(x, t, Reduction.SUM).item(), 1e-12);
    }

    @Test void leakyReluKeepsNaNAndTakesTheSlopeAtZero() {
        Tensor x = Tensor.of(new double[]{-2, 0, 3, Double.NaN}, 4).requiresGrad(true);
        Tensor y = new dev.kiln.nn.LeakyReLU(0.1).forward(x);
        assertArrayEquals(new double[]{-0.2, 0, 3, Double.NaN}, y.toDoubleArray(), 1e-15);
        y.sum().backward();
        assertArrayEquals(new double[]{0.1, 0.1, 1, 0.1}, x.grad().toDoubleArray(), 1e-15);
    }

    @Test void adaptiveAvgPoolUsesPyTorchBins() {
        Tensor a = Tensor.arange(25, Device.CPU).to(DType.FLOAT64).reshape(1, 1, 5, 5);
        assertArrayEquals(new double[]{3.5, 5.5, 11, 13, 18.5, 20.5}, F.adaptiveAvgPool2d(a, 3, 2).toDoubleArray(), 1e-12);
        assertArrayEquals(new double[]{12}, F.adaptiveAvgPool2d(a, 1, 1).toDoubleArray(), 1e-12);
    }

    @Test void poolsHandComputed() {
        Tensor a = Tensor.arange(16, Device.CPU).to(DType.FLOAT32).reshape(1, 1, 4, 4);
        assertArrayEquals(new float[]{5, 7, 13, 15}, F.maxPool2d(a, 2, 2, 0).toFloatArray());
        assertArrayEquals(new float[]{2.5f, 4.5f, 10.5f, 12.5f}, F.avgPool2d(a, 2, 2, 0).toFloatArray());
        // padding counts in the average (count_include_pad, PyTorch's default): corner = (0+1+4+5)/4 with k=2,p=1 -> 0/4
        assertEquals(0f, F.avgPool2d(a, 2, 2, 1).toFloatArray()[0]);
    }

    @Test void conv2dHandComputed() {
        Tensor x = Tensor.arange(9, Device.CPU).to(DType.FLOAT32).reshape(1, 1, 3, 3);
        Tensor w = Tensor.of(new float[]{1, 0, 0, -1}, 1, 1, 2, 2);
        Tensor y = F.conv2d(x, w, Tensor.of(new float[]{10}), Conv2dParams.of(1, 0, 1, 1));
        assertArrayEquals(new float[]{6, 6, 6, 6}, y.toFloatArray());
    }

    @Test void linearAndEmbeddingAndOneHot() {
        Tensor x = Tensor.of(new float[]{1, 2, 3, 4, 5, 6}, 1, 2, 3);
        Tensor w = Tensor.of(new float[]{1, 0, 0, 0, 1, 1}, 2, 3);
        assertArrayEquals(new float[]{1.5f, 5.5f, 4.5f, 11.5f}, F.linear(x, w, Tensor.of(new float[]{0.5f, 0.5f})).toFloatArray());
        assertArrayEquals(new int[]{1, 2, 2}, F.linear(x, w, null).shape());
        Tensor table = Tensor.of(new float[]{0, 1, 10, 11, 20, 21}, 3, 2);
        Tensor e = F.embedding(Tensor.of(new long[]{2, 0, 2, 1}, 2, 2), table);
        assertArrayEquals(new int[]{2, 2, 2}, e.shape());
        assertArrayEquals(new float[]{20, 21, 0, 1, 20, 21, 10, 11}, e.toFloatArray());
        assertArrayEquals(new long[]{0, 1, 0, 1, 0, 0}, F.oneHot(ids(1, 0), 3).toLongArray());
    }

    @Test void dropoutScalesSurvivorsAndKeepsAboutOneMinusP() {
        Tensor x = Tensor.ones(10_000);
        Tensor y = F.dropout(x, 0.3, true, new Generator(7));
        int kept = 0;
        for (float v : y.toFloatArray()) {
            if (v != 0) {
                assertEquals(1 / 0.7f, v, 1e-6f);
                kept++;
            }
        }
        assertEquals(7000, kept, 200);
        assertSame(x, F.dropout(x, 0.3, false, new Generator(7)));
        assertSame(x, F.dropout(x, 0.0, true, new Generator(7)));
        assertArrayEquals(new float[10_000], F.dropout(x, 1.0, true, new Generator(7)).toFloatArray());
    }

    @Test void attentionUniformScoresAverageValuesAndCausalSeesOnlyThePast() {
        Tensor q = Tensor.zeros(1, 3, 2), k = Tensor.zeros(1, 3, 2);
        Tensor v = Tensor.of(new float[]{1, 0, 2, 0, 6, 3}, 1, 3, 2);
        assertArrayEquals(new float[]{3, 1, 3, 1, 3, 1}, F.scaledDotProductAttention(q, k, v, false).toFloatArray(), 1e-6f);
        assertArrayEquals(new float[]{1, 0, 1.5f, 0, 3, 1}, F.scaledDotProductAttention(q, k, v, true).toFloatArray(), 1e-6f);
    }
}
