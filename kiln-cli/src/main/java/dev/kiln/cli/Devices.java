package dev.kiln.cli;

import dev.kiln.Backends;
import dev.kiln.Device;

/** Which devices this process can use. */
final class Devices {
    private Devices() {}

    /** cuda:0 when its backend starts, else the CPU. */
    static Device best() { return cudaProblem() == null ? Device.cuda(0) : Device.CPU; }

    /** Null when cuda:0 is usable, else why not. */
    static String cudaProblem() {
        if (!dev.kiln.cuda.Cuda.isAvailable()) return dev.kiln.cuda.Cuda.unavailableReason();
        try {
            Backends.get(Device.cuda(0));
            return null;
        } catch (RuntimeException | LinkageError e) { // no library, no driver, no GPU: all mean "use the CPU"
            return e.getMessage() == null ? e.toString() : e.getMessage();
        }
    }

    /** The first sentence of why a GPU is not usable: the library search's list of every folder tried stays out. */
    static String shortReason(Throwable e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        int cut = m.indexOf(". Looked in");
        if (cut < 0) cut = m.indexOf("; looked in");
        m = cut > 0 ? m.substring(0, cut) : m;
        return m.length() > 200 ? m.substring(0, 197) + "..." : m;
    }

    /** The CPU as reports show it: its model (from /proc/cpuinfo where there is one), cores, vector width and kernels. */
    static String describeCpu() {
        String model = "";
        try (var lines = java.nio.file.Files.lines(java.nio.file.Path.of("/proc/cpuinfo"))) {
            model = lines.filter(l -> l.startsWith("model name")).map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("");
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            // not Linux: the cores and the vector width say enough
        }
        return (model.isEmpty() ? "" : model + ", ") + Runtime.getRuntime().availableProcessors() + " cores, Vector API "
                + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit float vectors, GEMM kernel "
                + dev.kiln.cpu.CpuBackend.INSTANCE.gemmKernel() + ", int8 kernel " + dev.kiln.cpu.CpuBackend.INSTANCE.int8Kernel()
                + ", 3x3 convolution kernel " + dev.kiln.cpu.CpuBackend.INSTANCE.conv3x3Kernel();
    }

    /** Parses --device: cpu, cuda, cuda:N or auto. */
    static Device parse(String s) {
        if (s.equalsIgnoreCase("auto")) return best();
        Device d = Device.parse(s);
        if (d.isCuda()) {
            try {
                Backends.get(d);
            } catch (RuntimeException | LinkageError e) {
                throw new IllegalArgumentException("--device " + s + " is not usable: " + shortReason(e) + " ('kiln devices' says more)");
            }
        }
        return d;
    }
}
