package dev.kiln.cuda.lib;

import dev.kiln.cuda.CudaException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static dev.kiln.cuda.lib.Bind.ADDR;
import static dev.kiln.cuda.lib.Bind.status;

/**
 * The text of {@code kiln devices}: driver and CUDA versions, which NVIDIA libraries this machine has (and their
 * versions where asking is cheap), and one line per GPU. Never throws: without a GPU or a driver it says
 * "no NVIDIA GPU found (reason)".
 */
public final class DeviceReport {
    private DeviceReport() {}

    static final Bind.Library NVRTC = new Bind.Library("nvrtc", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so");
    static final Bind.Library NCCL = new Bind.Library("nccl", "libnccl.so.2", "libnccl.so");
    static final Bind.Library CUBLASLT = CublasLt.LIB;

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

    /** "cuBLAS 13.0.2", "cuDNN 9.14.0", "NVRTC 13.0", "NCCL found", or "... not found", one entry per library. */
    static List<String> libraries() {
        List<String> libs = new ArrayList<>();
        libs.add(entry("cuBLAS", Cublas.LIB, () -> dotted(Cublas.libraryVersion(), 10000, 100)));
        libs.add(entry("cuBLASLt", CUBLASLT, () -> dotted(CublasLt.libraryVersion(), 10000, 100)));
        libs.add(entry("cuDNN", Cudnn.LIB, () -> dotted((int) Cudnn.version(), 10000, 100)));
        libs.add(entry("NVRTC", NVRTC, DeviceReport::nvrtcVersion));
        libs.add(entry("NCCL", NCCL, () -> ""));
        return libs;
    }

    private interface Version { String get() throws Throwable; }

    private static String entry(String label, Bind.Library lib, Version version) {
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

    private static String nvrtcVersion() throws Throwable {
        MethodHandle h = NVRTC.bind("nvrtcVersion", status(ADDR, ADDR));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(Bind.INT), minor = a.allocate(Bind.INT);
            int st = (int) h.invokeExact(major, minor);
            if (st != 0) return "";
            return major.get(Bind.INT, 0) + "." + minor.get(Bind.INT, 0);
        }
    }
}
