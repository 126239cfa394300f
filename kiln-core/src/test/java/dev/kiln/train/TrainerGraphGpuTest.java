package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.cuda.Cuda;
import dev.kiln.data.DataLoader;
import dev.kiln.data.TensorDataset;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Dropout;
import dev.kiln.nn.Linear;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The Trainer with CUDA graphs against the eager Trainer: full batches replayed, the last partial batch eager (so
 * Adam's step count inside the graph must follow the eager steps), over two epochs. Skips without a GPU.
 */
class TrainerGraphGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        dev.kiln.cuda.GpuTests.requireGpu(TrainerGraphGpuTest.class);
    }

    static TensorDataset data() {
        int n = 300;
        Tensor x = Tensor.randn(new Generator(11), new int[]{n, 784}, DType.FLOAT32, Device.CPU);
        long[] y = new long[n];
        for (int i = 0; i < n; i++) y[i] = Math.floorMod(Generator.mix(i), 10);
        return new TensorDataset(x, Tensor.of(y, n));
    }

    record Result(List<float[]> params, double[] losses, boolean captured) {}

    static Result train(boolean graphs, double dropout) {
        Generator g = new Generator(5);
        Sequential m = new Sequential(new Linear(784, 128, g), new ReLU(), new Dropout(dropout, g), new Linear(128, 10, g)).to(GPU);
        Adam opt = new Adam(m.parameters(), 1e-3);
        TensorDataset ds = data();
        double[] losses = new double[2];
        boolean captured;
        try (Trainer t = new Trainer(m, new CrossEntropyLoss(), opt, null)) {
            t.useCudaGraphs(graphs);
            for (int e = 0; e < 2; e++) {
                DataLoader loader = DataLoader.builder(ds).batchSize(64).device(GPU).build();   // 4 full batches and one of 44
                losses[e] = t.trainEpoch(loader, "epoch").meanLoss();
            }
            captured = t.graphedStep() != null && t.graphedStep().captured();
        }
        return new Result(m.parameters().stream().map(Tensor::toFloatArray).toList(), losses, captured);
    }

    @Test void graphedTrainingMatchesEagerTrainingWithAPartialLastBatch() {
        boolean tf32 = Cuda.allowTf32(Device.cuda(0));
        Cuda.setAllowTf32(Device.cuda(0), false);
        try {
            Result eager = train(false, 0), graphed = train(true, 0);
            assertTrue(graphed.captured(), "full batches went through the graph");
            assertArrayEquals(eager.losses(), graphed.losses(), 1e-4);
            for (int p = 0; p < eager.params().size(); p++) {
                float[] e = eager.params().get(p), a = graphed.params().get(p);
                for (int i = 0; i < e.length; i++) assertEquals(e[i], a[i], 1e-4 * (1 + Math.abs(e[i])), "parameter " + p + " element " + i);
            }
        } finally {
            Cuda.setAllowTf32(Device.cuda(0), tf32);
        }
    }

    @Test void graphedTrainingWithDropoutLearns() {
        Result r = train(true, 0.3);
        assertTrue(r.captured());
        assertTrue(Double.isFinite(r.losses()[1]) && r.losses()[1] < r.losses()[0], "loss falls: " + r.losses()[0] + " -> " + r.losses()[1]);
    }
}
