package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Each layer's forward against values worked out by hand, and its gradients (input and parameters) by finite differences. */
class LayersTest {
    private static final Generator G = new Generator(1);

    private static Tensor d(double[] v, int... shape) { return Tensor.of(v, shape); }

    private static void assertValues(double[] expected, Tensor t) { assertArrayEquals(expected, t.toDoubleArray(), 1e-9); }

    private static <M extends Layer> M f64(M m) {
        m.to(DType.FLOAT64);
        return m;
    }

    @Test void linear() {
        Linear l = f64(new Linear(2, 2, G));
        l.loadStateDict(Map.of("weight", d(new double[]{1, 2, 3, 4}, 2, 2), "bias", d(new double[]{0.5, -1}, 2)));
        // [1, 1] W^T + b = [1+2+0.5, 3+4-1]
        assertValues(new double[]{3.5, 6, 0.5, -1}, l.forward(d(new double[]{1, 1, 0, 0}, 2, 2)));
        Linear g = f64(new Linear(3, 4, G));
        GradCheck.check(in -> g.forward(in[0]), GradCheck.randn(2, 2, 3));
        LayerGradCheck.check(g, GradCheck.randn(3, 2, 3));
        Linear noBias = f64(new Linear(3, 2, false, G));
        assertEquals(1, noBias.parameters().size());
        LayerGradCheck.check(noBias, GradCheck.randn(4, 5, 3));
    }

