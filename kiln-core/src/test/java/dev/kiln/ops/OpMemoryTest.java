package dev.kiln.ops;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Thousands of forward/backward steps on the CPU hold steady memory: each step's graph (intermediates, nodes,
 * saved tensors) becomes unreachable when the step ends, and the heap after a full collection does not grow.
 */
class OpMemoryTest {
    private static final int STEPS = 3000, WARMUP = 200;
    private static final long SLACK_BYTES = 4L << 20;

    /** What one training step left behind, weakly held so the test itself keeps nothing alive. */
    private record StepTrace(double loss, List<WeakReference<Object>> intermediates) {}

    private static final class Mlp {
        final Generator g = new Generator(1);
        final Tensor w1 = Tensor.randn(g, 16, 8).mul(0.3).requiresGrad(true), b1 = Tensor.zeros(16).requiresGrad(true);
        final Tensor w2 = Tensor.randn(g, 4, 16).mul(0.3).requiresGrad(true), b2 = Tensor.zeros(4).requiresGrad(true);
        final Tensor x = Tensor.randn(g, 32, 8), y = Tensor.of(new long[32], 32);

        StepTrace step() {
            Tensor h = F.linear(x, w1, b1).relu();
            Tensor d = F.dropout(h, 0.1, true, g);
            Tensor loss = F.crossEntropy(F.linear(d, w2, b2), y, 0.1, -100, F.Reduction.MEAN);
            loss.backward();
            sgd(List.of(w1, b1, w2, b2));
            return new StepTrace(loss.item(), List.of(new WeakReference<>(h), new WeakReference<>(d),
                    new WeakReference<>(loss), new WeakReference<>(loss.gradFn())));
        }
    }

    private static final class ConvNet {
        final Generator g = new Generator(2);
        final Tensor k = Tensor.randn(g, 4, 1, 3, 3).mul(0.3).requiresGrad(true), kb = Tensor.zeros(4).requiresGrad(true);
        final Tensor gamma = Tensor.ones(4).requiresGrad(true), beta = Tensor.zeros(4).requiresGrad(true);
        final Tensor runMean = Tensor.zeros(4), runVar = Tensor.ones(4);
        final Tensor w = Tensor.randn(g, 3, 64).mul(0.1).requiresGrad(true);
        final Tensor x = Tensor.randn(g, 2, 1, 8, 8), y = Tensor.of(new long[]{0, 2}, 2);

        StepTrace step() {
            Tensor c = F.conv2d(x, k, kb, 1, 1);
            Tensor n = F.batchNorm(c, runMean, runVar, gamma, beta, true, 0.1, 1e-5).relu();
            Tensor p = F.maxPool2d(n, 2, 2, 0);
            Tensor loss = F.crossEntropy(F.linear(p.flatten(1, 3), w, null), y);
            loss.backward();
            sgd(List.of(k, kb, gamma, beta, w));
            return new StepTrace(loss.item(), List.of(new WeakReference<>(c), new WeakReference<>(p),
                    new WeakReference<>(loss.gradFn())));
        }
    }

    private static void sgd(List<Tensor> params) {
        try (GradMode g = GradMode.disabled()) {
            for (Tensor p : params) {
                p.copyFrom(p.sub(p.grad().mul(0.05)));
                p.zeroGrad();
            }
        }
    }

    @Test void mlpTrainingHoldsSteadyHeapAndFreesEachGraph() { run(new Mlp()::step); }

    @Test void convNetTrainingHoldsSteadyHeapAndFreesEachGraph() { run(new ConvNet()::step); }

    private static void run(Supplier<StepTrace> step) {
        List<WeakReference<Object>> lastRefs = new ArrayList<>();
        double first = Double.NaN, last = Double.NaN;
        long afterWarmup = 0;
        for (int i = 1; i <= STEPS; i++) {
            StepTrace t = step.get();
            if (i == 1) first = t.loss();
            last = t.loss();
            if (i == WARMUP) afterWarmup = usedHeapAfterGc();
            if (i == STEPS) lastRefs = t.intermediates();
        }
        long atEnd = usedHeapAfterGc();
        assertTrue(last < first, "training should reduce the loss: first " + first + ", last " + last);
        assertTrue(atEnd - afterWarmup < SLACK_BYTES, "heap grew from " + afterWarmup + " to " + atEnd + " bytes over "
                + (STEPS - WARMUP) + " steps");
        for (WeakReference<Object> r : lastRefs) assertNull(r.get(), "an intermediate of the last step is still reachable");
    }

    private static long usedHeapAfterGc() {
        Runtime rt = Runtime.getRuntime();
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            System.gc();
            used = Math.min(used, rt.totalMemory() - rt.freeMemory());
        }
        return used;
    }
}
