package dev.kiln.infer;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Model;
import dev.kiln.train.ModelZoo;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.*;

/** Predictor (folding checked against the unfolded model, shapes, threads) and the Batcher, on the CPU. */
class PredictorTest {

    private static Tensor random(SplittableRandom rng, int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rng.nextGaussian();
        return Tensor.of(v, shape);
    }

    /** Running statistics and affine parameters far from their initial 0 and 1, so a wrong fold shows. */
    private static void randomiseBatchNorms(Layer model, SplittableRandom rng) {
        GradMode off = GradMode.disabled();
        try (off) {
            for (Layer l : model.layers()) {
                if (!(l instanceof BatchNorm bn)) continue;
                int c = bn.runningMean().size(0);
                bn.runningMean().copyFrom(random(rng, c).mul(0.5));
                bn.runningVar().copyFrom(random(rng, c).mul(0.3).exp());
                bn.parameter("weight").copyFrom(random(rng, c).mul(0.2).add(1));
                bn.parameter("bias").copyFrom(random(rng, c).mul(0.2));
            }
        }
    }

    private static float[] eval(Model m, Tensor x) {
        try (GradMode off = GradMode.disabled()) {
            m.eval();
            return m.forward(x).toFloatArray();
        }
    }

    private static void assertClose(float[] want, float[] got, double tol) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], tol * Math.max(1, Math.abs(want[i])), "element " + i);
    }

    /**
     * A bfloat16 / float16 predictor: folds in float32, then its parameters are 16-bit; float32 inputs in, float32
     * outputs back, near the float32 predictor's (16-bit rounding of every layer); other precisions are refused.
     */
    @Test void sixteenBitPredictorsStayNearFloat32() {
        SplittableRandom rng = new SplittableRandom(4);
        Model reference = ModelZoo.RESNET_SMALL.build(new Generator(3), new int[]{1, 28, 28}, 10);
        randomiseBatchNorms(reference, rng);
        Tensor x = random(rng, 3, 1, 28, 28);
        float[] want;
        try (Predictor p = new Predictor(reference, x)) {
            want = p.predict(x).toFloatArray();
        }
        double scale = 1;
        for (float w : want) scale = Math.max(scale, Math.abs(w));
        for (dev.kiln.DType t : new dev.kiln.DType[]{dev.kiln.DType.BFLOAT16, dev.kiln.DType.FLOAT16}) {
            Model m = ModelZoo.RESNET_SMALL.build(new Generator(3), new int[]{1, 28, 28}, 10);
            randomiseBatchNorms(m, new SplittableRandom(4));
            try (Predictor p = new Predictor(m, x, Predictor.Options.DEFAULT.withPrecision(t))) {
                assertEquals(t, p.precision());
                assertTrue(m.parameters().stream().allMatch(w -> w.dtype() == t), t + ": every parameter converted");
                Tensor y = p.predict(x);
                assertEquals(dev.kiln.DType.FLOAT32, y.dtype());
                float[] got = y.toFloatArray();
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], (t == dev.kiln.DType.BFLOAT16 ? 4e-2 : 1e-2) * scale, t + ", element " + i);
            }
        }
        // unfolded: the batch norms run in bfloat16 too (their running statistics converted with the parameters)
        Model unfolded = ModelZoo.RESNET_SMALL.build(new Generator(3), new int[]{1, 28, 28}, 10);
        randomiseBatchNorms(unfolded, new SplittableRandom(4));
        try (Predictor p = new Predictor(unfolded, x, new Predictor.Options(false, true, 1, dev.kiln.DType.BFLOAT16))) {
            assertEquals(0, p.foldedBatchNorms());
            float[] got = p.predict(x).toFloatArray();
            for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 4e-2 * scale, "unfolded bfloat16, element " + i);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Predictor.Options.DEFAULT.withPrecision(dev.kiln.DType.FLOAT64));
        assertTrue(e.getMessage().contains("must be float32, bfloat16 or float16"), e.getMessage());
    }

    /** cnn-bn (Sequential conv, bn, relu) and resnet-small (named convK/bnK, residuals, downsample): folded = unfolded. */
    @Test void foldedModelsGiveTheUnfoldedOutputs() {
        for (ModelZoo kind : List.of(ModelZoo.CNN_BN, ModelZoo.RESNET_SMALL)) {
            SplittableRandom rng = new SplittableRandom(1);
            Model reference = kind.build(new Generator(3), new int[]{1, 28, 28}, 10);
            Model served = kind.build(new Generator(3), new int[]{1, 28, 28}, 10);
            randomiseBatchNorms(reference, new SplittableRandom(5));
            randomiseBatchNorms(served, new SplittableRandom(5));
            Tensor x = random(rng, 4, 1, 28, 28);
            float[] want = eval(reference, x);
            try (Predictor p = new Predictor(served, x.narrow(0, 0, 1))) {
                assertEquals(kind == ModelZoo.CNN_BN ? 4 : 15, p.foldedBatchNorms(), kind.cliName());
                for (Layer l : served.layers()) if (l instanceof BatchNorm2d bn) assertTrue(bn.isFolded(), kind.cliName() + ": every 2-d batch norm follows a convolution");
                assertClose(want, p.predict(x).toFloatArray(), 1e-4);
            }
        }
    }

    /**
     * ResNet-18 (its 7x7 stem and 3x3 layers take the CPU's packed-weight kernels): the predictor's first call packs
     * the folded weights and keeps them, later calls (other batch sizes too) read them and answer as the unfolded model.
     */
    @Test void aCpuPredictorKeepsItsPackedWeights() {
        Model reference = ModelZoo.RESNET18.build(new Generator(3), new int[]{3, 32, 32}, 10);
        Model served = ModelZoo.RESNET18.build(new Generator(3), new int[]{3, 32, 32}, 10);
        randomiseBatchNorms(reference, new SplittableRandom(5));
        randomiseBatchNorms(served, new SplittableRandom(5));
        Tensor x = random(new SplittableRandom(2), 2, 3, 32, 32);
        float[] want = eval(reference, x), wantFirst = eval(reference, x.narrow(0, 0, 1).contiguous());
        try (Predictor p = new Predictor(served, x.narrow(0, 0, 1))) {
            float[] first = p.predict(x).toFloatArray();
            assertClose(want, first, 1e-4);
            assertArrayEquals(first, p.predict(x).toFloatArray(), "the second call, from the kept weights");
            assertClose(wantFirst, p.predict(x.narrow(0, 0, 1).contiguous()).toFloatArray(), 1e-4);
        }
    }

    /** A batch norm named bn1 beside conv1 that does not take conv1's output: the check on the example refuses the fold. */
    @Test void aFoldThatChangesOutputsIsRefused() {
        final class Mispaired extends Model {
            final Conv2d conv1 = registerLayer("conv1", new Conv2d(2, 2, 1, new Generator(1)));
            final BatchNorm2d bn1 = registerLayer("bn1", new BatchNorm2d(2));

            @Override public Tensor forward(Tensor x) { return conv1.forward(bn1.forward(x)); }   // bn before conv
        }
        Mispaired m = new Mispaired();
        randomiseBatchNorms(m, new SplittableRandom(2));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new Predictor(m, random(new SplittableRandom(3), 1, 2, 3, 3)));
        assertTrue(e.getMessage().contains("changed the model's outputs"), e.getMessage());
        Mispaired unfolded = new Mispaired();
        try (Predictor p = new Predictor(unfolded, Tensor.zeros(1, 2, 3, 3), new Predictor.Options(false, true))) {
            assertEquals(0, p.foldedBatchNorms());
            assertFalse(unfolded.bn1.isFolded());
        }
    }

    @Test void aFoldedBatchNormRefusesTraining() {
        Model m = ModelZoo.CNN_BN.build(new Generator(1), new int[]{1, 8, 8}, 3);
        try (Predictor p = new Predictor(m, Tensor.zeros(1, 1, 8, 8))) {
            m.train();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> m.forward(Tensor.zeros(2, 1, 8, 8)));
            assertTrue(e.getMessage().contains("folded"), e.getMessage());
        }
    }

    @Test void inputsOfAnotherShapeAreRefusedNamingBoth() {
        try (Predictor p = new Predictor(ModelZoo.MLP.build(new Generator(1)), Tensor.zeros(1, 1, 28, 28))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.predict(Tensor.zeros(1, 1, 32, 32)));
            assertTrue(e.getMessage().contains("28") && e.getMessage().contains("32"), e.getMessage());
            assertEquals(2, p.predict(Tensor.zeros(2, 1, 28, 28)).size(0));   // any batch size
        }
    }

    /** Many threads at once get what one thread gets, each for its own input. */
    @Test void concurrentCallersGetTheirOwnAnswers() throws Exception {
        Model m = ModelZoo.CNN.build(new Generator(4));
        SplittableRandom rng = new SplittableRandom(9);
        List<Tensor> inputs = new ArrayList<>();
        for (int i = 0; i < 16; i++) inputs.add(random(rng, 1 + i % 3, 1, 28, 28));
        try (Predictor p = new Predictor(m, inputs.getFirst()); ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<float[]> alone = inputs.stream().map(x -> p.predict(x).toFloatArray()).toList();
            List<Future<float[]>> together = inputs.stream().map(x -> pool.submit(() -> p.predict(x).toFloatArray())).toList();
            for (int i = 0; i < inputs.size(); i++) assertArrayEquals(alone.get(i), together.get(i).get(), "input " + i);
        }
    }

    /** Requests submitted together come back as their own rows, whatever batch they were grouped into. */
    @Test void batcherAnswersEachRequestWithItsRow() throws Exception {
        Model m = ModelZoo.MLP.build(new Generator(2));
        SplittableRandom rng = new SplittableRandom(4);
        try (Predictor p = new Predictor(m, Tensor.zeros(1, 1, 28, 28)); Batcher b = new Batcher(p, 4, Duration.ofMillis(20))) {
            List<Tensor> xs = new ArrayList<>();
            List<CompletableFuture<float[]>> results = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                xs.add(random(rng, 1, 28, 28));
                results.add(b.submit(xs.getLast()));
            }
            for (int i = 0; i < xs.size(); i++) {
                float[] want = p.predict(xs.get(i).reshape(1, 1, 28, 28)).toFloatArray();
                assertClose(want, results.get(i).get(), 1e-5);
            }
            assertThrows(IllegalArgumentException.class, () -> b.submit(Tensor.zeros(1, 1, 28, 28)));   // a batch, not one example
            b.close();
            ExecutionException e = assertThrows(ExecutionException.class, () -> b.submit(Tensor.zeros(1, 28, 28)).get());
            assertInstanceOf(RejectedExecutionException.class, e.getCause());
        }
    }

    @Test void topClassesAreSortedSoftmaxProbabilities() {
        List<ClassScore> top = ClassScore.top(new float[]{1, 3, 2}, List.of("a", "b", "c"), 2);
        assertEquals(List.of("b", "c"), top.stream().map(ClassScore::name).toList());
        double z = Math.exp(1) + Math.exp(3) + Math.exp(2);
        assertEquals(Math.exp(3) / z, top.getFirst().probability(), 1e-12);
        assertEquals(3, ClassScore.top(new float[]{1000, 1000, -1000}, List.of("a", "b", "c"), 5).size());   // no overflow, k capped
        assertEquals(0.5, ClassScore.top(new float[]{1000, 1000, -1000}, List.of("a", "b", "c"), 1).getFirst().probability(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> ClassScore.top(new float[]{1}, List.of("a", "b"), 1));
    }
}
