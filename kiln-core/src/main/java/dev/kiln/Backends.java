package dev.kiln;

import dev.kiln.backend.Backend;
import dev.kiln.cpu.CpuBackend;

/** Finds the backend of a device. */
public final class Backends {
    private Backends() {}

    public static Backend cpu() {
        JvmRequirements.check();
        return CpuBackend.INSTANCE;
    }

    /** The device's backend; while a {@link dev.kiln.profile.Profiler} runs, a proxy that times every call. */
    public static Backend get(Device device) {
        JvmRequirements.check();
        Backend b = switch (device.type()) {
            case CPU -> CpuBackend.INSTANCE;
            case CUDA -> dev.kiln.cuda.CudaBackend.of(device.index());
        };
        return dev.kiln.profile.Profiler.hook(b);
    }
}
