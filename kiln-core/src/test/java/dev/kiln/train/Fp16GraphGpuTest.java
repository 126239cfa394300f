package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.cuda.Cuda;
import dev.kiln.data.DataLoader;
import dev.kiln.data.TensorDataset;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * An fp16 step graphed with its loss scaling (GradScaler deciding on the device) against the same steps run eagerly,
 * over two epochs of the Trainer: the fourth batch of each epoch (the capture, then a plain replay) has inputs beyond
 * float16's range, so its gradients are not finite and the graph must skip the update and halve the scale by itself;
 * the last, partial batch runs eagerly between replays. Skips without a GPU.
 */
class Fp16GraphGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        dev.kiln.cuda.GpuTests.requireGpu(Fp16GraphGpuTest.class);
    }

    /** 300 rows: batches of 64 are 0-3 full and one of 44; rows 192-255 (batch 3) are 1e6 times larger, inf in float16. */
    static TensorDataset data() {
        int n = 300;
        float[] rowScale = new float[n];
        for (int i = 0; i < n; i++) rowScale[i] = i >= 192 && i < 256 ? 1e6f : 1f;
        Tensor x = Tensor.randn(new Generator(11), new int[]{n, 784}, DType.FLOAT32, Device.CPU).mul(Tensor.of(rowScale, n, 1));
        long[] y = new long[n];
        for (int i = 0; i < n; i++) y[i] = Math.floorMod(Generator.mix(i), 10);
        return new TensorDataset(x, Tensor.of(y, n));
    }

    /** Parameters at the end, and after each epoch the scale and the skipped steps; the Adam step counts at the end. */
    record Result(List<float[]> params, double[] scales, int[] skipped, List<Map<String, Long>> counts, boolean captured) {}

    static Result train(boolean graphs) {
        Generator g = new Generator(5);
        Sequential m = new Sequential(new Linear(784, 128, g), new ReLU(), new Linear(128, 10, g)).to(GPU);
        Optimizer opt = new Adam(m.parameters(), 1e-2);   // a wrongly taken step would move a weight by about 1e-2
        TensorDataset ds = data();
        double[] scales = new double[2];
        int[] skipped = new int[2];
        boolean captured;
        try (Trainer t = new Trainer(m, new CrossEntropyLoss(), opt, null, Precision.FP16)) {
            t.useCudaGraphs(graphs);
            for (int e = 0; e < 2; e++) {
                DataLoader loader = DataLoader.builder(ds).batchSize(64).device(GPU).build();
                t.trainEpoch(loader, "epoch");
                scales[e] = t.scaler().scale();
                skipped[e] = t.skippedSteps();
            }
            captured = t.graphedStep() != null && t.graphedStep().captured();
        }
        return new Result(m.parameters().stream().map(Tensor::toFloatArray).toList(), scales, skipped,
                m.parameters().stream().map(p -> opt.exportState(p).counts()).toList(), captured);
    }

    @Test void graphedFp16TrainingMatchesEagerIncludingAnOverflowInsideTheGraph() {
        boolean tf32 = Cuda.allowTf32(GPU);
        Cuda.setAllowTf32(GPU, false);
        try {
            Result eager = train(false), graphed = train(true);
            assertTrue(graphed.captured(), "full batches went through the graph");
            assertArrayEquals(eager.skipped(), graphed.skipped(), "skipped steps after each epoch");
            assertTrue(graphed.skipped()[1] - graphed.skipped()[0] >= 1, "the second epoch's huge batch, a plain replay, was skipped: " + graphed);
            assertArrayEquals(eager.scales(), graphed.scales(), "the scale after each epoch");
            assertEquals(eager.counts(), graphed.counts(), "Adam's step counts: the steps taken");
            assertEquals(10L - eager.skipped()[1], (long) eager.counts().getFirst().get("step"), "every step not skipped was taken");
            for (int p = 0; p < eager.params().size(); p++) {
                float[] e = eager.params().get(p), a = graphed.params().get(p);
                for (int i = 0; i < e.length; i++) {
                    assertTrue(Float.isFinite(a[i]), "parameter " + p + " element " + i + " is finite");
                    assertEquals(e[i], a[i], 2e-4 * (1 + Math.abs(e[i])), "parameter " + p + " element " + i);
                }
            }
        } finally {
            Cuda.setAllowTf32(GPU, tf32);
        }
    }
}
