package dev.kiln.train;

import dev.kiln.Tensor;
import dev.kiln.optim.OneCycleLR;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LrScheduleTest {
    @Test void cosineStartsAtTheRateAndAnnealsTowardsZero() {
        assertEquals(1e-3, LrSchedule.COSINE.lr(1e-3, 1, 10, 0, 50), 1e-15);
        assertEquals(0.5e-3, LrSchedule.COSINE.lr(1e-3, 6, 10, 17, 50), 1e-15);
        assertEquals(1e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.9)), LrSchedule.COSINE.lr(1e-3, 10, 10, 49, 50), 1e-15);
        assertEquals(2e-3, LrSchedule.CONSTANT.lr(2e-3, 7, 10, 3, 50));
    }

    /** The rate each step of a run trains with, stepping the hooks as Trainer.trainEpoch does (from resumes one epoch mid-way). */
    private static double[] run(LrSchedule schedule, double base, int epochs, int steps, int resumeEpoch, int resumeStep) throws Exception {
        SGD opt = new SGD(List.of(Tensor.of(new float[]{1}, 1).requiresGrad(true)), 99);
        List<Double> seen = new ArrayList<>();
        for (int e = resumeEpoch; e <= epochs; e++) {
            int from = e == resumeEpoch ? resumeStep : 0;
            Trainer.StepHook hook = schedule.apply(opt, base, e, epochs, from, steps, null);
            for (int step = from + 1; step <= steps; step++) {
                seen.add(opt.groups().getFirst().lr());
                if (hook != null) hook.after(step, () -> 0, step);
            }
        }
        return seen.stream().mapToDouble(Double::doubleValue).toArray();
    }

    @Test void oneCycleMovesEachStepAsPyTorchsOneCycleLR() throws Exception {
        int epochs = 3, steps = 7;
        SGD opt = new SGD(List.of(Tensor.of(new float[]{1}, 1).requiresGrad(true)), 0.1);
        OneCycleLR reference = new OneCycleLR(opt, 2e-3, epochs * steps);
        double[] expected = new double[epochs * steps];
        for (int t = 0; t < expected.length; t++) {
            if (t > 0) reference.step();
            expected[t] = opt.groups().getFirst().lr();
        }
        double[] got = run(LrSchedule.ONECYCLE, 2e-3, epochs, steps, 1, 0);
        assertArrayEquals(expected, got, 1e-18);
        assertEquals(2e-3 / 25, got[0], 1e-18);
        assertEquals(2e-3, java.util.Arrays.stream(got).max().orElseThrow(), 2e-3 * 0.02);   // the peak falls between steps 5 and 6
        // resumed at step 4 of epoch 2: the same rates from there on
        double[] resumed = run(LrSchedule.ONECYCLE, 2e-3, epochs, steps, 2, 4);
        assertArrayEquals(java.util.Arrays.copyOfRange(expected, steps + 4, expected.length), resumed, 1e-18);
    }

    @Test void perEpochSchedulesNeedNoStepHook() throws Exception {
        SGD opt = new SGD(List.of(Tensor.of(new float[]{1}, 1).requiresGrad(true)), 99);
        assertNull(LrSchedule.COSINE.apply(opt, 1e-3, 6, 10, 0, 50, null));
        assertEquals(0.5e-3, opt.groups().getFirst().lr(), 1e-15);
        double[] cosine = run(LrSchedule.COSINE, 1e-3, 2, 3, 1, 0);
        assertArrayEquals(new double[]{1e-3, 1e-3, 1e-3, 0.5e-3, 0.5e-3, 0.5e-3}, cosine, 1e-15);
    }

    @Test void parsesTheCommandLineNames() {
        assertEquals(LrSchedule.COSINE, LrSchedule.parse("Cosine"));
        assertEquals(LrSchedule.ONECYCLE, LrSchedule.parse("onecycle"));
        assertEquals("unknown learning-rate schedule 'step' (choose constant, cosine or onecycle)",
                assertThrows(IllegalArgumentException.class, () -> LrSchedule.parse("step")).getMessage());
    }
}
