package dev.kiln;

import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendInterceptor;
import dev.kiln.backend.BackendProvider;

import java.util.EnumMap;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Finds the backend of a device. Backends plug in through {@link BackendProvider}s found with the JDK's
 * {@link ServiceLoader} (kiln-core lists its CPU and CUDA providers in {@code META-INF/services}), so the core knows
 * the interface, not the implementations: the CUDA backend's classes load only when a CUDA device is used.
 */
public final class Backends {
    private Backends() {}

    private static volatile BackendInterceptor interceptor;

    /** Loaded on first use, after the JVM check, so a missing flag is a plain exception rather than a failed class. */
    private static final class Loaded {
        static final Map<Device.Type, BackendProvider> PROVIDERS = providers();
        static final Backend CPU = PROVIDERS.get(Device.Type.CPU).backend(0);
    }

    private static Map<Device.Type, BackendProvider> providers() {
        Map<Device.Type, BackendProvider> m = new EnumMap<>(Device.Type.class);
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class, Backends.class.getClassLoader())) {
            BackendProvider before = m.putIfAbsent(p.deviceType(), p);
            if (before != null) {
                throw new IllegalStateException("two backends for " + p.deviceType() + " devices: " + before.getClass().getName()
                        + " and " + p.getClass().getName() + " (two Kiln jars on the class path?)");
            }
        }
        for (Device.Type t : Device.Type.values()) {
            if (!m.containsKey(t)) {
                throw new IllegalStateException("no Kiln backend for " + t + " devices on the class path: kiln-core's "
                        + "META-INF/services/" + BackendProvider.class.getName() + " is missing (a shaded jar must merge service files)");
            }
        }
        return m;
    }

    /** The CPU's backend, without the profiler's interception (for code that works on host data). */
    public static Backend cpu() {
        JvmRequirements.check();
        return Loaded.CPU;
    }

    /** The device's backend, or what the installed interceptor (a running profiler's) wraps it in: one field read when none is. */
    public static Backend get(Device device) {
        JvmRequirements.check();
        Backend b = device.type() == Device.Type.CPU ? Loaded.CPU : Loaded.PROVIDERS.get(device.type()).backend(device.index());
        BackendInterceptor i = interceptor;
        return i == null ? b : i.intercept(b);
    }

    /** Installs the interceptor every {@link #get} goes through, or removes it (null). Its owner keeps it to one at a time. */
    public static void setInterceptor(BackendInterceptor i) { interceptor = i; }
}
