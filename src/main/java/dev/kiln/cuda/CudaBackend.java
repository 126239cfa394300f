package dev.kiln.cuda;

import dev.kiln.backend.Backend;

/** The CUDA backend (placeholder until the CUDA issue lands): says plainly that there is none yet. */
public final class CudaBackend {
    private CudaBackend() {}

    public static Backend of(int index) {
        throw new UnsupportedOperationException("cuda:" + index + ": this build of Kiln has no CUDA backend yet");
    }
}
