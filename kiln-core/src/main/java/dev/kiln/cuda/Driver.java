package dev.kiln.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API ({@code libcuda.so.1}), in two layers: {@link Raw} holds one downcall handle per function,
 * and the static methods here are the typed wrappers, which turn every non-zero {@code CUresult} into a
 * {@link CudaException} naming the call and the status as {@code cuGetErrorName} spells it. Handles
 * ({@code CUcontext}, {@code CUstream}, {@code CUmodule}, ...) are raw {@link MemorySegment} addresses; device
 * pointers ({@code CUdeviceptr}) are {@code long}s. Nothing outside this package sees a {@link MethodHandle}.
 */
public final class Driver {
    private Driver() {}

    public static final int CUDA_SUCCESS = 0;
    public static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public static final int CUDA_ERROR_NO_DEVICE = 100;
    public static final int CUDA_ERROR_NOT_READY = 600;

    public static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    public static final int ATTR_L2_CACHE_SIZE = 38;
    public static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    /** The raw handles, loaded once; a missing libcuda is remembered and rethrown as the same clear exception. */
    static final class Raw {
        private static final Linker LINKER = Linker.nativeLinker();
        private static volatile Raw instance;
        private static volatile CudaException failure;

        final MethodHandle cuGetErrorName, cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName,
                cuDeviceGetAttribute, cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuCtxSetCurrent, cuCtxSynchronize,
                cuMemAlloc, cuMemFree, cuMemGetInfo, cuMemsetD8Async, cuMemsetD32Async, cuMemcpyHtoDAsync,
                cuMemcpyDtoHAsync, cuMemcpyDtoDAsync, cuMemHostAlloc, cuMemFreeHost, cuStreamCreate, cuStreamSynchronize,
                cuStreamDestroy, cuStreamWaitEvent, cuEventCreate, cuEventQuery, cuEventRecord, cuEventSynchronize, cuEventElapsedTime, cuEventDestroy,
                cuModuleLoadData, cuModuleGetFunction, cuModuleUnload, cuLaunchKernel,
                cuStreamBeginCapture, cuStreamEndCapture, cuStreamIsCapturing, cuGraphInstantiateWithFlags, cuGraphLaunch,
                cuGraphExecDestroy, cuGraphDestroy;

