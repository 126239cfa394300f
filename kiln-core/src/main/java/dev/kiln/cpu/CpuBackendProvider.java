package dev.kiln.cpu;

import dev.kiln.Device;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;

/** Plugs the CPU backend into {@link dev.kiln.Backends} (listed in META-INF/services). */
public final class CpuBackendProvider implements BackendProvider {
    @Override public Device.Type deviceType() { return Device.Type.CPU; }

    @Override public Backend backend(int index) { return CpuBackend.INSTANCE; }
}
