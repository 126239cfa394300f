package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Settings;
import java.util.ArrayList;
import java.util.List;

/**
 * Whether this machine can run CUDA, and what it has. {@link #isAvailable()} and {@link #deviceCount()} never
 * throw: without libcuda, without a driver or without a GPU they say false / 0, and {@link #unavailableReason()}
 * says why.
 */
public final class Cuda {
    private Cuda() {}

    private static volatile Integer count;
    private static volatile String reason;

    /** Facts about one device, from the driver API. */
    public record DeviceInfo(int index, String name, long totalMemory, int ccMajor, int ccMinor, int multiprocessors) {
        public String computeCapability() { return ccMajor + "." + ccMinor; }
    }

    public static boolean isAvailable() { return deviceCount() > 0; }

    public static int deviceCount() {
        Integer c = count;
        if (c != null) return c;
        synchronized (Cuda.class) {
            if (count != null) return count;
            try {
                count = deviceCountOrThrow();
            } catch (CudaException | LinkageError e) {
                reason = e.getMessage();
                count = 0;
            }
            return count;
        }
    }

    /** Why {@link #isAvailable()} is false, or null when it is true. */
    public static String unavailableReason() {
        deviceCount();
        return reason;
    }

    /** The device count from the driver; throws LibraryNotFound / NoDevice with a clear message. */
    static int deviceCountOrThrow() {
        try {
            Driver.init();
        } catch (CudaException e) {
            if (e.status() == Driver.CUDA_ERROR_NO_DEVICE) {
                throw new CudaException.NoDevice("the CUDA driver is installed but sees no GPU (" + e.getMessage() + ")");
            }
            throw e;
        }
        int n = Driver.deviceCount();
        if (n == 0) throw new CudaException.NoDevice("the CUDA driver is installed but reports no GPU");
        return n;
    }

    /** Fails with a clear {@link CudaException.NoDevice} (or LibraryNotFound) unless a GPU is usable. */
    public static void requireAvailable() {
        if (!isAvailable()) throw new CudaException.NoDevice("no usable CUDA GPU: " + reason);
    }

    /** The driver's CUDA version as "13.0". */
    public static String driverVersion() {
        int v = Driver.driverVersion();
        return (v / 1000) + "." + (v % 1000) / 10;
    }

    /** Every GPU (this opens a context on each: a process that uses one GPU asks for {@link #device} instead). */
    public static List<DeviceInfo> devices() {
        List<DeviceInfo> out = new ArrayList<>();
        for (int i = 0; i < deviceCount(); i++) out.add(info(CudaDevice.get(i)));
        return out;
    }

    /** One GPU's description. */
    public static DeviceInfo device(Device device) { return info(cuda(device)); }

    private static DeviceInfo info(CudaDevice d) {
        return new DeviceInfo(d.index(), d.name(), d.totalMemory(), d.computeCapabilityMajor(), d.computeCapabilityMinor(), d.multiprocessorCount());
    }

    /** Waits for all queued work on every device that has been used. */
    public static void synchronize() {
        // only the devices in use: touching another would make a context there (a data-parallel rank uses one GPU)
        for (CudaDevice d : CudaDevice.opened()) d.synchronize();
    }

    // ------------------------------------------------------------------ math modes (per device)

    /**
     * Whether float32 matrix products on {@code device} may use TF32 tensor cores (about 3 decimal digits of
     * mantissa in the products, float32 accumulation), as PyTorch's {@code torch.backends.cuda.matmul.allow_tf32}.
     * Off by default.
     */
    public static boolean allowTf32(Device device) { return cuda(device).allowTf32(); }

    public static void setAllowTf32(Device device, boolean allow) { cuda(device).setAllowTf32(allow); }

    /**
     * Whether cuDNN convolutions on {@code device} may use TF32 tensor cores for float32. On by default
     * ({@code KILN_CONV_TF32}), as PyTorch's {@code torch.backends.cudnn.allow_tf32}, so a float32 model trains at
     * the speed a PyTorch user expects; matmul TF32 is off by default, also as PyTorch.
     */
    public static boolean allowTf32Conv(Device device) { return cuda(device).allowTf32Conv(); }

    public static void setAllowTf32Conv(Device device, boolean allow) { cuda(device).setAllowTf32Conv(allow); }

    /** The most bytes of tensors held at once on {@code device} since the last reset (PyTorch's max_memory_allocated). */
    public static long peakMemoryBytes(Device device) { return cuda(device).allocator().peakAllocatedBytes(); }

    /** Starts {@link #peakMemoryBytes} again from what is held now. */
    public static void resetPeakMemory(Device device) { cuda(device).allocator().resetPeak(); }

    private static CudaDevice cuda(Device device) {
        if (!device.isCuda()) throw new IllegalArgumentException("expected a CUDA device, got " + device);
        return CudaDevice.get(device.index());
    }

    /**
     * Whether cuDNN times the candidate algorithms of each new convolution geometry and keeps the fastest
     * (cudnnFind*, as PyTorch's {@code torch.backends.cudnn.benchmark}) instead of taking its heuristic's first
     * choice. The search costs some milliseconds once per geometry and direction, so it pays where shapes repeat (a
     * training loop). Off by default; {@code KILN_CUDNN_BENCHMARK=1} turns it on; kiln train and kiln bench turn it on.
     * A search policy, not a numeric setting, so one for the process: it is handed to every cuDNN handle.
     */
    private static volatile boolean cudnnBenchmark = Settings.get().cudnnBenchmark();

    public static boolean cudnnBenchmark() { return cudnnBenchmark; }

    public static void setCudnnBenchmark(boolean on) {
        synchronized (Cuda.class) {
            cudnnBenchmark = on;
            Dnn.setBenchmark(on);
        }
    }

    private static volatile boolean deterministic = Settings.get().deterministic();

    /** Whether GPU ops must sum in a fixed order ({@code kiln.deterministic}): a run then repeats bit for bit. */
    public static boolean deterministic() { return deterministic; }

    /**
     * Deterministic mode for the process (PyTorch's {@code torch.use_deterministic_algorithms}): convolutions take
     * only the algorithms cuDNN reports deterministic, 16-bit and float32 attention run composed (the fused backward adds its query
     * gradients atomically), and ops with only an atomic CUDA kernel (index adds: embedding gradients) refuse to run.
     */
    public static void setDeterministic(boolean on) { deterministic = on; }

    /** Throws, naming the op, in deterministic mode: for CUDA kernels that add with atomics in a varying order. */
    static void requireNotDeterministic(String op) {
        if (deterministic) {
            throw new IllegalStateException(op + " on CUDA adds with atomics, in an order that varies from run to run, and has no deterministic "
                    + "kernel yet; turn deterministic mode off (kiln.deterministic, kiln train --deterministic) for this model");
        }
    }
}
