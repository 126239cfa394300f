package dev.kiln.cuda;


import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static dev.kiln.cuda.NativeLibrary.ADDR;
import static dev.kiln.cuda.NativeLibrary.INT;
import static dev.kiln.cuda.NativeLibrary.PTR;

/**
 * NVML, the driver's management library (libnvidia-ml.so.1): what GPUs there are and how they are doing. Needs no
 * CUDA context. A session is {@code nvmlInit_v2 ... nvmlShutdown}: open one with {@link #open()} and close it.
 */
public final class Nvml extends NativeHandle {
    static final NativeLibrary LIB = new NativeLibrary("NVML", "nvidia-ml", Nvml::statusName, "libnvidia-ml.so.1", "libnvidia-ml.so");

    // ---- values from nvml.h
    static final int NVML_SUCCESS = 0, NVML_ERROR_NOT_SUPPORTED = 3;
    /** nvmlTemperatureSensors_t */
    static final int NVML_TEMPERATURE_GPU = 0;
    static final int NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;
    /** nvmlMemory_t: unsigned long long total, free, used. */
    static final long MEMORY_TOTAL = 0, MEMORY_FREE = 8, MEMORY_USED = 16, MEMORY_SIZE = 24;
    /** nvmlUtilization_t: unsigned int gpu, memory. */
    static final long UTIL_GPU = 0, UTIL_SIZE = 8;
    /**
     * nvmlPciInfo_t (for nvmlDeviceGetPciInfo_v3): char busIdLegacy[16]; unsigned int domain, bus, device, pciDeviceId,
     * pciSubSystemId; char busId[32] — 68 bytes.
     */
    static final long PCI_BUS_ID = 36, PCI_BUS_ID_LEN = 32, PCI_SIZE = 68;
    /** nvmlClockType_t */
    static final int NVML_CLOCK_SM = 1;
    static final int NVML_ERROR_INSUFFICIENT_SIZE = 7;
    /**
     * nvmlProcessInfo_t (v2, for nvmlDeviceGetComputeRunningProcesses_v3): unsigned int pid; unsigned long long
     * usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId — 24 bytes.
     */
    static final long PROC_PID = 0, PROC_USED = 8, PROC_SIZE = 24;
    /** NVML_VALUE_NOT_AVAILABLE: the memory of a process NVML may not see (another container, no permission). */
    static final long VALUE_NOT_AVAILABLE = -1L;

    private static final class H {
        static final MethodHandle init = LIB.bind("nvmlInit_v2");
        static final MethodHandle shutdown = LIB.bind("nvmlShutdown");
        static final MethodHandle errorString = LIB.bind("nvmlErrorString", FunctionDescriptor.of(ADDR, INT));
        static final MethodHandle deviceCount = LIB.bind("nvmlDeviceGetCount_v2", ADDR);
        static final MethodHandle handleByIndex = LIB.bind("nvmlDeviceGetHandleByIndex_v2", INT, ADDR);
        static final MethodHandle name = LIB.bind("nvmlDeviceGetName", PTR, ADDR, INT);
        static final MethodHandle memoryInfo = LIB.bind("nvmlDeviceGetMemoryInfo", PTR, ADDR);
        static final MethodHandle computeCapability = LIB.bind("nvmlDeviceGetCudaComputeCapability", PTR, ADDR, ADDR);
        static final MethodHandle driverVersion = LIB.bind("nvmlSystemGetDriverVersion", ADDR, INT);
        static final MethodHandle cudaDriverVersion = LIB.bind("nvmlSystemGetCudaDriverVersion_v2", ADDR);
        static final MethodHandle temperature = LIB.bind("nvmlDeviceGetTemperature", PTR, INT, ADDR);
        static final MethodHandle utilization = LIB.bind("nvmlDeviceGetUtilizationRates", PTR, ADDR);
        static final MethodHandle powerUsage = LIB.bind("nvmlDeviceGetPowerUsage", PTR, ADDR);
        static final MethodHandle pciInfo = LIB.bind("nvmlDeviceGetPciInfo_v3", PTR, ADDR);
        static final MethodHandle clockInfo = LIB.bind("nvmlDeviceGetClockInfo", PTR, INT, ADDR);
    }

