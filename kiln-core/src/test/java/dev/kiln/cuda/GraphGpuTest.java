package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.Linear;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import dev.kiln.train.GraphedStep;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * CUDA graphs: a replayed training step against the eager one, dropout masks per replay, what a capture refuses,
 * and the allocator's behaviour around graphs. Skips without a GPU.
 */
class GraphGpuTest {
    static final Device GPU = Device.cuda(0);
    static final int BATCH = 32, STEPS = 12;

    @BeforeAll static void requireGpu() {
        dev.kiln.cuda.GpuTests.requireGpu(GraphGpuTest.class);
    }

    static Sequential mlp() {
        Generator g = new Generator(7);
        return new Sequential(new Linear(784, 64, g), new ReLU(), new Linear(64, 64, g), new ReLU(), new Linear(64, 10, g)).to(GPU);
    }

    static Tensor batchX(int i) { return Tensor.randn(new Generator(100 + i), new int[]{BATCH, 784}, DType.FLOAT32, GPU); }

    static Tensor batchY(int i) {
        long[] y = new long[BATCH];
        for (int k = 0; k < BATCH; k++) y[k] = Math.floorMod(Generator.mix(1000L * i + k), 10);
        return Tensor.of(y, BATCH).to(GPU);
    }

    /** The parameters after STEPS steps (each on its own batch), eager or through a GraphedStep. */
    static List<float[]> train(Function<List<Tensor>, Optimizer> opt, boolean graphed) { return train(opt, graphed, (o, i) -> {}, 1); }

    /** As above, {@code schedule} setting the learning rates before step i; the graphed run captures {@code captures} times. */
    static List<float[]> train(Function<List<Tensor>, Optimizer> opt, boolean graphed, java.util.function.ObjIntConsumer<Optimizer> schedule, long captures) {
        Sequential m = mlp();
        Optimizer o = opt.apply(m.parameters());
        GraphedStep gs = graphed ? new GraphedStep(m, F::crossEntropy, o, new int[]{BATCH, 784}, DType.FLOAT32, new int[]{BATCH},
                DType.INT64, GPU) : null;
        try {
            for (int i = 0; i < STEPS; i++) {
                schedule.accept(o, i);
                try (MemoryScope s = MemoryScope.open()) {
                    Tensor x = batchX(i), y = batchY(i);
                    if (gs != null) {
                        gs.step(x, y);
                    } else {
                        o.zeroGrad();
                        F.crossEntropy(m.forward(x), y).backward();
                        o.step();
                    }
                }
            }
            if (gs != null) {
                assertTrue(gs.captured());
                assertEquals(STEPS - GraphedStep.DEFAULT_WARMUP, gs.graph().replays());
                assertEquals(captures, gs.captures(), "captures");
            }
            return m.parameters().stream().map(Tensor::toFloatArray).toList();
        } finally {
            if (gs != null) gs.close();
        }
    }

    static void assertClose(List<float[]> expected, List<float[]> actual, double tol) {
        assertEquals(expected.size(), actual.size());
        for (int p = 0; p < expected.size(); p++) {
            float[] e = expected.get(p), a = actual.get(p);
            for (int i = 0; i < e.length; i++) {
                assertEquals(e[i], a[i], tol * (1 + Math.abs(e[i])), "parameter " + p + " element " + i);
            }
        }
    }

    @Test void replayedAdamStepMatchesEager() {
        boolean tf32 = Cuda.allowTf32(Device.cuda(0));
        Cuda.setAllowTf32(Device.cuda(0), false);
        try {
            assertClose(train(ps -> new Adam(ps, 1e-3), false), train(ps -> new Adam(ps, 1e-3), true), 1e-4);
        } finally {
            Cuda.setAllowTf32(Device.cuda(0), tf32);
        }
    }

    @Test void replayedSgdMomentumStepMatchesEager() {
        boolean tf32 = Cuda.allowTf32(Device.cuda(0));
        Cuda.setAllowTf32(Device.cuda(0), false);
        try {
            assertClose(train(ps -> new SGD(ps, 0.05, 0.9, 1e-4, false), false), train(ps -> new SGD(ps, 0.05, 0.9, 1e-4, false), true), 1e-4);
        } finally {
            Cuda.setAllowTf32(Device.cuda(0), tf32);
        }
    }

