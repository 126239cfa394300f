package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.infer.Batcher;
import dev.kiln.infer.Predictor;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Model;
import dev.kiln.train.ModelZoo;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The Predictor on a GPU: folded resnet-small against the unfolded model on the CPU, through eager runs, the capture
 * and graph replays of each padded batch size, from several threads and through the Batcher. Skips without a GPU.
 */
class PredictorGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        GpuTests.requireGpu(PredictorGpuTest.class);
    }

    static Tensor random(SplittableRandom rng, int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rng.nextGaussian();
        return Tensor.of(v, shape);
    }

    /** resnet-small for 3x32x32 images with batch norm statistics far from their initial values. */
    static Model model() {
        Model m = ModelZoo.RESNET_SMALL.build(new Generator(11), new int[]{3, 32, 32}, 10);
        SplittableRandom rng = new SplittableRandom(3);
        try (GradMode off = GradMode.disabled()) {
            for (Layer l : m.layers()) {
                if (!(l instanceof BatchNorm bn)) continue;
                int c = bn.runningMean().size(0);
                bn.runningMean().copyFrom(random(rng, c).mul(0.5));
                bn.runningVar().copyFrom(random(rng, c).mul(0.3).exp());
                bn.parameter("weight").copyFrom(random(rng, c).mul(0.2).add(1));
                bn.parameter("bias").copyFrom(random(rng, c).mul(0.2));
            }
        }
        m.eval();
        return m;
    }

    static float[] reference(Model cpu, Tensor x) {
        try (GradMode off = GradMode.disabled()) {
            return cpu.forward(x).toFloatArray();
        }
    }

    /** float32 on the CPU against cuDNN (TF32 convolutions by default): a loose, relative tolerance. */
    static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        double scale = 1;
        for (float w : want) scale = Math.max(scale, Math.abs(w));
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 2e-2 * scale, what + ", element " + i);
    }

    @Test void graphedBatchesOfEachSizeMatchTheUnfoldedCpuModel() {
        Model cpu = model();
        SplittableRandom rng = new SplittableRandom(5);
        try (Predictor p = new Predictor(model().to(GPU), Tensor.zeros(1, 3, 32, 32))) {
            assertEquals(15, p.foldedBatchNorms());
            for (int n : new int[]{3, 1, 5}) {   // padded to 4, 1, 8
                for (int call = 0; call < 5; call++) {   // 2 eager, the capture, then replays, each on new inputs
                    Tensor x = random(rng, n, 3, 32, 32);
                    Tensor y = p.predict(x);
                    assertArrayEquals(new int[]{n, 10}, y.shape());
                    assertClose(reference(cpu, x), y.toFloatArray(), "batch " + n + ", call " + call);
                }
            }
            assertEquals(3, p.capturedGraphs());
        }
    }

    /**
     * bfloat16 and float16 on the GPU (tensor-core convolutions, 16-bit epilogues and graphs) against the float32 CPU
     * model: eager runs, the capture and replays, each batch size's answers within 16-bit rounding.
     */
    @Test void sixteenBitPredictorsMatchTheCpuModel() {
        Model cpu = model();
        SplittableRandom rng = new SplittableRandom(6);
        for (dev.kiln.DType t : new dev.kiln.DType[]{dev.kiln.DType.BFLOAT16, dev.kiln.DType.FLOAT16}) {
            try (Predictor p = new Predictor(model().to(GPU), Tensor.zeros(1, 3, 32, 32), Predictor.Options.DEFAULT.withPrecision(t))) {
                for (int n : new int[]{2, 7}) {
                    for (int call = 0; call < 4; call++) {
                        Tensor x = random(rng, n, 3, 32, 32);
                        float[] want = reference(cpu, x), got = p.predict(x).toFloatArray();
                        double scale = 1;
                        for (float w : want) scale = Math.max(scale, Math.abs(w));
                        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], (t == dev.kiln.DType.BFLOAT16 ? 6e-2 : 2e-2) * scale, t + " batch " + n + " call " + call + ", element " + i);
                    }
                }
                assertEquals(2, p.capturedGraphs(), t + ": one graph per padded batch size");
            }
        }
    }

    @Test void concurrentCallersAndTheBatcherGetTheirOwnAnswers() throws Exception {
        Model cpu = model();
        SplittableRandom rng = new SplittableRandom(8);
        List<Tensor> inputs = new ArrayList<>();
        for (int i = 0; i < 24; i++) inputs.add(random(rng, 1 + i % 4, 3, 32, 32));
        try (Predictor p = new Predictor(model().to(GPU), Tensor.zeros(1, 3, 32, 32)); ExecutorService pool = Executors.newFixedThreadPool(6)) {
            List<Future<float[]>> answers = inputs.stream().map(x -> pool.submit(() -> p.predict(x).toFloatArray())).toList();
            for (int i = 0; i < inputs.size(); i++) assertClose(reference(cpu, inputs.get(i)), answers.get(i).get(), "thread request " + i);
            try (Batcher b = new Batcher(p, 8, Duration.ofMillis(5))) {
                List<Tensor> singles = new ArrayList<>();
                List<CompletableFuture<float[]>> rows = new ArrayList<>();
                for (int i = 0; i < 20; i++) {
                    singles.add(random(rng, 3, 32, 32));
                    rows.add(b.submit(singles.getLast()));
                }
                for (int i = 0; i < singles.size(); i++) assertClose(reference(cpu, singles.get(i).reshape(1, 3, 32, 32)), rows.get(i).get(), "batched " + i);
            }
        }
    }

    /**
     * Callers at the same time each take a lane (a stream and graphs of their own) and replay side by side: every answer
     * is its own input's, and more than one lane captured a graph for the batch size they share.
     */
    @Test void concurrentCallersReplayOnLanesOfTheirOwn() throws Exception {
        Model cpu = model();
        int threads = 3, calls = 30;
        try (Predictor p = new Predictor(model().to(GPU), Tensor.zeros(1, 3, 32, 32), new Predictor.Options(true, true, threads));
             ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            for (int i = 0; i < 2; i++) p.predict(random(new SplittableRandom(i), 2, 3, 32, 32));   // the two eager warm-up runs
            java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(threads);
            List<Future<Void>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                SplittableRandom rng = new SplittableRandom(100 + t);
                done.add(pool.submit(() -> {
                    start.await();
                    for (int c = 0; c < calls; c++) {
                        Tensor x = random(rng, 2, 3, 32, 32);
                        assertClose(reference(cpu, x), p.predict(x).toFloatArray(), "lane call " + c);
                    }
                    return null;
                }));
            }
            for (Future<Void> f : done) f.get();
            System.out.println("[predictor] " + threads + " concurrent callers: " + p.capturedGraphs() + " lane graphs captured");
            assertTrue(p.capturedGraphs() >= 2, "the concurrent callers all queued on one lane: " + p.capturedGraphs() + " graph(s)");
        }
    }
}