    /** Apart from {@link H}: a driver older than the _v3 call (R510) must still give everything else. */
    private static final class Processes {
        static final MethodHandle running = LIB.bind("nvmlDeviceGetComputeRunningProcesses_v3", PTR, ADDR, ADDR);
    }

    /** An NVML session has no handle of its own: 0 stands for it. */
    private Nvml() { super("NVML session", 0); }

    /**
     * nvmlInit_v2.
     *
     * @throws CudaException.LibraryNotFound without libnvidia-ml (no NVIDIA driver)
     * @throws CudaException naming nvmlInit_v2 when the driver is not loaded or has no GPU
     */
    public static Nvml open() {
        LIB.lookup();
        try {
            LIB.check("nvmlInit_v2", (int) H.init.invokeExact());
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
        return new Nvml();
    }

    public static boolean available() { return LIB.available(); }

    /** nvmlSystemGetDriverVersion, e.g. "580.95.05". */
    public String driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
            LIB.check("nvmlSystemGetDriverVersion", (int) H.driverVersion.invokeExact(buf, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE));
            return buf.getString(0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** nvmlSystemGetCudaDriverVersion_v2 as 1000·major + 10·minor (e.g. 13000 for 13.0). */
    public int cudaDriverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            LIB.check("nvmlSystemGetCudaDriverVersion_v2", (int) H.cudaDriverVersion.invokeExact(v));
            return v.get(INT, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** nvmlDeviceGetCount_v2 (all GPUs, including ones CUDA_VISIBLE_DEVICES hides from CUDA). */
    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            LIB.check("nvmlDeviceGetCount_v2", (int) H.deviceCount.invokeExact(v));
            return v.get(INT, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** All GPUs, in NVML's order. */
    public List<GpuInfo> devices() {
        int n = deviceCount();
        List<GpuInfo> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(device(i));
        return out;
    }

    /**
     * One GPU's description. Readings a GPU does not support (temperature, power, utilization under MIG or on some
     * boards) are -1 rather than failures.
     */
    public GpuInfo device(int index) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ValueLayout.ADDRESS);
            LIB.check("nvmlDeviceGetHandleByIndex_v2", (int) H.handleByIndex.invokeExact(index, h));
            long dev = h.get(ValueLayout.JAVA_LONG, 0);

            MemorySegment name = a.allocate(NVML_DEVICE_NAME_V2_BUFFER_SIZE);
            LIB.check("nvmlDeviceGetName", (int) H.name.invokeExact(dev, name, NVML_DEVICE_NAME_V2_BUFFER_SIZE));

            MemorySegment mem = a.allocate(MEMORY_SIZE, 8);
            LIB.check("nvmlDeviceGetMemoryInfo", (int) H.memoryInfo.invokeExact(dev, mem));

            MemorySegment major = a.allocate(INT), minor = a.allocate(INT);
            LIB.check("nvmlDeviceGetCudaComputeCapability", (int) H.computeCapability.invokeExact(dev, major, minor));

            MemorySegment v = a.allocate(INT);
            int temp = optional("nvmlDeviceGetTemperature", (int) H.temperature.invokeExact(dev, NVML_TEMPERATURE_GPU, v)) ? v.get(INT, 0) : -1;
            MemorySegment util = a.allocate(UTIL_SIZE, 4);
            int utilization = optional("nvmlDeviceGetUtilizationRates", (int) H.utilization.invokeExact(dev, util)) ? util.get(INT, UTIL_GPU) : -1;
            double watts = optional("nvmlDeviceGetPowerUsage", (int) H.powerUsage.invokeExact(dev, v)) ? Integer.toUnsignedLong(v.get(INT, 0)) / 1000.0 : -1;
            MemorySegment pci = a.allocate(PCI_SIZE, 4);
            String busId = optional("nvmlDeviceGetPciInfo_v3", (int) H.pciInfo.invokeExact(dev, pci))
                    ? pci.asSlice(PCI_BUS_ID, PCI_BUS_ID_LEN).getString(0) : "";

            return new GpuInfo(index, name.getString(0), mem.get(ValueLayout.JAVA_LONG, MEMORY_TOTAL), mem.get(ValueLayout.JAVA_LONG, MEMORY_USED),
                    major.get(INT, 0), minor.get(INT, 0), temp, utilization, watts, busId);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /**
     * What a monitor samples every second or so: utilisation, memory, power, temperature and SM clock, each -1 where
     * the GPU does not report it.
     */
    public GpuSample sample(int index) {
        try (Arena a = Arena.ofConfined()) {
            long dev = handle(a, index);
            MemorySegment mem = a.allocate(MEMORY_SIZE, 8);
            LIB.check("nvmlDeviceGetMemoryInfo", (int) H.memoryInfo.invokeExact(dev, mem));
            MemorySegment util = a.allocate(UTIL_SIZE, 4);
            int utilization = optional("nvmlDeviceGetUtilizationRates", (int) H.utilization.invokeExact(dev, util)) ? util.get(INT, UTIL_GPU) : -1;
            MemorySegment v = a.allocate(INT);
            double watts = optional("nvmlDeviceGetPowerUsage", (int) H.powerUsage.invokeExact(dev, v)) ? Integer.toUnsignedLong(v.get(INT, 0)) / 1000.0 : -1;
            int temp = optional("nvmlDeviceGetTemperature", (int) H.temperature.invokeExact(dev, NVML_TEMPERATURE_GPU, v)) ? v.get(INT, 0) : -1;
            int clock = optional("nvmlDeviceGetClockInfo", (int) H.clockInfo.invokeExact(dev, NVML_CLOCK_SM, v)) ? v.get(INT, 0) : -1;
            return new GpuSample(utilization, mem.get(ValueLayout.JAVA_LONG, MEMORY_USED), mem.get(ValueLayout.JAVA_LONG, MEMORY_TOTAL), watts, temp, clock);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /**
     * nvmlDeviceGetComputeRunningProcesses_v3: the processes with a CUDA context on this GPU and the memory each
     * holds (-1 where NVML may not say). Empty where the driver lacks the call or refuses it.
     */
    public List<GpuProcess> processes(int index) {
        if (!LIB.has("nvmlDeviceGetComputeRunningProcesses_v3")) return List.of();
        try (Arena a = Arena.ofConfined()) {
            long dev = handle(a, index);
            MemorySegment count = a.allocate(INT);
            for (int capacity = 16; ; capacity *= 4) { // processes may start between the calls: grow until they fit
                MemorySegment infos = a.allocate(PROC_SIZE * capacity, 8);
                count.set(INT, 0, capacity);
                int status = (int) Processes.running.invokeExact(dev, count, infos);
                if (status == NVML_ERROR_INSUFFICIENT_SIZE) continue;
                if (!optional("nvmlDeviceGetComputeRunningProcesses_v3", status)) return List.of();
                List<GpuProcess> out = new ArrayList<>();
                for (int i = 0; i < count.get(INT, 0); i++) {
                    long used = infos.get(ValueLayout.JAVA_LONG, i * PROC_SIZE + PROC_USED);
                    out.add(new GpuProcess(infos.get(INT, i * PROC_SIZE + PROC_PID), used == VALUE_NOT_AVAILABLE ? -1 : used));
                }
                return out;
            }
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static long handle(Arena a, int index) throws Throwable {
        MemorySegment h = a.allocate(ValueLayout.ADDRESS);
        LIB.check("nvmlDeviceGetHandleByIndex_v2", (int) H.handleByIndex.invokeExact(index, h));
        return h.get(ValueLayout.JAVA_LONG, 0);
    }

    /** Success → true; "not supported" (and similar benign refusals) → false; anything else throws. */
    private static boolean optional(String call, int status) {
        if (status == NVML_SUCCESS) return true;
        if (status == NVML_ERROR_NOT_SUPPORTED || status == 4 /* NO_PERMISSION */ || status == 2 /* INVALID_ARGUMENT: MIG */) return false;
        throw LIB.failure(call, status, null);
    }

    @Override protected void destroy(long unused) {
        try {
            LIB.check("nvmlShutdown", (int) H.shutdown.invokeExact());
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** nvmlErrorString ("Driver Not Loaded", ...). */
    static String statusName(int status) {
        try {
            String s = NativeLibrary.cString((MemorySegment) H.errorString.invokeExact(status));
            if (!s.isEmpty()) return s;
        } catch (Throwable ignored) {
            // fall through
        }
        return "NVML_ERROR_" + status;
    }
}