    /** A learning rate changed before every step (a warm-up, a one-cycle schedule) is read live: one capture, eager's results. */
    @Test void aScheduledLearningRateNeedsNoNewCapture() {
        boolean tf32 = Cuda.allowTf32(Device.cuda(0));
        Cuda.setAllowTf32(Device.cuda(0), false);
        try {
            java.util.function.ObjIntConsumer<Optimizer> warmup = (o, i) -> o.groups().forEach(g -> g.setLr(1e-3 * (i + 1) / STEPS));
            Function<List<Tensor>, Optimizer> adamW = p -> new dev.kiln.optim.AdamW(p, 1e-3, 0.1);
            assertClose(train(adamW, false, warmup, 1), train(adamW, true, warmup, 1), 1e-5);
            Function<List<Tensor>, Optimizer> sgd = p -> new SGD(p, 0.05, 0.9, 1e-4, false);
            java.util.function.ObjIntConsumer<Optimizer> decay = (o, i) -> o.groups().forEach(g -> g.setLr(0.05 * Math.pow(0.8, i)));
            assertClose(train(sgd, false, decay, 1), train(sgd, true, decay, 1), 1e-5);
        } finally {
            Cuda.setAllowTf32(Device.cuda(0), tf32);
        }
    }

    /** A training step written by the user as a lambda, graphed in one call: parameters and batch-norm statistics as eager. */
    @Test void aUserWrittenStepGraphedInOneCallMatchesEager() {
        boolean tf32 = Cuda.allowTf32(Device.cuda(0));
        Cuda.setAllowTf32(Device.cuda(0), false);
        try {
            List<float[]> eager = null;
            for (boolean graphed : new boolean[]{false, true}) {
                Generator g = new Generator(11);
                Sequential m = new Sequential(new Linear(784, 64, g), new dev.kiln.nn.BatchNorm1d(64), new ReLU(), new Linear(64, 10, g)).to(GPU);
                Optimizer o = new Adam(m.parameters(), 1e-3);
                GraphedStep.Body body = (x, y) -> {
                    o.zeroGrad();
                    Tensor loss = F.crossEntropy(m.forward(x), y).mul(2.0).add(m.parameters().getFirst().mul(m.parameters().getFirst()).sum().mul(1e-4));
                    loss.backward();
                    o.step();
                    return loss;
                };
                try (GraphedStep step = GraphedStep.of(o, body)) {
                    for (int i = 0; i < STEPS; i++) {
                        try (MemoryScope s = MemoryScope.open()) {
                            Tensor x = batchX(i), y = batchY(i);
                            if (graphed) step.step(x, y); else body.run(x, y);
                        }
                    }
                    if (graphed) assertEquals(STEPS - GraphedStep.DEFAULT_WARMUP, step.graph().replays());
                }
                List<float[]> state = new java.util.ArrayList<>(m.parameters().stream().map(Tensor::toFloatArray).toList());
                m.stateDict().forEach((k, v) -> { if (k.contains("running")) state.add(v.toFloatArray()); });
                if (eager == null) eager = state; else assertClose(eager, state, 1e-5);
            }
        } finally {
            Cuda.setAllowTf32(Device.cuda(0), tf32);
        }
    }

    @Test void dropoutDrawsANewMaskEachReplayAndItsBackwardTheSameOne() {
        Tensor x = Tensor.ones(new int[]{4096}, DType.FLOAT32, GPU).requiresGrad(true).keep();
        Tensor[] out = new Tensor[2];
        Generator g = new Generator(3);
        Runnable step = () -> {
            try (MemoryScope s = MemoryScope.open()) {
                x.zeroGrad();
                Tensor y = F.dropout(x, 0.5, true, g);
                y.sum().backward();
                if (out[0] != null) out[0].close();
                out[0] = y.detach().keep();
                out[1] = x.grad();
            }
        };
        step.run(); // eagerly first: the pool then holds the step's blocks
        step.run();
        try (CudaGraph graph = CudaGraph.capture(GPU, step)) {
            float[] previous = null;
            for (int r = 0; r < 3; r++) {
                graph.replay();
                float[] y = out[0].toFloatArray(), gx = out[1].toFloatArray();
                int kept = 0;
                for (int i = 0; i < y.length; i++) {
                    assertTrue(y[i] == 0f || y[i] == 2f, "inverted dropout values: " + y[i]);
                    assertEquals(y[i], gx[i], "the backward recomputes this replay's mask");
                    if (y[i] != 0) kept++;
                }
                assertTrue(kept > 1800 && kept < 2300, "about half kept: " + kept);
                if (previous != null) assertFalse(java.util.Arrays.equals(previous, y), "replay " + r + " drew the previous mask again");
                previous = y;
            }
        } finally {
            if (out[0] != null) out[0].close();
            x.close();
        }
    }

    /** What a step draws from its generator: two dropout masks and a normal fill. */
    private static Tensor randomStep(Tensor x, Generator g) {
        return F.dropout(x, 0.5, true, g).add(F.dropout(x, 0.25, true, g)).add(Tensor.randn(g, x.shape(), DType.FLOAT32, GPU));
    }

