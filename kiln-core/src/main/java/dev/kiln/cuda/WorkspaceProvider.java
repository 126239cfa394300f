package dev.kiln.cuda;

/**
 * Device scratch memory for a library call, supplied by the caller (the backend's caching allocator), so that cuDNN
 * and cuBLAS never allocate on their own: that keeps the hot loop free of cudaMalloc and makes CUDA graph capture
 * possible.
 *
 * <p>The block must stay valid until the work queued on the call's stream has finished with it (a stream-ordered
 * allocator gives exactly that). Within one library call the provider is asked at most once; it is not asked at all
 * when no scratch is needed.
 */
@FunctionalInterface
public interface WorkspaceProvider {
    /** The device address of at least {@code bytes} bytes (256-byte aligned). */
    long address(long bytes);

    /** For calls known to need no workspace; fails loudly if one is asked for. */
    WorkspaceProvider NONE = bytes -> {
        throw new IllegalStateException("no workspace provider given, but the call needs " + bytes + " bytes of workspace");
    };
}
