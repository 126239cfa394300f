package dev.kiln.backend;

/**
 * Wraps the backend {@link dev.kiln.Backends#get} hands out: the profiler installs one that returns its timing proxy.
 * It is how a tool sees every kernel call without the core depending on the tool's package.
 */
@FunctionalInterface
public interface BackendInterceptor {
    Backend intercept(Backend backend);
}
