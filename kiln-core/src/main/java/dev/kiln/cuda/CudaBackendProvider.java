package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BackendProvider;

/** Plugs the CUDA backend into {@link dev.kiln.Backends} (listed in META-INF/services); a GPU's backend starts on first use. */
public final class CudaBackendProvider implements BackendProvider {
    @Override public Device.Type deviceType() { return Device.Type.CUDA; }

    @Override public Backend backend(int index) { return CudaBackend.of(index); }
}
