package dev.kiln.profile;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.io.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ProfilerTest {
    @Test void recordsEveryOpAndWritesAChromeTrace(@TempDir Path dir) throws Exception {
        Tensor a = Tensor.randn(new Generator(1), 16, 16), b = Tensor.randn(new Generator(2), 16, 16);
        Profiler prof;
        try (Profiler p = Profiler.start()) {
            prof = p;
            for (int i = 0; i < 3; i++) a.matmul(b).relu().sum().item();
        }
        List<Profiler.Span> spans = prof.spans();
        assertEquals(3, spans.stream().filter(s -> s.name().equals("matmul")).count());
        assertTrue(spans.stream().allMatch(s -> s.track().equals("cpu")), "no device on the CPU");
        assertTrue(spans.stream().allMatch(s -> s.durationMicros() >= 0 && s.startMicros() >= 0), "times are durations from the start");
        List<Profiler.Span> matmuls = spans.stream().filter(s -> s.name().equals("matmul")).toList();
        for (int i = 1; i < matmuls.size(); i++) {
            assertTrue(matmuls.get(i).startMicros() >= matmuls.get(i - 1).endMicros() - 1e-6, "the three calls in order, not overlapping");
        }
        String table = prof.summary();
        assertTrue(table.contains("matmul") && table.contains("CPU ms") && table.contains("GPU ms"), table);
        String matmulRow = table.lines().filter(l -> l.startsWith("matmul ")).findFirst().orElseThrow();
        assertEquals("3", matmulRow.trim().split("\\s+")[1], "the table counts the calls: " + matmulRow);

        Path file = dir.resolve("trace.json");
        prof.writeChromeTrace(file);
        @SuppressWarnings("unchecked")
        Map<String, Object> trace = (Map<String, Object>) Json.parse(Files.readString(file));
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> events = (List<Map<String, Object>>) trace.get("traceEvents");
        long complete = events.stream().filter(e -> "X".equals(e.get("ph"))).count();
        assertEquals(spans.size(), complete);
        assertTrue(events.stream().anyMatch(e -> "matmul".equals(e.get("name")) && e.containsKey("ts") && e.containsKey("dur")));
    }

    /** A sequence op's steps, prepared once and called each step, show as spans of their own (the recurrence of an LSTM). */
    @Test void recurrentStepsAreTimedCallByCall() {
        Generator gen = new Generator(3);
        Tensor x = Tensor.randn(gen, 4, 2, 32), w = Tensor.randn(gen, 32, 8);   // T 4, B 2, 4H 32 (H 8)
        Tensor xg = Tensor.randn(gen, 5, 2, 24), wg = Tensor.randn(gen, 24, 8);  // a GRU: T 5, 3H 24
        Profiler prof;
        try (Profiler p = Profiler.start()) {
            prof = p;
            dev.kiln.ops.Recurrent.lstm(x, w.requiresGrad(true), null, null)[0].sum().backward();
            dev.kiln.ops.Recurrent.gru(xg, wg, null, null)[0].sum().item();
        }
        java.util.function.Function<String, Long> count = n -> prof.spans().stream().filter(s -> s.name().equals(n)).count();
        assertEquals(4, count.apply("lstmSteps.forward"), "one span a forward step");
        assertEquals(4, count.apply("lstmSteps.backward"), "one span a backward step");
        assertEquals(1, count.apply("lstmSteps.hiddenGradient"));
        assertEquals(5, count.apply("stepProducts.apply"), "the GRU's step products, one a step");
        assertTrue(prof.summary().contains("lstmSteps.forward"), prof.summary());
    }

    /** GPU idle time: the union of the device's spans within the steps' window, overlaps counted once. */
    @Test void busyTimeIsTheUnionOfTheSpansInTheWindow() {
        java.util.function.BiFunction<Double, Double, Profiler.Span> span = (start, dur) -> new Profiler.Span("op", "compute", 0, 1, start, dur, 0, null);
        var spans = java.util.List.of(span.apply(0.0, 10.0), span.apply(5.0, 10.0), span.apply(30.0, 5.0), span.apply(50.0, 100.0));
        assertEquals(15 + 5 + 50, Profiler.busyMicros(spans, 0, 100), 1e-9);
        assertEquals(5 + 5, Profiler.busyMicros(spans, 10, 40), 1e-9);
        assertEquals(0, Profiler.busyMicros(spans, 40, 50), 1e-9);
    }

    /** Collectives on a communication stream: their time, split into what ran beside the same GPU's compute and what did not. */
    @Test void communicationIsSplitIntoTimeBesideComputeAndExposedTime() {
        var spans = java.util.List.of(new Profiler.Span("mm", "compute", 0, 1, 0, 1000, 0, null),
                new Profiler.Span("all_reduce", "comm", 0, 3, 600, 600, 0, null),        // 400 µs beside the product, 200 after it
                new Profiler.Span("mm", "compute", 1, 1, 0, 2000, 0, null),              // another GPU's compute does not count
                new Profiler.Span("all_reduce", "comm", 1, 3, 2500, 100, 0, null));
        String text = Profiler.commSummary(spans);
        assertTrue(text.contains("cuda:0 communication stream: 1 collectives, 0.600 ms; 0.400 ms of it beside compute, 0.200 ms with the compute stream idle"), text);
        assertTrue(text.contains("cuda:1 communication stream: 1 collectives, 0.100 ms; 0.000 ms of it beside compute, 0.100 ms"), text);
        assertEquals("", Profiler.commSummary(spans.subList(0, 1)));
    }

    @Test void offMeansTheBackendItself() {
        assertSame(dev.kiln.cpu.CpuBackend.INSTANCE, dev.kiln.Backends.cpu());
        assertSame(dev.kiln.cpu.CpuBackend.INSTANCE, dev.kiln.Backends.get(dev.kiln.Device.CPU));
        try (Profiler p = Profiler.start()) {
            assertNotSame(dev.kiln.cpu.CpuBackend.INSTANCE, dev.kiln.Backends.get(dev.kiln.Device.CPU));
            assertThrows(IllegalStateException.class, Profiler::start);
        }
    }

    @Test void phasesCountTheirOpsAndShowInTheTableAndTrace(@TempDir Path dir) throws Exception {
        Tensor a = Tensor.randn(new Generator(1), 16, 16), b = Tensor.randn(new Generator(2), 16, 16);
        assertDoesNotThrow(() -> Profiler.phase("outside").close(), "a no-op without a profiler");
        Profiler prof;
        try (Profiler p = Profiler.start()) {
            prof = p;
            for (int i = 0; i < 2; i++) {
                try (var f = Profiler.phase("forward")) {
                    a.matmul(b).relu();
                }
                try (var o = Profiler.phase("optimizer")) {
                    a.add(b);
                }
            }
            a.sum(); // outside any phase
        }
        List<Profiler.Span> spans = prof.spans();
        assertEquals(4, spans.stream().filter(s -> s.track().equals("phase")).count());
        assertTrue(spans.stream().filter(s -> s.name().equals("matmul")).allMatch(s -> "forward".equals(s.phase())));
        assertTrue(spans.stream().filter(s -> s.name().startsWith("reduce") || s.name().startsWith("sum")).allMatch(s -> s.phase() == null));
        String table = prof.summary();
        String forward = table.lines().filter(l -> l.startsWith("forward ")).findFirst().orElseThrow();
        assertEquals("2", forward.trim().split("\\s+")[1], "two forward phases: " + forward);
        assertTrue(forward.trim().endsWith("-"), "no GPU memory on the CPU: " + forward);
        // the ops issued in a phase are its shares (which is largest is the host's timing: relu's first call can be)
        assertTrue(table.lines().anyMatch(l -> l.startsWith("forward (share of host time in ops):") && l.contains("matmul")
                && l.contains("unary.RELU")), table);
        assertFalse(table.lines().anyMatch(l -> l.startsWith("optimizer ") && l.contains("matmul")), table);
        Path file = dir.resolve("trace.json");
        prof.writeChromeTrace(file);
        String trace = Files.readString(file);
        Json.parse(trace);
        assertTrue(trace.contains("training step phases"), "the phases' row is named");
    }
}