    @Test void conv2d() {
        Conv2d c = f64(new Conv2d(1, 1, 2, G));
        c.loadStateDict(Map.of("weight", d(new double[]{1, 0, 0, -1}, 1, 1, 2, 2), "bias", d(new double[]{10}, 1)));
        // each output is x[i][j] - x[i+1][j+1] + 10 over the 3x3 input 1..9: always 1 - 5 + 10 = 6
        assertValues(new double[]{6, 6, 6, 6}, c.forward(d(new double[]{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3)));
        Conv2d g = f64(new Conv2d(2, 3, 3, 2, 1, G));
        Tensor x = GradCheck.randn(5, 2, 2, 5, 5);
        assertArrayEquals(new int[]{2, 3, 3, 3}, g.forward(x).shape());
        GradCheck.check(in -> g.forward(in[0]), x);
        LayerGradCheck.check(g, GradCheck.randn(6, 1, 2, 4, 4));
    }

    @Test void pooling() {
        Tensor x = d(new double[]{1, 2, 5, 6, 3, 4, 7, 8, 9, 10, 13, 14, 11, 12, 15, 16}, 1, 1, 4, 4);
        // 2x2 windows: {1,2,3,4}, {5,6,7,8}, {9,10,11,12}, {13,14,15,16}
        assertValues(new double[]{4, 8, 12, 16}, new MaxPool2d(2).forward(x));
        assertValues(new double[]{2.5, 6.5, 10.5, 14.5}, new AvgPool2d(2).forward(x));
        assertValues(new double[]{8.5}, new AdaptiveAvgPool2d(1).forward(x));
        assertValues(new double[]{2.5, 6.5, 10.5, 14.5}, new AdaptiveAvgPool2d(2).forward(x));
        // a fresh input each time: gradients accumulate into a leaf
        GradCheck.check(in -> new MaxPool2d(2).forward(in[0]), GradCheck.randn(8, 2, 2, 6, 6));
        GradCheck.check(in -> new AvgPool2d(3, 2, 1).forward(in[0]), GradCheck.randn(8, 2, 2, 6, 6));
        GradCheck.check(in -> new AdaptiveAvgPool2d(3, 2).forward(in[0]), GradCheck.randn(8, 2, 2, 6, 6));
    }

    @Test void batchNormTrainingAndEval() {
        BatchNorm2d bn = f64(new BatchNorm2d(2));
        // channel 0 holds 1, 3 (mean 2, biased var 1); channel 1 holds 2, 2 (var 0)
        Tensor x = d(new double[]{1, 2, 3, 2}, 2, 2, 1, 1);
        double s = 1 / Math.sqrt(1 + 1e-5);
        assertArrayEquals(new double[]{-s, 0, s, 0}, bn.forward(x).toDoubleArray(), 1e-9);
        // running stats: 0.9 * old + 0.1 * batch, with the unbiased variance (2 for channel 0)
        assertArrayEquals(new double[]{0.2, 0.2}, bn.buffer("running_mean").toDoubleArray(), 1e-12);
        assertArrayEquals(new double[]{1.1, 0.9}, bn.buffer("running_var").toDoubleArray(), 1e-12);
        assertEquals(1, bn.buffer("num_batches_tracked").item());
        bn.eval();
        assertArrayEquals(new double[]{(1 - 0.2) / Math.sqrt(1.1 + 1e-5), (2 - 0.2) / Math.sqrt(0.9 + 1e-5)},
                bn.forward(d(new double[]{1, 2}, 1, 2, 1, 1)).toDoubleArray(), 1e-9);
        assertEquals(1, bn.buffer("num_batches_tracked").item(), "eval does not count batches");

        BatchNorm2d g = f64(new BatchNorm2d(3));
        g.loadStateDict(Map.of("weight", d(new double[]{1.5, -0.5, 2}, 3), "bias", d(new double[]{0.1, 0.2, 0.3}, 3),
                "running_mean", d(new double[3], 3), "running_var", d(new double[]{1, 1, 1}, 3),
                "num_batches_tracked", Tensor.zeros(new int[0], DType.INT64, Device.CPU)));
        GradCheck.check(in -> g.forward(in[0]), GradCheck.randn(9, 4, 3, 2, 2));
        LayerGradCheck.check(g, GradCheck.randn(9, 4, 3, 2, 2));
        BatchNorm1d b1 = f64(new BatchNorm1d(3));
        LayerGradCheck.check(b1, GradCheck.randn(10, 5, 3));
        assertThrows(IllegalArgumentException.class, () -> b1.forward(GradCheck.randn(1, 5, 4)), "wrong channel count");
    }

    @Test void layerNorm() {
        LayerNorm ln = f64(new LayerNorm(4));
        // [1,2,3,4]: mean 2.5, variance 1.25
        double s = 1 / Math.sqrt(1.25 + 1e-5);
        assertArrayEquals(new double[]{-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s}, ln.forward(d(new double[]{1, 2, 3, 4}, 1, 4)).toDoubleArray(), 1e-9);
        Tensor x = GradCheck.randn(11, 3, 4);
        ln.loadStateDict(Map.of("weight", GradCheck.randn(12, 4), "bias", GradCheck.randn(13, 4)));
        GradCheck.check(in -> ln.forward(in[0]), x);
        LayerGradCheck.check(ln, GradCheck.randn(11, 3, 4));
    }

    @Test void embedding() {
        Embedding e = f64(new Embedding(3, 2, G));
        e.loadStateDict(Map.of("weight", d(new double[]{0, 1, 10, 11, 20, 21}, 3, 2)));
        Tensor ids = Tensor.of(new long[]{2, 0, 2}, 3);
        assertValues(new double[]{20, 21, 0, 1, 20, 21}, e.forward(ids));
        LayerGradCheck.check(e, ids);
        Tensor w = e.parameter("weight");
        e.zeroGrad();
        e.forward(ids).sum().backward();
        assertValues(new double[]{1, 1, 0, 0, 2, 2}, w.grad()); // row 2 used twice
    }

    @Test void dropout() {
        Dropout drop = new Dropout(0.5, new Generator(3));
        Tensor x = Tensor.ones(1000);
        double[] y = drop.forward(x).toDoubleArray();
        int kept = 0;
        for (double v : y) {
            assertTrue(v == 0 || v == 2, "kept values are scaled by 1/(1-p)");
            if (v == 2) kept++;
        }
        assertTrue(kept > 400 && kept < 600, "about half kept: " + kept);
        drop.eval();
        assertSame(x, drop.forward(x), "eval is the identity");
        assertThrows(IllegalArgumentException.class, () -> new Dropout(1, G));
    }

    @Test void flattenAndActivations() {
        assertArrayEquals(new int[]{2, 12}, new Flatten().forward(Tensor.zeros(2, 3, 2, 2)).shape());
        Tensor x = d(new double[]{-1, 0, 2}, 3);
        assertValues(new double[]{0, 0, 2}, new ReLU().forward(x));
        assertArrayEquals(new double[]{-0.15865525393145707, 0, 1.9544997361036416}, new GELU().forward(x).toDoubleArray(), 1e-6);
        assertArrayEquals(new double[]{-1 / (1 + Math.E), 0, 2 / (1 + Math.exp(-2))}, new SiLU().forward(x).toDoubleArray(), 1e-9);
        assertArrayEquals(new double[]{Math.tanh(-1), 0, Math.tanh(2)}, new Tanh().forward(x).toDoubleArray(), 1e-9);
        assertArrayEquals(new double[]{1 / (1 + Math.E), 0.5, 1 / (1 + Math.exp(-2))}, new Sigmoid().forward(x).toDoubleArray(), 1e-9);
        Tensor y = d(new double[]{-1.3, -0.2, 0.4, 2.1}, 4);
        assertArrayEquals(new double[]{-0.15880800939172324, 0, 1.9545976940871754}, new GELU(F.GeluApproximation.TANH).forward(x).toDoubleArray(), 1e-7);
        assertEquals("GELU(approximate='tanh')", new GELU(F.GeluApproximation.TANH).toString());
        assertEquals(F.GeluApproximation.TANH, F.GeluApproximation.fromPyTorch("tanh"));
        assertEquals(F.GeluApproximation.NONE, F.GeluApproximation.fromPyTorch("none"));
        assertThrows(IllegalArgumentException.class, () -> F.GeluApproximation.fromPyTorch("exact"));
        for (Activation m : new Activation[]{new GELU(), new GELU(F.GeluApproximation.TANH), new SiLU(), new Tanh(), new Sigmoid(), new ReLU()}) {
            GradCheck.check(in -> m.forward(in[0]), y.detach());
        }
    }

    @Test void losses() {
        Tensor logits = d(new double[]{0, 0, 1, 2}, 2, 2);
        Tensor target = Tensor.of(new long[]{0, 1}, 2);
        // row 0: -log(1/2); row 1: -log(e^2/(e+e^2)) = log(1 + e^-1)
        double expected = (Math.log(2) + Math.log(1 + Math.exp(-1))) / 2;
        assertEquals(expected, new CrossEntropyLoss().forward(logits, target).item(), 1e-9);
        assertEquals(2 * expected, new CrossEntropyLoss(0, -100, F.Reduction.SUM).forward(logits, target).item(), 1e-9);
        GradCheck.check(in -> new CrossEntropyLoss().forward(in[0], target), GradCheck.randn(14, 2, 2));

        assertEquals((1 + 4) / 2.0, new MSELoss().forward(d(new double[]{1, 2}, 2), d(new double[]{0, 4}, 2)).item(), 1e-12);
        Tensor t = d(new double[]{0.3, -1}, 2);
        GradCheck.check(in -> new MSELoss().forward(in[0], t), GradCheck.randn(15, 2));

        // logit 0, target 1: log 2; logit 2, target 0: log(1 + e^2)
        assertEquals((Math.log(2) + Math.log(1 + Math.exp(2))) / 2,
                new BCEWithLogitsLoss().forward(d(new double[]{0, 2}, 2), d(new double[]{1, 0}, 2)).item(), 1e-9);
        Tensor bt = d(new double[]{1, 0, 0.5}, 3);
        GradCheck.check(in -> new BCEWithLogitsLoss().forward(in[0], bt), GradCheck.randn(16, 3));
    }

    /** Conv2d then ReLU inside a Sequential runs fused: the same output and parameter gradients as layer by layer. */
    @Test void sequentialFusesConvAndReluWithTheSameResults() {
        Conv2d conv = f64(new Conv2d(2, 3, 3, 1, 1, G));
        Sequential s = new Sequential(conv, new ReLU(), new MaxPool2d(2), new ReLU());
        Tensor x = GradCheck.randn(5, 2, 2, 6, 6);
        Tensor fused = s.forward(x);
        assertEquals("conv2d_relu", fused.gradFn() == null ? null : firstOp(fused));
        Tensor stepwise = new ReLU().forward(new MaxPool2d(2).forward(new ReLU().forward(conv.forward(x))));
        assertArrayEquals(stepwise.toDoubleArray(), fused.toDoubleArray(), 0.0);
        LayerGradCheck.check(s, x);
    }

    /**
     * BatchNorm2d, ReLU, MaxPool2d inside a Sequential (an ImageNet ResNet's stem) run as one op: the same output,
     * running statistics, batch count and gradients as layer by layer, training and eval.
     */
    @Test void sequentialFusesBatchNormReluAndMaxPoolWithTheSameResults() {
        for (boolean training : new boolean[]{true, false}) {
            BatchNorm2d bn = f64(new BatchNorm2d(3)), alone = f64(new BatchNorm2d(3));
            Sequential s = new Sequential(bn, new ReLU(), new MaxPool2d(3, 2, 1));
            bn.train(training);
            alone.train(training);
            Tensor x = GradCheck.randn(training ? 6 : 7, 2, 3, 7, 6);
            Tensor fused = s.forward(x);
            assertEquals("batch_norm_relu_max_pool", fused.gradFn() == null ? null : fused.gradFn().op());
            Tensor stepwise = new MaxPool2d(3, 2, 1).forward(new ReLU().forward(alone.forward(x)));
            assertArrayEquals(stepwise.toDoubleArray(), fused.toDoubleArray(), 1e-12);
            assertArrayEquals(alone.runningMean().toDoubleArray(), bn.runningMean().toDoubleArray(), 1e-12);
            assertArrayEquals(alone.runningVar().toDoubleArray(), bn.runningVar().toDoubleArray(), 1e-12);
            assertEquals(alone.namedBuffers().get("num_batches_tracked").item(), bn.namedBuffers().get("num_batches_tracked").item());
            LayerGradCheck.check(s, x);
        }
    }

    /** The op under the max-pool and the ReLU that follow the fused layers. */
    private static String firstOp(Tensor t) {
        var n = t.gradFn();
        while (n.inputs()[0] != null && n.inputs()[0].gradFn() != null) n = n.inputs()[0].gradFn();
        return n.op();
    }

    @Test void sequentialChainsAndGradChecks() {
        Sequential s = f64(new Sequential(new Linear(3, 4, G), new Tanh(), new Linear(4, 2, G)));
        LayerGradCheck.check(s, GradCheck.randn(17, 5, 3));
        assertEquals(2, s.get(2).parameters().size());
    }
}