        private Raw(SymbolLookup lib) {
            cuGetErrorName = h(lib, "cuGetErrorName", JAVA_INT, ADDRESS);
            cuInit = h(lib, "cuInit", JAVA_INT);
            cuDriverGetVersion = h(lib, "cuDriverGetVersion", ADDRESS);
            cuDeviceGetCount = h(lib, "cuDeviceGetCount", ADDRESS);
            cuDeviceGet = h(lib, "cuDeviceGet", ADDRESS, JAVA_INT);
            cuDeviceGetName = h(lib, "cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
            cuDeviceGetAttribute = h(lib, "cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
            cuDeviceTotalMem = h(lib, "cuDeviceTotalMem_v2", ADDRESS, JAVA_INT);
            cuDevicePrimaryCtxRetain = h(lib, "cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
            cuCtxSetCurrent = h(lib, "cuCtxSetCurrent", ADDRESS);
            cuCtxSynchronize = h(lib, "cuCtxSynchronize");
            cuMemAlloc = h(lib, "cuMemAlloc_v2", ADDRESS, JAVA_LONG);
            cuMemFree = h(lib, "cuMemFree_v2", JAVA_LONG);
            cuMemGetInfo = h(lib, "cuMemGetInfo_v2", ADDRESS, ADDRESS);
            cuMemsetD8Async = h(lib, "cuMemsetD8Async", JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS);
            cuMemsetD32Async = h(lib, "cuMemsetD32Async", JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS);
            cuMemcpyHtoDAsync = h(lib, "cuMemcpyHtoDAsync_v2", JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS);
            cuMemcpyDtoHAsync = h(lib, "cuMemcpyDtoHAsync_v2", ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
            cuMemcpyDtoDAsync = h(lib, "cuMemcpyDtoDAsync_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS);
            cuMemHostAlloc = h(lib, "cuMemHostAlloc", ADDRESS, JAVA_LONG, JAVA_INT);
            cuMemFreeHost = h(lib, "cuMemFreeHost", ADDRESS);
            cuStreamCreate = h(lib, "cuStreamCreate", ADDRESS, JAVA_INT);
            cuStreamSynchronize = h(lib, "cuStreamSynchronize", ADDRESS);
            cuStreamDestroy = h(lib, "cuStreamDestroy_v2", ADDRESS);
            cuStreamWaitEvent = h(lib, "cuStreamWaitEvent", ADDRESS, ADDRESS, JAVA_INT);
            cuEventCreate = h(lib, "cuEventCreate", ADDRESS, JAVA_INT);
            cuEventQuery = h(lib, "cuEventQuery", ADDRESS);
            cuEventRecord = h(lib, "cuEventRecord", ADDRESS, ADDRESS);
            cuEventSynchronize = h(lib, "cuEventSynchronize", ADDRESS);
            cuEventElapsedTime = lib.find("cuEventElapsedTime_v2").isPresent()
                    ? h(lib, "cuEventElapsedTime_v2", ADDRESS, ADDRESS, ADDRESS)
                    : h(lib, "cuEventElapsedTime", ADDRESS, ADDRESS, ADDRESS);
            cuEventDestroy = h(lib, "cuEventDestroy_v2", ADDRESS);
            cuModuleLoadData = h(lib, "cuModuleLoadData", ADDRESS, ADDRESS);
            cuModuleGetFunction = h(lib, "cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
            cuModuleUnload = h(lib, "cuModuleUnload", ADDRESS);
            cuLaunchKernel = h(lib, "cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                    JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
            cuStreamBeginCapture = h(lib, "cuStreamBeginCapture_v2", ADDRESS, JAVA_INT);
            cuStreamEndCapture = h(lib, "cuStreamEndCapture", ADDRESS, ADDRESS);
            cuStreamIsCapturing = h(lib, "cuStreamIsCapturing", ADDRESS, ADDRESS);
            cuGraphInstantiateWithFlags = h(lib, "cuGraphInstantiateWithFlags", ADDRESS, ADDRESS, JAVA_LONG);
            cuGraphLaunch = h(lib, "cuGraphLaunch", ADDRESS, ADDRESS);
            cuGraphExecDestroy = h(lib, "cuGraphExecDestroy", ADDRESS);
            cuGraphDestroy = h(lib, "cuGraphDestroy", ADDRESS);
        }

        /** A handle for {@code CUresult name(args...)}. */
        private static MethodHandle h(SymbolLookup lib, String name, MemoryLayout... args) {
            MemorySegment addr = lib.find(name).orElseThrow(() -> new CudaException.LibraryNotFound(
                    "cuda", java.util.List.of("libcuda.so.1 (found, but it has no symbol " + name + "; driver too old?)")));
            return LINKER.downcallHandle(addr, FunctionDescriptor.of(JAVA_INT, args));
        }

        static Raw get() {
            Raw r = instance;
            if (r != null) return r;
            synchronized (Raw.class) {
                if (instance != null) return instance;
                if (failure != null) throw failure;
                try {
                    instance = new Raw(NativeLibs.load("cuda", "libcuda.so.1", "libcuda.so"));
                    return instance;
                } catch (CudaException e) {
                    failure = e;
                    throw e;
                }
            }
        }
    }

    // ------------------------------------------------------------------ status handling

    /** Throws a CudaException naming {@code call} unless {@code status} is CUDA_SUCCESS. */
    static void check(int status, String call) {
        if (status == CUDA_SUCCESS) return;
        throw new CudaException("cuda", call, status, errorName(status), null);
    }

    static String errorName(int status) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int r = (int) Raw.get().cuGetErrorName.invokeExact(status, p);
            if (r != CUDA_SUCCESS) return "CUDA_ERROR_" + status;
            return p.get(ADDRESS, 0).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "CUDA_ERROR_" + status;
        }
    }

    /** invokeExact cannot be wrapped generically without losing its speed, so each wrapper rethrows through this. */
    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    // ------------------------------------------------------------------ init and devices

    public static void init() {
        try {
            check((int) Raw.get().cuInit.invokeExact(0), "cuInit");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** e.g. 13000 for CUDA 13.0. */
    public static int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) Raw.get().cuDriverGetVersion.invokeExact(v), "cuDriverGetVersion");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) Raw.get().cuDeviceGetCount.invokeExact(v), "cuDeviceGetCount");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** The CUdevice handle (an int) of ordinal {@code ordinal}. */
    public static int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) Raw.get().cuDeviceGet.invokeExact(v, ordinal), "cuDeviceGet(" + ordinal + ")");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static String deviceName(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(256);
            check((int) Raw.get().cuDeviceGetName.invokeExact(s, 256, dev), "cuDeviceGetName");
            return s.getString(0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static int deviceAttribute(int attribute, int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) Raw.get().cuDeviceGetAttribute.invokeExact(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static long deviceTotalMem(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            check((int) Raw.get().cuDeviceTotalMem.invokeExact(v, dev), "cuDeviceTotalMem");
            return v.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    // ------------------------------------------------------------------ contexts

    public static MemorySegment primaryContextRetain(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuDevicePrimaryCtxRetain.invokeExact(v, dev), "cuDevicePrimaryCtxRetain");
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void contextSetCurrent(MemorySegment ctx) {
        try {
            check((int) Raw.get().cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void contextSynchronize() {
        try {
            check((int) Raw.get().cuCtxSynchronize.invokeExact(), "cuCtxSynchronize");
        } catch (Throwable t) { throw rethrow(t); }
    }

    // ------------------------------------------------------------------ memory

    /** cuMemAlloc; returns the status instead of throwing so the allocator can handle out-of-memory itself. */
    static int memAlloc(MemorySegment out, long bytes) {
        try {
            return (int) Raw.get().cuMemAlloc.invokeExact(out, bytes);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memFree(long ptr) {
        try {
            check((int) Raw.get().cuMemFree.invokeExact(ptr), "cuMemFree");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** {free, total} bytes on the current context's device. */
    public static long[] memGetInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(JAVA_LONG), tot = a.allocate(JAVA_LONG);
            check((int) Raw.get().cuMemGetInfo.invokeExact(f, tot), "cuMemGetInfo");
            return new long[]{f.get(JAVA_LONG, 0), tot.get(JAVA_LONG, 0)};
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memsetD8Async(long ptr, byte value, long count, MemorySegment stream) {
        try {
            check((int) Raw.get().cuMemsetD8Async.invokeExact(ptr, value, count, stream), "cuMemsetD8Async");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memsetD32Async(long ptr, int value, long count, MemorySegment stream) {
        try {
            check((int) Raw.get().cuMemsetD32Async.invokeExact(ptr, value, count, stream), "cuMemsetD32Async");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check((int) Raw.get().cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyHtoDAsync");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) Raw.get().cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoHAsync");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) Raw.get().cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** Page-locked host memory of {@code bytes}, as a segment of that size (free it with {@link #memFreeHost}). */
    public static MemorySegment memHostAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuMemHostAlloc.invokeExact(v, bytes, 0), "cuMemHostAlloc(" + bytes + " bytes)");
            return v.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void memFreeHost(MemorySegment p) {
        try {
            check((int) Raw.get().cuMemFreeHost.invokeExact(p), "cuMemFreeHost");
        } catch (Throwable t) { throw rethrow(t); }
    }

    // ------------------------------------------------------------------ streams and events

    /** A stream; flags 1 = CU_STREAM_NON_BLOCKING (does not synchronise with the legacy default stream). */
    public static MemorySegment streamCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuStreamCreate.invokeExact(v, flags), "cuStreamCreate");
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void streamSynchronize(MemorySegment stream) {
        try {
            check((int) Raw.get().cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void streamDestroy(MemorySegment stream) {
        try {
            check((int) Raw.get().cuStreamDestroy.invokeExact(stream), "cuStreamDestroy");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** An event; flags 0 = with timing, 2 = CU_EVENT_DISABLE_TIMING. */
    public static MemorySegment eventCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuEventCreate.invokeExact(v, flags), "cuEventCreate");
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) Raw.get().cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** Makes later work on {@code stream} wait for the work before {@code event}'s last record (no host wait). */
    public static void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check((int) Raw.get().cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** Whether the work before the event's last record has finished (CUDA_ERROR_NOT_READY: not yet). */
    public static boolean eventQuery(MemorySegment event) {
        try {
            int r = (int) Raw.get().cuEventQuery.invokeExact(event);
            if (r == CUDA_ERROR_NOT_READY) return false;
            check(r, "cuEventQuery");
            return true;
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void eventSynchronize(MemorySegment event) {
        try {
            check((int) Raw.get().cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_FLOAT);
            check((int) Raw.get().cuEventElapsedTime.invokeExact(v, start, end), "cuEventElapsedTime");
            return v.get(JAVA_FLOAT, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void eventDestroy(MemorySegment event) {
        try {
            check((int) Raw.get().cuEventDestroy.invokeExact(event), "cuEventDestroy");
        } catch (Throwable t) { throw rethrow(t); }
    }

    // ------------------------------------------------------------------ modules and launches

    public static MemorySegment moduleLoadData(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, JAVA_BYTE, 0, image.length);
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuModuleLoadData.invokeExact(v, img), "cuModuleLoadData");
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuModuleGetFunction.invokeExact(v, module, a.allocateFrom(name)), "cuModuleGetFunction(" + name + ")");
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void moduleUnload(MemorySegment module) {
        try {
            check((int) Raw.get().cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** cuLaunchKernel with a prepared {@code void* kernelParams[]}; allocates nothing. */
    static void launchKernel(MemorySegment f, int gx, int gy, int gz, int bx, int by, int bz, int shared,
                             MemorySegment stream, MemorySegment params, String name) {
        int r;
        try {
            r = (int) Raw.get().cuLaunchKernel.invokeExact(f, gx, gy, gz, bx, by, bz, shared, stream, params, MemorySegment.NULL);
        } catch (Throwable t) { throw rethrow(t); }
        if (r != CUDA_SUCCESS) check(r, "cuLaunchKernel(" + name + ", grid " + gx + "x" + gy + "x" + gz + ", block " + bx + "x" + by + "x" + bz + ")");
    }

    // ------------------------------------------------------------------ graphs (stream capture)

    /**
     * CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: while this thread captures, the driver refuses it the calls that could
     * synchronise or allocate behind the capture's back (cuMemAlloc, cuStreamSynchronize of a captured stream, ...),
     * so a mistake in the captured step fails loudly instead of being baked into the graph; other threads (a data
     * loader's copy stream, pinned-memory allocations) are not restricted, as they would be in GLOBAL mode. RELAXED
     * would let those calls through silently.
     */
    public static final int CAPTURE_MODE_THREAD_LOCAL = 1;
    /** CUstreamCaptureStatus values. */
    public static final int CAPTURE_STATUS_NONE = 0, CAPTURE_STATUS_ACTIVE = 1, CAPTURE_STATUS_INVALIDATED = 2;

    public static void streamBeginCapture(MemorySegment stream, int mode) {
        try {
            check((int) Raw.get().cuStreamBeginCapture.invokeExact(stream, mode), "cuStreamBeginCapture_v2");
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** Ends the capture and returns the CUgraph; throws (naming the status) when the capture was invalidated. */
    public static MemorySegment streamEndCapture(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            int r = (int) Raw.get().cuStreamEndCapture.invokeExact(stream, v);
            MemorySegment graph = v.get(ADDRESS, 0);
            if (r != CUDA_SUCCESS && !graph.equals(MemorySegment.NULL)) graphDestroy(graph);
            check(r, "cuStreamEndCapture");
            return graph;
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** One of CAPTURE_STATUS_NONE, _ACTIVE, _INVALIDATED. */
    public static int streamIsCapturing(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) Raw.get().cuStreamIsCapturing.invokeExact(stream, v), "cuStreamIsCapturing");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    /** The CUgraphExec of a graph (flags 0: no auto-free, no device launch). */
    public static MemorySegment graphInstantiate(MemorySegment graph, long flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            check((int) Raw.get().cuGraphInstantiateWithFlags.invokeExact(v, graph, flags), "cuGraphInstantiateWithFlags");
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void graphLaunch(MemorySegment exec, MemorySegment stream) {
        try {
            check((int) Raw.get().cuGraphLaunch.invokeExact(exec, stream), "cuGraphLaunch");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void graphExecDestroy(MemorySegment exec) {
        try {
            check((int) Raw.get().cuGraphExecDestroy.invokeExact(exec), "cuGraphExecDestroy");
        } catch (Throwable t) { throw rethrow(t); }
    }

    public static void graphDestroy(MemorySegment graph) {
        try {
            check((int) Raw.get().cuGraphDestroy.invokeExact(graph), "cuGraphDestroy");
        } catch (Throwable t) { throw rethrow(t); }
    }
}
