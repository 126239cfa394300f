package dev.kiln.cli;

import dev.kiln.train.EpochStats;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The within-epoch curve: positions in epochs, the debiased moving average, throughput per interval; and its chart. */
class StepCurveTest {
    @TempDir Path dir;

    @Test void pointsAreFractionalEpochsWithASmoothedLossAndTheRateSinceTheLastPoint() {
        StepCurve c = new StepCurve(1);
        c.step(1, 4, 2.0, 10, 1.0);
        c.step(2, 4, Double.NaN, 20, 2.0);   // not read back: no point
        c.step(3, 4, 1.0, 30, 3.0);
        c.step(4, 4, Double.NaN, 40, 4.0);
        c.step(1, 4, 0.5, 10, 0.5);          // epoch 2 starts its clock again
        var p = c.points();
        assertEquals(3, p.size());
        assertEquals(0.25, p.get(0).epochs(), 1e-12);
        assertEquals(0.75, p.get(1).epochs(), 1e-12);
        assertEquals(1.25, p.get(2).epochs(), 1e-12);
        assertEquals(2.0, p.get(0).smoothedLoss(), 1e-12, "debiased: the first point is its own average");
        double a = StepCurve.SMOOTHING;
        assertEquals((a * (1 - a) * 2 + (1 - a) * 1) / (a * (1 - a) + (1 - a)), p.get(1).smoothedLoss(), 1e-12);
        assertEquals(10.0, p.get(1).perSecond(), 1e-12, "20 samples in 2 s");
        assertEquals(20.0, p.get(2).perSecond(), 1e-12, "the new epoch's 10 samples in 0.5 s");
    }

    @Test void tokensPerSecondCountTheContext() {
        StepCurve c = new StepCurve(16);
        c.step(1, 10, 3.0, 4, 0.5);
        assertEquals(128.0, c.points().getFirst().perSecond(), 1e-12);
    }

    @Test void theChartGainsTheStepPanelOnceThereAreTwoPoints() throws Exception {
        var epochs = List.of(new EpochStats(1, 0.9, 0.8, 0.7, 1000, 1));
        Path one = dir.resolve("one.png"), two = dir.resolve("two.png");
        try {
            Chart.write(one, "t", epochs, "test", List.of(new StepCurve.Point(0.5, 1, 1, 10)), "samples/s");
            Chart.write(two, "t", epochs, "test", List.of(new StepCurve.Point(0.5, 1, 1, 10), new StepCurve.Point(1, 0.8, 0.9, 12)), "samples/s");
        } catch (RuntimeException | LinkageError e) { // a machine without fonts draws no chart (kiln train says so in one line)
            org.junit.jupiter.api.Assumptions.abort("no chart on this machine: " + e.getMessage());
        }
        assertEquals(500, ImageIO.read(one.toFile()).getHeight());
        assertEquals(900, ImageIO.read(two.toFile()).getHeight(), "the step panel (400) above the epoch chart (500)");
    }
}
