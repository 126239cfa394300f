package dev.kiln.backend;

import dev.kiln.Device;

/**
 * Makes the backends of one kind of device. Implementations are listed in
 * {@code META-INF/services/dev.kiln.backend.BackendProvider} and found by {@link dev.kiln.Backends}.
 */
public interface BackendProvider {
    /** The kind of device this provider serves. */
    Device.Type deviceType();

    /** The backend of device {@code index} of that kind; a clear exception when there is no such device. */
    Backend backend(int index);
}
