package dev.kiln.cuda;


import java.util.ArrayList;
import java.util.List;


/**
 * The text of {@code kiln devices}: driver and CUDA versions, which NVIDIA libraries this machine has (and their
 * versions where asking is cheap), and one line per GPU. Never throws: without a GPU or a driver it says
 * "no NVIDIA GPU found (reason)".
 */
public final class DeviceReport {
    private DeviceReport() {}

    /** Libraries only looked for (nothing of them is bound yet). */
    static final NativeLibrary CUBLASLT = new NativeLibrary("cuBLASLt", "cublasLt", status -> null,
            "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so");

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

    /** "cuBLAS 13.0.2", "cuDNN 9.14.0", "NVRTC 13.0", "NCCL 2.28.7", or "... not found", one entry per library. */
    static List<String> libraries() {
        List<String> libs = new ArrayList<>();
        libs.add(entry("cuBLAS", Cublas.LIB, () -> dotted(Cublas.libraryVersion(), 10000, 100)));
        libs.add(entry("cuBLASLt", CUBLASLT, () -> ""));
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
