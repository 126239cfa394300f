package dev.kiln;

import dev.kiln.backend.Backend;
import dev.kiln.cpu.CpuBackend;

/** Finds the backend of a device. */
public final class Backends {
    private Backends() {}

    public static Backend cpu() { return CpuBackend.INSTANCE; }

    public static Backend get(Device device) {
        return switch (device.type()) {
            case CPU -> CpuBackend.INSTANCE;
            case CUDA -> dev.kiln.cuda.CudaBackend.of(device.index());
        };
    }
}
