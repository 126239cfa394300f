package dev.kiln;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendInterceptor;
import dev.kiln.cpu.CpuBackend;

/** Finds the backend of a device. */
public final class Backends {
    private Backends() {}

    private static volatile BackendInterceptor interceptor;

    public static Backend cpu() { return CpuBackend.INSTANCE; }

    /** The device's backend, or what the installed interceptor (a running profiler's) wraps it in: one field read when none is. */
    public static Backend get(Device device) {
        Backend b = switch (device.type()) {
            case CPU -> CpuBackend.INSTANCE;
            case CUDA -> dev.kiln.cuda.CudaBackend.of(device.index());
        };
        BackendInterceptor i = interceptor;
        return i == null ? b : i.intercept(b);
    }

    /** Installs the interceptor every {@link #get} goes through, or removes it (null). Its owner keeps it to one at a time. */
    public static void setInterceptor(BackendInterceptor i) { interceptor = i; }
}
