package dev.kiln.cuda;


import java.util.ArrayList;
import java.util.List;
import java.util.Locale;


/**
 * The text of {@code kiln devices}: driver and CUDA versions, which NVIDIA libraries this machine has (and their
 * versions where asking is cheap), and one line per GPU. Never throws: without a GPU or a driver it says
 * "no NVIDIA GPU found (reason)".
 */
public final class DeviceReport {
    private DeviceReport() {}

    public static String describe() {
        StringBuilder out = new StringBuilder();
        List<GpuInfo> gpus = List.of();
        String reason = null;
        try (Nvml nvml = Nvml.open()) {
            out.append("NVIDIA driver ").append(nvml.driverVersion());
            int cuda = nvml.cudaDriverVersion();
            out.append(", CUDA ").append(cuda / 1000).append('.').append(cuda % 1000 / 10).append(" (driver API)\n");
            gpus = nvml.devices();
            if (gpus.isEmpty()) reason = "the driver reports no devices";
        } catch (CudaException.LibraryNotFound e) {
            reason = "NVML (libnvidia-ml.so.1) not found: no NVIDIA driver on this machine";
        } catch (Throwable e) { // a report never fails: a broken driver is one more thing to report
            reason = e.getMessage() == null ? e.toString() : e.getMessage();
        }
        if (reason != null) {
            out.setLength(0);
            out.append("no NVIDIA GPU found (").append(reason).append(")\n");
        }
        out.append("libraries: ").append(String.join(", ", libraries())).append('\n');
        for (GpuInfo g : gpus) out.append(g.line()).append('\n');
        return out.toString();
    }

    /**
     * One refresh of {@code kiln devices --watch}: per GPU its readings and the processes using it (pid, memory,
     * command line); "no NVIDIA GPU found (reason)" without one. Never throws.
     */
    public static String live() {
        StringBuilder out = new StringBuilder();
        try (Nvml nvml = Nvml.open()) {
            out.append("NVIDIA driver ").append(nvml.driverVersion()).append('\n');
            List<GpuInfo> gpus = nvml.devices();
            if (gpus.isEmpty()) return "no NVIDIA GPU found (the driver reports no devices)\n";
            for (GpuInfo g : gpus) out.append(block(g, nvml.sample(g.index()), nvml.processes(g.index())));
            return out.toString();
        } catch (CudaException.LibraryNotFound e) {
            return "no NVIDIA GPU found (NVML (libnvidia-ml.so.1) not found: no NVIDIA driver on this machine)\n";
        } catch (Throwable e) { // as describe(): a broken driver is one more thing to report
            return "no NVIDIA GPU found (" + (e.getMessage() == null ? e.toString() : e.getMessage()) + ")\n";
        }
    }

    /** One GPU's block: a title line, its readings, then a line per process. */
    static String block(GpuInfo g, GpuSample s, List<GpuProcess> processes) {
        StringBuilder b = new StringBuilder();
        b.append("cuda:").append(g.index()).append("  ").append(g.name()).append("  sm_").append(g.computeMajor()).append(g.computeMinor());
        if (!g.busId().isEmpty()) b.append("  ").append(g.busId());
        b.append('\n').append(String.format(Locale.ROOT, "  util %s  memory %.1f/%.1f GiB  power %s  temp %s  SM clock %s%n",
                s.utilizationPercent() < 0 ? "n/a" : s.utilizationPercent() + "%", s.usedBytes() / GpuSample.GIB, s.totalBytes() / GpuSample.GIB,
                s.powerWatts() < 0 ? "n/a" : String.format(Locale.ROOT, "%.0f W", s.powerWatts()),
                s.temperatureC() < 0 ? "n/a" : s.temperatureC() + " C", s.smClockMHz() < 0 ? "n/a" : s.smClockMHz() + " MHz"));
        if (processes.isEmpty()) b.append("  no processes\n");
        for (GpuProcess p : processes) {
            b.append(String.format(Locale.ROOT, "  pid %-8d %10s  %s", p.pid(),
                    p.usedBytes() < 0 ? "n/a" : String.format(Locale.ROOT, "%.2f GiB", p.usedBytes() / GpuSample.GIB), command(p.pid())).stripTrailing()).append('\n');
        }
        return b.toString();
    }

    /** A process's command line from /proc (Linux), cut to 80 characters; "" where it cannot be read (another container). */
    static String command(int pid) {
        try {
            String c = java.nio.file.Files.readString(java.nio.file.Path.of("/proc", Integer.toString(pid), "cmdline")).replace('\0', ' ').trim();
            return c.length() > 80 ? c.substring(0, 77) + "..." : c;
        } catch (java.io.IOException | RuntimeException e) {
            return "";
        }
    }

    /** "cuBLAS 13.0.2", "cuDNN 9.14.0", "NVRTC 13.0", "NCCL 2.28.7", or "... not found", one entry per library. */
    static List<String> libraries() {
        List<String> libs = new ArrayList<>();
        libs.add(entry("cuBLAS", Cublas.LIB, () -> dotted(Cublas.libraryVersion(), 10000, 100)));
        libs.add(entry("cuBLASLt", CublasLt.LIB, () -> ""));
        libs.add(entry("cuDNN", Cudnn.LIB, () -> dotted((int) Cudnn.version(), 10000, 100)));
        libs.add(entry("NVRTC", Nvrtc.LIB, Nvrtc::version));
        libs.add(entry("NCCL", Nccl.LIB, Nccl::version));
        return libs;
    }

    private interface Version { String get() throws Throwable; }

    private static String entry(String label, NativeLibrary lib, Version version) {
        if (!lib.available()) return label + " not found";
        try {
            String v = version.get();
            return v.isEmpty() ? label + " found" : label + " " + v;
        } catch (Throwable t) {
            return label + " found (version unknown)";
        }
    }

    /** 91400 with (10000, 100) → "9.14.0"; 130002 → "13.0.2". */
    static String dotted(int v, int majorDiv, int minorDiv) {
        return (v / majorDiv) + "." + (v % majorDiv / minorDiv) + "." + (v % minorDiv);
    }
}
