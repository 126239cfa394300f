package dev.kiln.profile;

import dev.kiln.Backends;
import dev.kiln.backend.Backend;
import dev.kiln.autograd.Autograd;
import dev.kiln.cuda.CudaAllocator;
import dev.kiln.cuda.CudaBackend;
import dev.kiln.cuda.CudaDevice;
import dev.kiln.cuda.Event;
import dev.kiln.io.Json;

import java.io.IOException;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Times every backend call (every kernel an op runs) on the CPU and, on CUDA, on the device, and the input
 * pipeline's copies on the copy stream:
 * <pre>{@code
 * try (Profiler prof = Profiler.start()) {
 *     ... steps ...
 * } // then prof.summary(), prof.writeChromeTrace(path)
 * }</pre>
 * The hook is {@link dev.kiln.Backends#get}, which every op passes: while a profiler runs, the interceptor it installs
 * there hands out a proxy of the backend that times each call; otherwise it costs one field read. GPU times come from timing events recorded on
 * the stream around each call and are read when the profiler closes, so profiling adds no host synchronisation
 * to the steps (it adds event records: a few microseconds per call). A call's GPU span runs from the stream
 * reaching its first event to reaching its second, so it includes any gap in which the device waited for the host.
 * One profiler at a time, process-wide; every thread's calls are recorded.
 */
public final class Profiler implements AutoCloseable {
    private static volatile Profiler active;

    /**
     * One finished span: on the host (track "cpu", tid a thread), on a device stream ("compute" or "copy"), or a
     * training step's phase (track "phase", {@code bytes} the phase's peak of GPU memory, -1 on the CPU).
     * {@code phase} is the phase an op was issued in, or null.
     */
    public record Span(String name, String track, int device, long tid, double startMicros, double durationMicros, long bytes, String phase) {
        public double endMicros() { return startMicros + durationMicros; }
    }

    /** A span being timed; {@link #close()} ends it. */
    public interface Scope extends AutoCloseable {
        @Override void close();
    }

    private static final Scope NOTHING = () -> { };
    /** The host row of the phases in the Chrome trace: no Java thread id comes near it. */
    private static final long PHASE_TID = 1_000_000_000L;

    private record GpuMark(String name, String track, CudaDevice device, Event begin, Event end, long bytes, String phase) {}

    /** The phase the phase thread is in (null outside one): ops that thread issues are counted to it. */
    private volatile String currentPhase;
    private volatile long phaseThread = -1;
    private final java.util.Set<CudaDevice> devices = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));

    private final long originNanos = System.nanoTime();
    private final ConcurrentLinkedQueue<Span> cpuSpans = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<GpuMark> gpuMarks = new ConcurrentLinkedQueue<>();
    private final Map<CudaDevice, Event> origins = Collections.synchronizedMap(new IdentityHashMap<>());
    private final Map<CudaDevice, Double> originMicros = Collections.synchronizedMap(new IdentityHashMap<>());
    private final Map<Backend, Backend> proxies = Collections.synchronizedMap(new IdentityHashMap<>());
    private final List<Span> spans = new ArrayList<>();
    private final Map<Integer, Map<String, Long>> memoryAtPeak = new TreeMap<>();
    private boolean closed;

    private Profiler() {}

    /** Starts recording; only one profiler may run at a time. */
    public static synchronized Profiler start() {
        if (active != null) throw new IllegalStateException("a Profiler is already running; close it first");
        Profiler p = new Profiler();
        active = p;
        Backends.setInterceptor(p::proxy);
        return p;
    }

    /** Times a copy queued on {@code device}'s copy stream inside the returned scope (a no-op when not profiling). */
    public static Scope copySpan(CudaDevice device, String name, long bytes) {
        Profiler p = active;
        return p == null ? NOTHING : p.gpuSpan(device, device.copyStream(), name, "copy", bytes);
    }

    /**
     * Times a collective queued on {@code stream} (a communicator's own stream) inside the returned scope: the
     * "comm" track, whose overlap with the compute stream the summary reports (a no-op when not profiling).
     */
    public static Scope commSpan(CudaDevice device, java.lang.foreign.MemorySegment stream, String name, long bytes) {
        Profiler p = active;
        return p == null ? NOTHING : p.gpuSpan(device, stream, name, "comm", bytes);
    }

    /**
     * Marks a phase of a training step (data wait, forward, backward, optimizer) inside the returned scope: its time,
     * the ops issued in it and the peak of GPU memory during it (which resets the allocator's high-water mark). A
     * no-op when not profiling. Phases do not nest; one thread marks them.
     */
    public static Scope phase(String name) {
        Profiler p = active;
        if (p == null) return NOTHING;
        for (CudaDevice d : p.devices) d.allocator().resetPeak();
        p.phaseThread = Thread.currentThread().threadId();
        p.currentPhase = name;
        long t0 = System.nanoTime();
        return () -> {
            long peak = -1;
            synchronized (p.devices) {
                for (CudaDevice d : p.devices) peak = Math.max(peak, d.allocator().peakAllocatedBytes());
            }
            p.currentPhase = null;
            p.cpuSpans.add(new Span(name, "phase", -1, PHASE_TID, p.micros(t0), (System.nanoTime() - t0) / 1e3, peak, name));
        };
    }

    /** The phase of an op issued now on this thread, or null. */
    private String phaseNow() {
        return Thread.currentThread().threadId() == phaseThread ? currentPhase : null;
    }

    private Backend proxy(Backend b) {
        return proxies.computeIfAbsent(b, k -> (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(),
                new Class<?>[]{Backend.class}, new Timing(k)));
    }

    /** Times each call of one backend. */
    private final class Timing implements InvocationHandler {
        private final Backend target;
        private final CudaDevice cuda; // null on the CPU

        Timing(Backend target) {
            this.target = target;
            this.cuda = target instanceof CudaBackend ? CudaDevice.get(target.device().index()) : null;
            if (cuda != null && devices.add(cuda)) cuda.allocator().traceSites(true);
        }

        @Override public Object invoke(Object proxy, Method m, Object[] args) throws Throwable {
            if (m.getDeclaringClass() == Object.class || m.getName().equals("device")) return call(target, m, args);
            String name = opName(m, args);
            Object result = timed(name, () -> call(target, m, args));
            // what a sequence op prepares once and calls each step (lstmSteps, stepProducts' function) is timed call by
            // call too, as "lstmSteps.forward": the recurrence is most of an LSTM's step
            Class<?> type = m.getReturnType();
            if (result == null || (type != Backend.LstmSteps.class && type != java.util.function.BinaryOperator.class)) return result;
            return Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{type}, (p, sm, sa) ->
                    sm.getDeclaringClass() == Object.class ? call(result, sm, sa) : timed(name + "." + sm.getName(), () -> call(result, sm, sa)));
        }

        /** Runs one call as a span named name: host time, device time on the compute stream, its allocations named. */
        private Object timed(String name, Call body) throws Throwable {
            String phase = phaseNow();
            long t0 = System.nanoTime();
            Scope gpu = cuda == null ? NOTHING : gpuSpan(cuda, cuda.stream(), name, "compute", 0);
            String backward = Autograd.runningBackward();
            String named = cuda == null ? null : CudaAllocator.nameAllocations(backward == null ? name : name + " (" + backward + " backward)");
            try {
                return body.run();
            } finally {
                if (cuda != null) CudaAllocator.nameAllocations(named);
                gpu.close();
                cpuSpans.add(new Span(name, "cpu", -1, Thread.currentThread().threadId(), micros(t0), (System.nanoTime() - t0) / 1e3, 0, phase));
            }
        }
    }

    @FunctionalInterface
    private interface Call {
        Object run() throws Throwable;
    }

    private static Object call(Object target, Method m, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** "binary.ADD" for a call whose first argument is an op enum, else the method's name. */
    private static String opName(Method m, Object[] args) {
        if (args != null && args.length > 0 && args[0] instanceof Enum<?> e) return m.getName() + "." + e.name();
        return m.getName();
    }

    private Scope gpuSpan(CudaDevice device, java.lang.foreign.MemorySegment stream, String name, String track, long bytes) {
        originOf(device);
        Event begin = Event.create(device, true), end = Event.create(device, true);
        String phase = phaseNow();
        begin.record(stream);
        return () -> {
            end.record(stream);
            gpuMarks.add(new GpuMark(name, track, device, begin, end, bytes, phase));
        };
    }

    /**
     * The device's time origin: an event recorded when the device is idle, paired with the host clock then, so
     * device spans can be placed on the host's time line (once per device and profiler: one synchronisation).
     */
    private void originOf(CudaDevice device) {
        if (origins.containsKey(device)) return;
        synchronized (origins) {
            if (origins.containsKey(device)) return;
            device.synchronize();
            Event e = Event.create(device, true);
            e.record(device.stream());
            e.synchronize();
            originMicros.put(device, micros(System.nanoTime()));
            origins.put(device, e);
        }
    }

    private double micros(long nanos) { return (nanos - originNanos) / 1e3; }

    /** Stops recording, waits for the timed device work and turns the events into spans. */
    @Override public void close() {
        if (closed) return;
        synchronized (Profiler.class) {
            if (active == this) {
                active = null;
                Backends.setInterceptor(null);
            }
        }
        closed = true;
        synchronized (devices) {
            for (CudaDevice d : devices) {
                memoryAtPeak.put(d.index(), d.allocator().sitesAtPeak());
                d.allocator().traceSites(false);
            }
        }
        spans.addAll(cpuSpans);
        for (GpuMark g : gpuMarks) {
            g.end().synchronize();
            Event origin = origins.get(g.device());
            double base = originMicros.get(g.device());
            double start = base + 1e3 * g.begin().millisSince(origin), end = base + 1e3 * g.end().millisSince(origin);
            spans.add(new Span(g.name(), g.track(), g.device().index(), switch (g.track()) { case "copy" -> 2; case "comm" -> 3; default -> 1; }, start, end - start, g.bytes(), g.phase()));
            g.begin().close();
            g.end().close();
        }
        for (Event e : origins.values()) e.close();
        spans.sort(java.util.Comparator.comparingDouble(Span::startMicros));
    }

    /** Every span recorded (after close), by start time. */
    public List<Span> spans() {
        if (!closed) throw new IllegalStateException("close the profiler before reading its spans");
        return Collections.unmodifiableList(spans);
    }

    /**
     * The phases' table when steps were marked ({@link #phase}), then per op (and per copy): calls, host milliseconds,
     * device milliseconds; the largest device (then host) time first.
     */
    public String summary() {
        return phaseSummary() + opTable(spans().stream().filter(s -> !s.track().equals("phase")).toList()) + commSummary(spans()) + memorySummary();
    }

    /**
     * Per GPU with collectives on a communication stream: their time, and how much of it the compute stream was busy
     * meanwhile (hidden behind compute, as data parallel's gradient reductions should be). Empty without collectives.
     */
    static String commSummary(List<Span> spans) {
        StringBuilder sb = new StringBuilder();
        Map<Integer, List<Span>> comm = new TreeMap<>(), compute = new TreeMap<>();
        for (Span s : spans) {
            if (s.track().equals("comm")) comm.computeIfAbsent(s.device(), k -> new ArrayList<>()).add(s);
            if (s.track().equals("compute")) compute.computeIfAbsent(s.device(), k -> new ArrayList<>()).add(s);
        }
        for (var e : comm.entrySet()) {
            List<Span> c = e.getValue(), k = compute.getOrDefault(e.getKey(), List.of());
            double from = Double.POSITIVE_INFINITY, to = Double.NEGATIVE_INFINITY;
            for (Span s : c) { from = Math.min(from, s.startMicros()); to = Math.max(to, s.endMicros()); }
            for (Span s : k) { from = Math.min(from, s.startMicros()); to = Math.max(to, s.endMicros()); }
            List<Span> both = new ArrayList<>(c);
            both.addAll(k);
            double commBusy = busyMicros(c, from, to), overlapped = commBusy + busyMicros(k, from, to) - busyMicros(both, from, to);
            sb.append(String.format(Locale.ROOT, "%ncuda:%d communication stream: %d collectives, %.3f ms; %.3f ms of it beside compute, "
                    + "%.3f ms with the compute stream idle%n", e.getKey(), c.size(), commBusy / 1e3, overlapped / 1e3, (commBusy - overlapped) / 1e3));
        }
        return sb.toString();
    }

    /**
     * Per GPU, what its allocated memory was made of at its highest point while the profiler ran (after close): bytes
     * by the op whose call asked for them, with the op whose backward made that call; largest first.
     */
    public Map<Integer, Map<String, Long>> memoryAtPeak() {
        if (!closed) throw new IllegalStateException("close the profiler before reading its memory peak");
        return Collections.unmodifiableMap(memoryAtPeak);
    }

    /** {@link #memoryAtPeak} as a table, the 20 largest entries of each GPU. */
    String memorySummary() {
        StringBuilder sb = new StringBuilder();
        for (var d : memoryAtPeak.entrySet()) {
            long total = d.getValue().values().stream().mapToLong(Long::longValue).sum();
            sb.append(String.format(Locale.ROOT, "%ncuda:%d memory at its peak, %.1f MiB, by the op that allocated it:%n", d.getKey(), total / 1048576.0));
            d.getValue().entrySet().stream().limit(20).forEach(e -> sb.append(String.format(Locale.ROOT, "%12.1f MiB  %s%n", e.getValue() / 1048576.0, e.getKey())));
        }
        return sb.toString();
    }

    /**
     * Per phase: how often, host ms, GPU ms of the ops issued in it, its peak GPU memory, and its five largest ops with
     * their share of the phase's time (GPU time on a GPU, else host time). Empty when no phase was marked.
     */
    String phaseSummary() {
        Map<String, List<Span>> byPhase = new LinkedHashMap<>();
        for (Span s : spans()) if (s.track().equals("phase")) byPhase.computeIfAbsent(s.name(), k -> new ArrayList<>()).add(s);
        if (byPhase.isEmpty()) return "";
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%-40s %8s %12s %12s %14s%n", "phase", "steps", "CPU ms", "GPU ms", "peak GPU MiB"));
        StringBuilder shares = new StringBuilder();
        for (var e : byPhase.entrySet()) {
            List<Span> ops = spans().stream().filter(s -> e.getKey().equals(s.phase()) && !s.track().equals("phase")).toList();
            double cpu = e.getValue().stream().mapToDouble(Span::durationMicros).sum() / 1e3;
            double gpu = ops.stream().filter(s -> !s.track().equals("cpu")).mapToDouble(Span::durationMicros).sum() / 1e3;
            long peak = e.getValue().stream().mapToLong(Span::bytes).max().orElse(-1);
            sb.append(String.format(Locale.ROOT, "%-40s %8d %12.3f %12.3f %14s%n", e.getKey(), e.getValue().size(), cpu, gpu,
                    peak < 0 ? "-" : String.format(Locale.ROOT, "%.1f", peak / 1048576.0)));
            boolean onGpu = gpu > 0;
            Map<String, Double> time = new TreeMap<>();
            for (Span s : ops) if (s.track().equals("cpu") != onGpu) time.merge(s.name(), s.durationMicros() / 1e3, Double::sum);
            double total = time.values().stream().mapToDouble(Double::doubleValue).sum();
            shares.append(e.getKey()).append(onGpu ? " (share of GPU time):" : " (share of host time in ops):");
            time.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue().reversed()).limit(5)
                    .forEach(t -> shares.append(String.format(Locale.ROOT, "  %s %.0f%%", t.getKey(), 100 * t.getValue() / total)));
            shares.append('\n');
        }
        sb.append('\n').append(shares);
        List<Span> phases = byPhase.values().stream().flatMap(List::stream).toList();
        List<Span> gpuOps = spans().stream().filter(s -> s.track().equals("compute")).toList();
        if (!gpuOps.isEmpty()) {
            double from = phases.stream().mapToDouble(Span::startMicros).min().orElse(0), to = phases.stream().mapToDouble(Span::endMicros).max().orElse(0);
            double busy = busyMicros(gpuOps, from, to), window = to - from;
            sb.append(String.format(Locale.ROOT, "GPU busy %.1f%% of the %.3f ms the phases spanned; idle %.3f ms (the GPU waited for the host: "
                    + "launches, the input, host reads)%n", 100 * busy / window, window / 1e3, (window - busy) / 1e3));
        }
        return sb.append('\n').toString();
    }

    /** How long at least one of {@code spans} ran within [from, to] (microseconds): the union of their intervals. */
    static double busyMicros(List<Span> spans, double from, double to) {
        List<double[]> iv = new ArrayList<>();
        for (Span s : spans) {
            double a = Math.max(from, s.startMicros()), b = Math.min(to, s.endMicros());
            if (b > a) iv.add(new double[]{a, b});
        }
        iv.sort((x, y) -> Double.compare(x[0], y[0]));
        double busy = 0, end = Double.NEGATIVE_INFINITY;
        for (double[] i : iv) {
            if (i[0] > end) {
                busy += i[1] - i[0];
                end = i[1];
            } else if (i[1] > end) {
                busy += i[1] - end;
                end = i[1];
            }
        }
        return busy;
    }

    private static String opTable(List<Span> spans) {
        record Row(String name, long[] calls, double[] cpu, double[] gpu) {}
        Map<String, Row> rows = new TreeMap<>();
        for (Span s : spans) {
            Row r = rows.computeIfAbsent(s.track().equals("copy") || s.track().equals("comm") ? "[" + s.track() + "] " + s.name() : s.name(),
                    n -> new Row(n, new long[1], new double[1], new double[1]));
            switch (s.track()) {
                case "cpu" -> { r.calls()[0]++; r.cpu()[0] += s.durationMicros() / 1e3; }
                case "copy", "comm" -> { r.calls()[0]++; r.gpu()[0] += s.durationMicros() / 1e3; }
                default -> r.gpu()[0] += s.durationMicros() / 1e3;
            }
        }
        List<Row> sorted = new ArrayList<>(rows.values());
        sorted.sort((a, b) -> a.gpu()[0] != b.gpu()[0] ? Double.compare(b.gpu()[0], a.gpu()[0]) : Double.compare(b.cpu()[0], a.cpu()[0]));
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%-40s %8s %12s %12s%n", "op", "calls", "CPU ms", "GPU ms"));
        double cpu = 0, gpu = 0;
        for (Row r : sorted) {
            sb.append(String.format(Locale.ROOT, "%-40s %8d %12.3f %12.3f%n", r.name(), r.calls()[0], r.cpu()[0], r.gpu()[0]));
            cpu += r.cpu()[0];
            gpu += r.gpu()[0];
        }
        sb.append(String.format(Locale.ROOT, "%-40s %8s %12.3f %12.3f%n", "total", "", cpu, gpu));
        return sb.toString();
    }

    /** The spans as a Chrome trace (chrome://tracing, ui.perfetto.dev): pid 0 the host, pid 1+N device N's streams. */
    public void writeChromeTrace(Path file) throws IOException {
        StringBuilder sb = new StringBuilder("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("0/0", "host");
        for (Span s : spans()) {
            if (s.track().equals("phase")) meta.put("0/" + PHASE_TID, "training step phases");
            int pid = s.device() < 0 ? 0 : 1 + s.device();
            if (pid > 0) meta.put(pid + "/0", "cuda:" + s.device());
            if (pid > 0) meta.put(pid + "/" + s.tid(), switch ((int) s.tid()) { case 2 -> "copy stream"; case 3 -> "communication stream"; default -> "compute stream"; });
            sb.append(String.format(Locale.ROOT, "{\"name\":%s,\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%s,\"ts\":%.3f,\"dur\":%.3f%s},\n",
                    Json.quote(s.name()), s.track(), pid, s.tid(), s.startMicros(), s.durationMicros(),
                    s.bytes() > 0 ? ",\"args\":{\"" + (s.track().equals("phase") ? "peak_gpu_bytes" : "bytes") + "\":" + s.bytes() + "}" : ""));
        }
        for (Map.Entry<String, String> e : meta.entrySet()) {
            String[] k = e.getKey().split("/");
            boolean process = k[1].equals("0");
            sb.append(String.format(Locale.ROOT, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%s,\"tid\":%s,\"args\":{\"name\":%s}},\n",
                    process ? "process_name" : "thread_name", k[0], process ? "0" : k[1], Json.quote(e.getValue())));
        }
        sb.setLength(sb.length() - 2); // the last ",\n" (there is always the host's name)
        sb.append("\n]}\n");
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, sb);
    }
}
