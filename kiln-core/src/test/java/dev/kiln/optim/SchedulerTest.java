package dev.kiln.optim;

import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

class SchedulerTest {
    private static double[] sequence(double baseLr, int n, Function<Optimizer, LRScheduler> make) {
        SGD opt = new SGD(List.of(Tensor.of(new float[]{1}, 1).requiresGrad(true)), baseLr);
        LRScheduler s = make.apply(opt);
        double[] lrs = new double[n];
        for (int i = 0; i < n; i++) {
            if (i > 0) s.step();
            lrs[i] = opt.groups().getFirst().lr();
        }
        return lrs;
    }

    @Test void stepLR() {
        assertArrayEquals(new double[]{1, 1, 0.5, 0.5, 0.25}, sequence(1, 5, o -> new StepLR(o, 2, 0.5)), 1e-12);
    }

    @Test void cosineAnnealing() {
        double c = (1 + Math.cos(Math.PI / 4)) / 2; // 0.8536
        assertArrayEquals(new double[]{1, 0.1 + 0.9 * c, 0.55, 0.1 + 0.9 * (1 - c), 0.1},
                sequence(1, 5, o -> new CosineAnnealingLR(o, 4, 0.1)), 1e-12);
    }

    @Test void linearWarmup() {
        assertArrayEquals(new double[]{0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1},
                sequence(0.1, 6, o -> new LinearWarmup(o, 4, 0.25)), 1e-12);
    }

    @Test void oneCycle() {
        // 10 steps, peak at step 0.3*10-1 = 2; initial 1/25, final 1/25/1e4
        double[] lrs = sequence(123, 10, o -> new OneCycleLR(o, 1.0, 10));
        assertEquals(0.04, lrs[0], 1e-12);
        assertEquals(0.52, lrs[1], 1e-12);
        assertEquals(1.0, lrs[2], 1e-12);
        double min = 0.04 / 1e4;
        assertEquals(min + (1 - min) / 2 * (Math.cos(Math.PI / 7) + 1), lrs[3], 1e-12);
        assertEquals(min, lrs[9], 1e-12);
    }

    @Test void oneCycleRefusesToRunPastItsEnd() {
        SGD opt = new SGD(List.of(Tensor.of(new float[]{1}, 1).requiresGrad(true)), 0.1);
        OneCycleLR s = new OneCycleLR(opt, 1.0, 3);
        s.step();
        s.step();
        assertThrows(IllegalStateException.class, s::step);
    }
}
