package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/** NVML's new calls on a real GPU: a sample, this process among the GPU's processes, the monitor's thread. */
class GpuMonitorGpuTest {
    @Test void aSampleReadsTheGpu() {
        try (Nvml nvml = Nvml.open()) {
            GpuSample s = nvml.sample(0);
            assertTrue(s.totalBytes() > 0 && s.usedBytes() > 0 && s.usedBytes() <= s.totalBytes(), s.toString());
            assertTrue(s.utilizationPercent() <= 100, s.toString());
            assertTrue(s.smClockMHz() == -1 || s.smClockMHz() > 100, "MHz: " + s);
        }
    }

    @Test void thisProcessIsAmongTheGpusProcesses() {
        Tensor t = Tensor.zeros(1024, 1024).to(Device.cuda(0)); // a CUDA context here, holding memory
        try (Nvml nvml = Nvml.open()) {
            var procs = nvml.processes(GpuMonitor.nvmlIndex(0, System.getenv("CUDA_VISIBLE_DEVICES")));
            long pid = ProcessHandle.current().pid();
            // in a container NVML may see host pids only: then the list still has an entry with memory
            assertFalse(procs.isEmpty(), "no process on the GPU while this one holds a context");
            if (procs.stream().anyMatch(p -> p.pid() == pid)) System.out.println("GpuMonitorGpuTest: found own pid " + pid);
        }
        assertEquals(0.0, t.sum().item());
    }

    @Test void theMonitorSamplesWhileAJobRuns() throws Exception {
        try (GpuMonitor m = GpuMonitor.start(Device.cuda(0), Duration.ofMillis(100))) {
            assertNotNull(m);
            Thread.sleep(500);
            assertNotNull(m.latest(), "no sample after 0.5 s: " + m.failure());
            GpuSummary s = m.mark();
            assertTrue(s.samples() >= 2 && s.totalBytes() > 0, String.valueOf(s));
        }
        String live = DeviceReport.live();
        assertTrue(live.contains("cuda:0") && live.contains("SM clock"), live);
    }
}
