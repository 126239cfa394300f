package dev.kiln.cli;

import dev.kiln.cuda.GpuSample;
import dev.kiln.cuda.GpuSummary;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The GPU's columns in metrics.csv, and devices --watch where there is no GPU. */
class GpuWatchTest {
    @Test void metricsGainTheGpuColumnsBlankForEpochsNotWatched() {
        var s = GpuSummary.of(List.of(new GpuSample(55, 1L << 30, 4L << 30, 200, 60, 1800)));
        var lines = GpuWatch.withGpuColumns(List.of("epoch,train_loss", "1,0.5", "2,0.4"), Map.of(2, s));
        assertEquals(List.of("epoch,train_loss," + GpuSummary.CSV_HEADER, "1,0.5,,,,,", "2,0.4,55.0,1.000,200.0,60,1800"), lines);
        assertEquals(lines.get(0).split(",").length, lines.get(1).split(",", -1).length, "a blank cell per column");
    }

    @Test void watchingWithoutAGpuSaysSo() {
        if (dev.kiln.cuda.Nvml.available()) return; // a GPU machine: GpuMonitorGpuTest covers the live report
        MainTest.Run r = MainTest.kiln("devices", "--watch", "0.1", "--count", "2");
        assertEquals(1, r.code(), r.toString());
        assertTrue(r.out().startsWith("no NVIDIA GPU found"), r.out());
        assertEquals(1, r.out().lines().count(), "said once: " + r.out());
    }

    @Test void countGoesWithWatch() {
        MainTest.assertOneLineError(MainTest.kiln("devices", "--count", "2"), "--count goes with --watch");
        MainTest.assertOneLineError(MainTest.kiln("devices", "--watch", "0"), "--watch takes a positive number of seconds");
    }
}
