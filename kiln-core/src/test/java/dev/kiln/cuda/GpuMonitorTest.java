package dev.kiln.cuda;

import dev.kiln.Device;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** The monitor's thread and summaries with a fake sampler: no GPU needed. */
class GpuMonitorTest {
    private static final long GIB = 1L << 30;

    @Test void summariesAverageWhatTheGpuReportsAndKeepThePeakOfMemory() {
        GpuSummary s = GpuSummary.of(List.of(new GpuSample(20, 2 * GIB, 80 * GIB, 100, 50, 1500),
                new GpuSample(40, 6 * GIB, 80 * GIB, -1, 60, 1700), new GpuSample(-1, 4 * GIB, 80 * GIB, 300, -1, -1)));
        assertEquals(3, s.samples());
        assertEquals(30, s.utilizationPercent(), 1e-12, "the -1 reading is left out");
        assertEquals(6 * GIB, s.peakUsedBytes());
        assertEquals(200, s.powerWatts(), 1e-12);
        assertEquals(60, s.maxTemperatureC());
        assertEquals(1600, s.smClockMHz(), 1e-12);
        assertEquals("30.0,6.000,200.0,60,1600", s.csv());
        assertFalse(s.mostlyIdle(), "30% is the threshold, not below it");
        assertNull(GpuSummary.of(List.of()));
    }

    @Test void idleMeansLowUtilisationThatWasReported() {
        var busy12 = new GpuSample(12, 0, GIB, -1, -1, -1);
        assertTrue(GpuSummary.of(java.util.Collections.nCopies(GpuSummary.MIN_SAMPLES_TO_JUDGE, busy12)).mostlyIdle());
        assertFalse(GpuSummary.of(List.of(busy12)).mostlyIdle(), "one sample of a short epoch says too little");
        assertFalse(GpuSummary.of(java.util.Collections.nCopies(9, new GpuSample(-1, 0, GIB, -1, -1, -1))).mostlyIdle(), "no utilisation reading: no warning");
    }

    @Test void samplesOnItsThreadUntilClosedAndMarksSplitTheSamples() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        var closed = new AtomicInteger();
        GpuMonitor m = new GpuMonitor(() -> new GpuSample(calls.incrementAndGet(), GIB, 2 * GIB, 1, 1, 1), closed::incrementAndGet, Duration.ofMillis(5));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (calls.get() < 3 && System.nanoTime() < deadline) Thread.sleep(5);
        GpuSummary first = m.mark();
        assertNotNull(first);
        assertTrue(first.samples() >= 3, "" + first);
        assertNotNull(m.latest());
        m.close();
        int after = calls.get();
        Thread.sleep(50);
        assertEquals(after, calls.get(), "no sampling after close");
        assertEquals(1, closed.get(), "the NVML session is closed once");
        GpuSummary second = m.mark();
        if (second != null) assertTrue(second.utilizationPercent() > first.utilizationPercent(), "a mark starts a new stretch");
    }

    @Test void aFailingGpuEndsTheMonitorNotTheJob() throws Exception {
        GpuMonitor m = new GpuMonitor(() -> { throw new IllegalStateException("GPU fell off the bus"); }, () -> {}, Duration.ofMillis(5));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (m.failure() == null && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals("GPU fell off the bus", m.failure());
        assertNull(m.latest());
        m.close();
    }

    @Test void cudaIndicesFollowCudaVisibleDevices() {
        assertEquals(1, GpuMonitor.nvmlIndex(1, null));
        assertEquals(3, GpuMonitor.nvmlIndex(1, "2,3"));
        assertEquals(0, GpuMonitor.nvmlIndex(0, "GPU-8f2c,GPU-11aa"), "UUIDs: the index as it is");
    }

    @Test void noMonitorOnTheCpu() {
        assertNull(GpuMonitor.start(Device.CPU, Duration.ofSeconds(1)));
    }

    @Test void aWatchBlockShowsReadingsAndProcesses() {
        var g = new GpuInfo(0, "NVIDIA H200", 140 * GIB, 12 * GIB, 9, 0, 61, 87, 312, "00000000:18:00.0");
        String b = DeviceReport.block(g, new GpuSample(87, 12 * GIB, 140 * GIB, 312, 61, 1980),
                List.of(new GpuProcess(Integer.MAX_VALUE, 10 * GIB), new GpuProcess(7, -1)));
        assertTrue(b.startsWith("cuda:0  NVIDIA H200  sm_90  00000000:18:00.0\n"), b);
        assertTrue(b.contains("util 87%  memory 12.0/140.0 GiB  power 312 W  temp 61 C  SM clock 1980 MHz"), b);
        assertTrue(b.contains("pid " + Integer.MAX_VALUE + "  10.00 GiB\n"), b);
        assertTrue(b.contains("n/a"), "memory NVML may not see: " + b);
        String idle = DeviceReport.block(g, new GpuSample(-1, 0, 140 * GIB, -1, -1, -1), List.of());
        assertTrue(idle.contains("util n/a") && idle.contains("no processes"), idle);
    }
}