    @Test void aReplayDrawsWhatAnEagerStepWouldAndTheGeneratorKeepsUp() {
        Tensor x = Tensor.ones(new int[]{4096}, DType.FLOAT32, GPU).keep();
        Generator g = new Generator(5);
        Tensor[] out = new Tensor[1];
        Runnable step = () -> {
            try (MemoryScope s = MemoryScope.open()) {
                Tensor y = randomStep(x, g);
                if (out[0] != null) out[0].close();
                out[0] = y.keep();
            }
        };
        step.run();
        step.run();
        assertEquals(6, g.counter());
        try (CudaGraph graph = CudaGraph.capture(GPU, step)) {
            assertEquals(6, g.counter(), "the capture gives back the keys it drew: it ran nothing");
            for (int r = 0; r < 4; r++) {
                long before = g.counter();
                float[] got;
                if (r == 2) {
                    // an eager step between replays (a last, partial batch), as GraphedStep runs it (its own output:
                    // out[0] stays the graph's)
                    try (MemoryScope s = MemoryScope.open()) {
                        got = randomStep(x, g).toFloatArray();
                    }
                    graph.advance();
                } else {
                    graph.replay();
                    got = out[0].toFloatArray();
                }
                assertEquals(before + 3, g.counter(), "a replay advances the generator as an eager step does");
                Generator eager = new Generator(5);
                eager.restore(before);
                float[] want = Tensor.noGrad(() -> randomStep(x, eager)).toFloatArray();
                assertArrayEquals(want, got, (r == 2 ? "the eager step " : "replay ") + r + " drew what an eager step draws there");
            }
        } finally {
            if (out[0] != null) out[0].close();
            x.close();
        }
    }

    @Test void captureRefusesToReadValuesAndTheDeviceStaysUsable() {
        Tensor x = Tensor.ones(new int[]{16}, DType.FLOAT32, GPU).keep();
        try (MemoryScope s = MemoryScope.open()) { x.add(1).sum(); } // the pool holds what the captured ops ask for
        var e = assertThrows(IllegalStateException.class, () -> CudaGraph.capture(GPU, () -> x.add(1).sum().item()));
        assertTrue(e.getMessage().contains("cannot read values while a CUDA graph is being captured"), e.getMessage());
        var sync = assertThrows(IllegalStateException.class, () -> CudaGraph.capture(GPU, Cuda::synchronize));
        assertTrue(sync.getMessage().contains("being captured"), sync.getMessage());
        assertFalse(CudaDevice.get(0).isCapturing());
        assertEquals(32.0, x.add(1).sum().item(), 0.0, "eager work after a failed capture");
        x.close();
    }

    @Test void captureNeedingFreshMemorySaysSo() {
        // 3 GiB cannot be in the pool: the capture must fail clearly rather than call cuMemAlloc
        var e = assertThrows(CudaAllocator.CaptureNeedsMemory.class,
                () -> CudaGraph.capture(GPU, () -> Tensor.zeros(new int[]{3 << 28}, DType.FLOAT32, GPU)));
        assertTrue(e.getMessage().contains("run the step eagerly first"), e.getMessage());
        assertEquals(2.0, Tensor.ones(new int[]{2}, DType.FLOAT32, GPU).sum().item(), 0.0);
    }

    @Test void replaysAllocateNothingAndCloseReturnsTheGraphsBlocks() {
        Sequential m = mlp();
        Optimizer o = new Adam(m.parameters(), 1e-3);
        CudaAllocator alloc = CudaDevice.get(0).allocator();
        Tensor x = batchX(0).keep(), y = batchY(0).keep();
        try (GraphedStep gs = new GraphedStep(m, F::crossEntropy, o, new int[]{BATCH, 784}, DType.FLOAT32, new int[]{BATCH},
                DType.INT64, GPU)) {
            for (int i = 0; i <= GraphedStep.DEFAULT_WARMUP; i++) {
                try (MemoryScope s = MemoryScope.open()) { gs.step(x, y); }
            }
            assertTrue(gs.captured());
            Cuda.synchronize();
            CudaAllocator.Stats before = alloc.stats();
            double first = gs.step(x, y).item();
            for (int i = 0; i < 300; i++) {
                try (MemoryScope s = MemoryScope.open()) { gs.step(x, y); }
            }
            double last = gs.step(x, y).item();
            Cuda.synchronize();
            CudaAllocator.Stats after = alloc.stats();
            assertEquals(before.allocCalls(), after.allocCalls(), "no cuMemAlloc over 300 replays");
            assertEquals(before.allocatedBytes(), after.allocatedBytes(), "memory steady over replays");
            assertTrue(last < first, "training one batch over and over lowers its loss: " + first + " -> " + last);

            // the parameters' gradients are the graph's blocks: dropping them puts them on its private free list
            o.zeroGrad();
            long reserved = gs.graph().reservedBytes();
            assertTrue(reserved > 0);
            long cachedBefore = alloc.stats().cachedBytes();
            gs.close();
            assertTrue(alloc.stats().cachedBytes() - cachedBefore >= reserved,
                    "closing gives the graph's blocks back: cached " + cachedBefore + " -> " + alloc.stats().cachedBytes() + ", graph held " + reserved);
        } finally {
            x.close();
            y.close();
        }
    }
}
