package dev.kiln.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API ({@code libcuda.so.1}), bound through {@link NativeLibrary}: a holder class of downcall
 * handles, and the static methods here, the typed wrappers, which turn every non-zero {@code CUresult} into a
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

    /** libcuda; every failing call becomes a CudaException naming it and the status as cuGetErrorName spells it. */
    static final NativeLibrary LIB = new NativeLibrary("cuda", "cuda", Driver::errorName, "libcuda.so.1", "libcuda.so");

    /** The downcall handles, resolved on first use. */
    private static final class H {
        static final MethodHandle cuGetErrorName = LIB.bind("cuGetErrorName", JAVA_INT, ADDRESS);
        static final MethodHandle cuInit = LIB.bind("cuInit", JAVA_INT);
        static final MethodHandle cuDriverGetVersion = LIB.bind("cuDriverGetVersion", ADDRESS);
        static final MethodHandle cuDeviceGetCount = LIB.bind("cuDeviceGetCount", ADDRESS);
        static final MethodHandle cuDeviceGet = LIB.bind("cuDeviceGet", ADDRESS, JAVA_INT);
        static final MethodHandle cuDeviceGetName = LIB.bind("cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
        static final MethodHandle cuDeviceGetAttribute = LIB.bind("cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        static final MethodHandle cuDeviceTotalMem = LIB.bind("cuDeviceTotalMem_v2", ADDRESS, JAVA_INT);
        static final MethodHandle cuDevicePrimaryCtxRetain = LIB.bind("cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
        static final MethodHandle cuCtxSetCurrent = LIB.bind("cuCtxSetCurrent", ADDRESS);
        static final MethodHandle cuCtxSynchronize = LIB.bind("cuCtxSynchronize");
        static final MethodHandle cuMemAlloc = LIB.bind("cuMemAlloc_v2", ADDRESS, JAVA_LONG);
        static final MethodHandle cuMemFree = LIB.bind("cuMemFree_v2", JAVA_LONG);
        static final MethodHandle cuMemGetInfo = LIB.bind("cuMemGetInfo_v2", ADDRESS, ADDRESS);
        static final MethodHandle cuMemsetD8Async = LIB.bind("cuMemsetD8Async", JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS);
        static final MethodHandle cuMemsetD32Async = LIB.bind("cuMemsetD32Async", JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS);
        static final MethodHandle cuMemcpyHtoDAsync = LIB.bind("cuMemcpyHtoDAsync_v2", JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS);
        static final MethodHandle cuMemcpyDtoHAsync = LIB.bind("cuMemcpyDtoHAsync_v2", ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
        static final MethodHandle cuMemcpyDtoDAsync = LIB.bind("cuMemcpyDtoDAsync_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS);
        static final MethodHandle cuMemHostAlloc = LIB.bind("cuMemHostAlloc", ADDRESS, JAVA_LONG, JAVA_INT);
        static final MethodHandle cuMemFreeHost = LIB.bind("cuMemFreeHost", ADDRESS);
        static final MethodHandle cuStreamCreate = LIB.bind("cuStreamCreate", ADDRESS, JAVA_INT);
        static final MethodHandle cuStreamCreateWithPriority = LIB.bind("cuStreamCreateWithPriority", ADDRESS, JAVA_INT, JAVA_INT);
        static final MethodHandle cuCtxGetStreamPriorityRange = LIB.bind("cuCtxGetStreamPriorityRange", ADDRESS, ADDRESS);
        static final MethodHandle cuStreamSynchronize = LIB.bind("cuStreamSynchronize", ADDRESS);
        static final MethodHandle cuStreamDestroy = LIB.bind("cuStreamDestroy_v2", ADDRESS);
        static final MethodHandle cuStreamWaitEvent = LIB.bind("cuStreamWaitEvent", ADDRESS, ADDRESS, JAVA_INT);
        static final MethodHandle cuEventCreate = LIB.bind("cuEventCreate", ADDRESS, JAVA_INT);
        static final MethodHandle cuEventQuery = LIB.bind("cuEventQuery", ADDRESS);
        static final MethodHandle cuEventRecord = LIB.bind("cuEventRecord", ADDRESS, ADDRESS);
        static final MethodHandle cuEventSynchronize = LIB.bind("cuEventSynchronize", ADDRESS);
        static final MethodHandle cuEventDestroy = LIB.bind("cuEventDestroy_v2", ADDRESS);
        static final MethodHandle cuModuleLoadData = LIB.bind("cuModuleLoadData", ADDRESS, ADDRESS);
        static final MethodHandle cuModuleGetFunction = LIB.bind("cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
        static final MethodHandle cuModuleUnload = LIB.bind("cuModuleUnload", ADDRESS);
        static final MethodHandle cuFuncSetAttribute = LIB.bind("cuFuncSetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        static final MethodHandle cuStreamBeginCapture = LIB.bind("cuStreamBeginCapture_v2", ADDRESS, JAVA_INT);
        static final MethodHandle cuStreamEndCapture = LIB.bind("cuStreamEndCapture", ADDRESS, ADDRESS);
        static final MethodHandle cuStreamIsCapturing = LIB.bind("cuStreamIsCapturing", ADDRESS, ADDRESS);
        static final MethodHandle cuGraphInstantiateWithFlags = LIB.bind("cuGraphInstantiateWithFlags", ADDRESS, ADDRESS, JAVA_LONG);
        static final MethodHandle cuGraphLaunch = LIB.bind("cuGraphLaunch", ADDRESS, ADDRESS);
        static final MethodHandle cuGraphExecDestroy = LIB.bind("cuGraphExecDestroy", ADDRESS);
        static final MethodHandle cuGraphDestroy = LIB.bind("cuGraphDestroy", ADDRESS);
        static final MethodHandle cuEventElapsedTime = LIB.bind(LIB.has("cuEventElapsedTime_v2") ? "cuEventElapsedTime_v2" : "cuEventElapsedTime",
                ADDRESS, ADDRESS, ADDRESS);
        static final MethodHandle cuLaunchKernel = LIB.bind("cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
    }

    // ------------------------------------------------------------------ status handling

    /** Throws a CudaException naming {@code call} unless {@code status} is CUDA_SUCCESS. */
    static void check(int status, String call) { LIB.check(call, status); }

    private static String errorName(int status) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int r = (int) H.cuGetErrorName.invokeExact(status, p);
            if (r != CUDA_SUCCESS) return "CUDA_ERROR_" + status;
            return p.get(ADDRESS, 0).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "CUDA_ERROR_" + status;
        }
    }

    // ------------------------------------------------------------------ init and devices

    public static void init() {
        try {
            LIB.check("cuInit", (int) H.cuInit.invokeExact(0));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** e.g. 13000 for CUDA 13.0. */
    public static int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            LIB.check("cuDriverGetVersion", (int) H.cuDriverGetVersion.invokeExact(v));
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            LIB.check("cuDeviceGetCount", (int) H.cuDeviceGetCount.invokeExact(v));
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** The CUdevice handle (an int) of ordinal {@code ordinal}. */
    public static int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            LIB.check("cuDeviceGet(" + ordinal + ")", (int) H.cuDeviceGet.invokeExact(v, ordinal));
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static String deviceName(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(256);
            LIB.check("cuDeviceGetName", (int) H.cuDeviceGetName.invokeExact(s, 256, dev));
            return s.getString(0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static int deviceAttribute(int attribute, int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            LIB.check("cuDeviceGetAttribute(" + attribute + ")", (int) H.cuDeviceGetAttribute.invokeExact(v, attribute, dev));
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static long deviceTotalMem(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            LIB.check("cuDeviceTotalMem", (int) H.cuDeviceTotalMem.invokeExact(v, dev));
            return v.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    // ------------------------------------------------------------------ contexts

    public static MemorySegment primaryContextRetain(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuDevicePrimaryCtxRetain", (int) H.cuDevicePrimaryCtxRetain.invokeExact(v, dev));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void contextSetCurrent(MemorySegment ctx) {
        try {
            LIB.check("cuCtxSetCurrent", (int) H.cuCtxSetCurrent.invokeExact(ctx));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void contextSynchronize() {
        try {
            LIB.check("cuCtxSynchronize", (int) H.cuCtxSynchronize.invokeExact());
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    // ------------------------------------------------------------------ memory

    /** cuMemAlloc; returns the status instead of throwing so the allocator can handle out-of-memory itself. */
    static int memAlloc(MemorySegment out, long bytes) {
        try {
            return (int) H.cuMemAlloc.invokeExact(out, bytes);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memFree(long ptr) {
        try {
            LIB.check("cuMemFree", (int) H.cuMemFree.invokeExact(ptr));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** {free, total} bytes on the current context's device. */
    public static long[] memGetInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(JAVA_LONG), tot = a.allocate(JAVA_LONG);
            LIB.check("cuMemGetInfo", (int) H.cuMemGetInfo.invokeExact(f, tot));
            return new long[]{f.get(JAVA_LONG, 0), tot.get(JAVA_LONG, 0)};
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memsetD8Async(long ptr, byte value, long count, MemorySegment stream) {
        try {
            LIB.check("cuMemsetD8Async", (int) H.cuMemsetD8Async.invokeExact(ptr, value, count, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memsetD32Async(long ptr, int value, long count, MemorySegment stream) {
        try {
            LIB.check("cuMemsetD32Async", (int) H.cuMemsetD32Async.invokeExact(ptr, value, count, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            LIB.check("cuMemcpyHtoDAsync", (int) H.cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            LIB.check("cuMemcpyDtoHAsync", (int) H.cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            LIB.check("cuMemcpyDtoDAsync", (int) H.cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** Page-locked host memory of {@code bytes}, as a segment of that size (free it with {@link #memFreeHost}). */
    public static MemorySegment memHostAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuMemHostAlloc(" + bytes + " bytes)", (int) H.cuMemHostAlloc.invokeExact(v, bytes, 0));
            return v.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void memFreeHost(MemorySegment p) {
        try {
            LIB.check("cuMemFreeHost", (int) H.cuMemFreeHost.invokeExact(p));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    // ------------------------------------------------------------------ streams and events

    /** A stream; flags 1 = CU_STREAM_NON_BLOCKING (does not synchronise with the legacy default stream). */
    public static MemorySegment streamCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuStreamCreate", (int) H.cuStreamCreate.invokeExact(v, flags));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /**
     * A stream at the current context's highest priority (flags as {@link #streamCreate}): the scheduler gives its
     * kernels' blocks the SMs that free up before those of kernels queued on lower-priority streams.
     */
    public static MemorySegment streamCreateHighestPriority(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment least = a.allocate(JAVA_INT), greatest = a.allocate(JAVA_INT), v = a.allocate(ADDRESS);
            LIB.check("cuCtxGetStreamPriorityRange", (int) H.cuCtxGetStreamPriorityRange.invokeExact(least, greatest));
            LIB.check("cuStreamCreateWithPriority", (int) H.cuStreamCreateWithPriority.invokeExact(v, flags, greatest.get(JAVA_INT, 0)));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void streamSynchronize(MemorySegment stream) {
        try {
            LIB.check("cuStreamSynchronize", (int) H.cuStreamSynchronize.invokeExact(stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void streamDestroy(MemorySegment stream) {
        try {
            LIB.check("cuStreamDestroy", (int) H.cuStreamDestroy.invokeExact(stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** An event; flags 0 = with timing, 2 = CU_EVENT_DISABLE_TIMING. */
    public static MemorySegment eventCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuEventCreate", (int) H.cuEventCreate.invokeExact(v, flags));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            LIB.check("cuEventRecord", (int) H.cuEventRecord.invokeExact(event, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** Makes later work on {@code stream} wait for the work before {@code event}'s last record (no host wait). */
    public static void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            LIB.check("cuStreamWaitEvent", (int) H.cuStreamWaitEvent.invokeExact(stream, event, 0));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** Whether the work before the event's last record has finished (CUDA_ERROR_NOT_READY: not yet). */
    public static boolean eventQuery(MemorySegment event) {
        try {
            int r = (int) H.cuEventQuery.invokeExact(event);
            if (r == CUDA_ERROR_NOT_READY) return false;
            check(r, "cuEventQuery");
            return true;
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void eventSynchronize(MemorySegment event) {
        try {
            LIB.check("cuEventSynchronize", (int) H.cuEventSynchronize.invokeExact(event));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_FLOAT);
            LIB.check("cuEventElapsedTime", (int) H.cuEventElapsedTime.invokeExact(v, start, end));
            return v.get(JAVA_FLOAT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void eventDestroy(MemorySegment event) {
        try {
            LIB.check("cuEventDestroy", (int) H.cuEventDestroy.invokeExact(event));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    // ------------------------------------------------------------------ modules and launches

    public static MemorySegment moduleLoadData(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, JAVA_BYTE, 0, image.length);
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuModuleLoadData", (int) H.cuModuleLoadData.invokeExact(v, img));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuModuleGetFunction(" + name + ")", (int) H.cuModuleGetFunction.invokeExact(v, module, a.allocateFrom(name)));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    private static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    /** Lets {@code f} launch with up to {@code bytes} of dynamic shared memory (past 48 KB a kernel must ask). */
    static void funcSetMaxDynamicShared(MemorySegment f, int bytes, String name) {
        try {
            LIB.check("cuFuncSetAttribute(" + name + ", max dynamic shared " + bytes + " bytes)",
                    (int) H.cuFuncSetAttribute.invokeExact(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void moduleUnload(MemorySegment module) {
        try {
            LIB.check("cuModuleUnload", (int) H.cuModuleUnload.invokeExact(module));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** cuLaunchKernel with a prepared {@code void* kernelParams[]}; allocates nothing. */
    static void launchKernel(MemorySegment f, int gx, int gy, int gz, int bx, int by, int bz, int shared,
                             MemorySegment stream, MemorySegment params, String name) {
        int r;
        try {
            r = (int) H.cuLaunchKernel.invokeExact(f, gx, gy, gz, bx, by, bz, shared, stream, params, MemorySegment.NULL);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
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
            LIB.check("cuStreamBeginCapture_v2", (int) H.cuStreamBeginCapture.invokeExact(stream, mode));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** Ends the capture and returns the CUgraph; throws (naming the status) when the capture was invalidated. */
    public static MemorySegment streamEndCapture(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            int r = (int) H.cuStreamEndCapture.invokeExact(stream, v);
            MemorySegment graph = v.get(ADDRESS, 0);
            if (r != CUDA_SUCCESS && !graph.equals(MemorySegment.NULL)) graphDestroy(graph);
            check(r, "cuStreamEndCapture");
            return graph;
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** One of CAPTURE_STATUS_NONE, _ACTIVE, _INVALIDATED. */
    public static int streamIsCapturing(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            LIB.check("cuStreamIsCapturing", (int) H.cuStreamIsCapturing.invokeExact(stream, v));
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /** The CUgraphExec of a graph (flags 0: no auto-free, no device launch). */
    public static MemorySegment graphInstantiate(MemorySegment graph, long flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDRESS);
            LIB.check("cuGraphInstantiateWithFlags", (int) H.cuGraphInstantiateWithFlags.invokeExact(v, graph, flags));
            return v.get(ADDRESS, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void graphLaunch(MemorySegment exec, MemorySegment stream) {
        try {
            LIB.check("cuGraphLaunch", (int) H.cuGraphLaunch.invokeExact(exec, stream));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void graphExecDestroy(MemorySegment exec) {
        try {
            LIB.check("cuGraphExecDestroy", (int) H.cuGraphExecDestroy.invokeExact(exec));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    public static void graphDestroy(MemorySegment graph) {
        try {
            LIB.check("cuGraphDestroy", (int) H.cuGraphDestroy.invokeExact(graph));
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }
}
