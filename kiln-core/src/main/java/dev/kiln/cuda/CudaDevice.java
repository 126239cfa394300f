package dev.kiln.cuda;

import dev.kiln.Settings;

import java.lang.foreign.MemorySegment;

/**
 * One GPU: its primary context, its stream, its caching allocator and its pinned staging buffer. The stable
 * entry point for code that needs raw device memory (the cuBLAS / cuDNN bindings included):
 * <pre>{@code
 * CudaDevice dev = CudaDevice.get(0);
 * try (CudaDevice.Buffer buf = dev.allocate(bytes)) {
 *     dev.copyHostToDevice(hostSegment, buf.address(), bytes);   // queued on dev.stream()
 *     ... launch work on dev.stream() with buf.pointer() ...
 *     dev.copyDeviceToHost(buf.address(), hostSegment, bytes);   // waits
 * }
 * }</pre>
 * The CUDA context is per thread: every method here first makes the device's primary context current on the
 * calling thread (a cheap check when it already is). All of a device's work runs on its one stream, in order,
 * whichever thread queues it; only the copies to the host wait for the device.
 */
public final class CudaDevice {
    private static volatile CudaDevice[] devices;
    private static final ThreadLocal<MemorySegment> CURRENT = new ThreadLocal<>();

    private final int index;
    private final int handle;
    private final String name;
    private final int ccMajor, ccMinor, smCount;
    private final long totalMemory;
    private final MemorySegment context;
    private final MemorySegment stream;
    private volatile MemorySegment copyStream; // made on first use: only input pipelines need it
    private final CudaAllocator allocator;
    private final Object stagingLock = new Object();
    private MemorySegment staging;      // pinned host memory for copies to and from Java arrays
    private MemorySegment stagingEvent; // recorded after the last upload out of staging
    private volatile GraphCapture capture; // the CUDA graph capture open on the stream, or null
    private volatile boolean allowTf32;    // matmul: off by default, as PyTorch
    private volatile boolean allowTf32Conv = Settings.get().convTf32();

    /** An open capture: the thread that captures and the device address of the graph's replay counter (u64). */
    /** A capture in progress: its thread, the replay counter's address, and where its live scalars go. */
    record GraphCapture(Thread thread, long replayCounter, java.util.function.ToLongFunction<java.util.function.DoubleSupplier> liveScalars) {}

    private CudaDevice(int index) {
        Driver.init();
        this.index = index;
        this.handle = Driver.device(index);
        this.name = Driver.deviceName(handle);
        this.ccMajor = Driver.deviceAttribute(Driver.ATTR_COMPUTE_CAPABILITY_MAJOR, handle);
        this.ccMinor = Driver.deviceAttribute(Driver.ATTR_COMPUTE_CAPABILITY_MINOR, handle);
        this.smCount = Driver.deviceAttribute(Driver.ATTR_MULTIPROCESSOR_COUNT, handle);
        this.totalMemory = Driver.deviceTotalMem(handle);
        this.context = Driver.primaryContextRetain(handle);
        makeCurrent();
        this.stream = Driver.streamCreate(1);
        this.stagingEvent = Driver.eventCreate(2);
        this.allocator = new CudaAllocator(this);
    }

    /** The device of ordinal {@code index}; throws {@link CudaException.NoDevice} when there is none. */
    public static CudaDevice get(int index) {
        CudaDevice[] ds = devices;
        if (ds == null) {
            synchronized (CudaDevice.class) {
                if (devices == null) {
                    int n = Cuda.deviceCountOrThrow();
                    devices = new CudaDevice[n];
                }
                ds = devices;
            }
        }
        if (index < 0 || index >= ds.length) {
            throw new CudaException.NoDevice("cuda:" + index + " does not exist: this machine has " + ds.length + " CUDA device(s)");
        }
        CudaDevice d = ds[index];
        if (d == null) {
            synchronized (CudaDevice.class) {
                if (ds[index] == null) ds[index] = new CudaDevice(index);
                d = ds[index];
            }
        }
        return d;
    }

    /** The devices this process has opened so far (a rank of a data-parallel job opens only its own). */
    static java.util.List<CudaDevice> opened() {
        CudaDevice[] ds = devices;
        if (ds == null) return java.util.List.of();
        java.util.List<CudaDevice> out = new java.util.ArrayList<>();
        for (CudaDevice d : ds) if (d != null) out.add(d);
        return out;
    }

    public int index() { return index; }

    public String name() { return name; }

    public int computeCapabilityMajor() { return ccMajor; }

    public int computeCapabilityMinor() { return ccMinor; }

    public int multiprocessorCount() { return smCount; }

    public long totalMemory() { return totalMemory; }

    /** The CUcontext (primary context) handle. */
    public MemorySegment context() { return context; }

    /** The CUstream all of this device's work runs on (made current on the calling thread first). */
    public MemorySegment stream() {
        makeCurrent();
        return stream;
    }

    /**
     * The second stream, for host-to-device copies that overlap the compute on {@link #stream()}. Work on it is
     * ordered against the compute stream only through events ({@link Event#makeWait}); it is non-blocking, so it
     * never waits for the legacy default stream either.
     */
    public MemorySegment copyStream() {
        makeCurrent();
        MemorySegment s = copyStream;
        if (s == null) {
            synchronized (this) {
                if (copyStream == null) copyStream = Driver.streamCreate(1);
                s = copyStream;
            }
        }
        return s;
    }

    public CudaAllocator allocator() { return allocator; }

    /** Makes the primary context current on this thread, if it is not already. */
    public void makeCurrent() {
        if (CURRENT.get() != context) {
            Driver.contextSetCurrent(context);
            CURRENT.set(context);
        }
    }

    // ------------------------------------------------------------------ graph capture state

    void beginCapture(GraphCapture c) {
        if (capture != null) throw new IllegalStateException("a CUDA graph is already being captured on " + this);
        capture = c;
    }

    void endCapture() { capture = null; }

    /** Whether a CUDA graph is being captured on this device's stream (by any thread). */
    public boolean isCapturing() { return capture != null; }

    /**
     * The device address of the replay counter of the graph the calling thread is capturing, or 0 (eager): kernels
     * whose per-step values must change between replays (dropout keys, Adam's bias corrections) read it.
     */
    long replayCounter() {
        GraphCapture c = capture;
        return c != null && c.thread() == Thread.currentThread() ? c.replayCounter() : 0;
    }

    /**
     * The device address of a double that the graph the calling thread is capturing sets to {@code value}'s value
     * before each replay (a learning rate a scheduler changes), or 0 (eager: pass the value as an argument).
     */
    long liveScalar(java.util.function.DoubleSupplier value) {
        GraphCapture c = capture;
        return c != null && c.thread() == Thread.currentThread() ? c.liveScalars().applyAsLong(value) : 0;
    }

    /**
     * Throws when a capture is open: {@code refusal} (e.g. "toHost / item() cannot read values") would wait for the
     * device or move data through host memory, which the driver forbids inside a capture and whose value a replay
     * could not update anyway. Refused for every thread while a capture is open on this device: the stream is the
     * capture's.
     */
    public void requireNotCapturing(String refusal) {
        if (capture != null) {
            throw new IllegalStateException(refusal + " while a CUDA graph is being captured on cuda:" + index
                    + " (nothing in a captured step may wait for the device or copy to or from host memory; read results"
                    + " after replay(), e.g. the static loss tensor, and copy inputs into the captured input tensors before it)");
        }
    }

    /** Waits until all work queued on the stream has finished. */
    public void synchronize() {
        requireNotCapturing("synchronize() cannot wait for the device");
        makeCurrent();
        Driver.streamSynchronize(stream);
    }

    // ------------------------------------------------------------------ raw memory

    /** Device memory from the caching allocator; {@link #close()} returns it to the pool. */
    public final class Buffer implements AutoCloseable {
        private final CudaAllocator.Block block;
        private final long bytes;
        private boolean closed;

        private Buffer(CudaAllocator.Block block, long bytes) {
            this.block = block;
            this.bytes = bytes;
        }

        /** The CUdeviceptr. */
        public long address() {
            if (closed) throw new IllegalStateException("device buffer used after close()");
            return block.address();
        }

        /** The device pointer as a (zero-length) segment, for bindings that take {@code void*}. */
        public MemorySegment pointer() { return MemorySegment.ofAddress(address()); }

        public long byteSize() { return bytes; }

        public CudaDevice device() { return CudaDevice.this; }

        @Override public void close() {
            if (!closed) {
                closed = true;
                allocator.free(block);
            }
        }
    }

    public Buffer allocate(long bytes) { return new Buffer(allocator.allocate(bytes), bytes); }

    /** Queues a copy of {@code bytes} from host memory (native segment; pinned for true asynchrony) to {@code dst}. */
    public void copyHostToDevice(MemorySegment src, long dst, long bytes) {
        requireNotCapturing("a copy from host memory cannot be captured"); // a captured copy would re-read this host memory, stale, on every replay
        if (bytes == 0) return;
        makeCurrent();
        Driver.memcpyHtoDAsync(dst, src, bytes, stream);
    }

    /** Copies {@code bytes} from {@code src} to host memory (native segment) and waits for it. */
    public void copyDeviceToHost(long src, MemorySegment dst, long bytes) {
        requireNotCapturing("a copy to host memory cannot read values");
        if (bytes == 0) return;
        makeCurrent();
        Driver.memcpyDtoHAsync(dst, src, bytes, stream);
        Driver.streamSynchronize(stream);
    }

    /** Queues a device-to-device copy. */
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        if (bytes == 0) return;
        makeCurrent();
        Driver.memcpyDtoDAsync(dst, src, bytes, stream);
    }

    /** Queues setting {@code bytes} bytes at {@code dst} to zero. */
    public void zero(long dst, long bytes) {
        if (bytes == 0) return;
        makeCurrent();
        if ((bytes & 3) == 0 && (dst & 3) == 0) Driver.memsetD32Async(dst, 0, bytes >>> 2, stream);
        else Driver.memsetD8Async(dst, (byte) 0, bytes, stream);
    }

    // ------------------------------------------------------------------ pinned staging for Java arrays

    /**
     * Runs {@code body} with a pinned host segment of at least {@code bytes}; the caller queues its copy on the
     * stream inside body. For uploads, the next use waits only until this upload has left the buffer.
     */
    <R> R withStaging(long bytes, java.util.function.Function<MemorySegment, R> body) {
        requireNotCapturing("a transfer through host memory (fromHost, toHost) cannot be captured"); // staging waits on an event and its contents change between replays
        synchronized (stagingLock) {
            makeCurrent();
            Driver.eventSynchronize(stagingEvent);
            if (staging == null || staging.byteSize() < bytes) {
                if (staging != null) Driver.memFreeHost(staging);
                long size = Math.max(bytes, 1L << 20);
                size = (size + (1L << 20) - 1) & -(1L << 20);
                staging = Driver.memHostAlloc(size);
            }
            R r = body.apply(staging);
            Driver.eventRecord(stagingEvent, stream);
            return r;
        }
    }

    /** Whether float32 matrix products here may use TF32 tensor cores (see {@link Cuda#allowTf32(dev.kiln.Device)}). */
    public boolean allowTf32() { return allowTf32; }

    public void setAllowTf32(boolean allow) { allowTf32 = allow; }

    /** Whether float32 cuDNN convolutions here may use TF32 tensor cores (see {@link Cuda#allowTf32Conv(dev.kiln.Device)}). */
    public boolean allowTf32Conv() { return allowTf32Conv; }

    public void setAllowTf32Conv(boolean allow) { allowTf32Conv = allow; }

    /** Free and total device memory in bytes, as the driver sees them now (other processes' use included). */
    public record MemoryInfo(long freeBytes, long totalBytes) {}

    public MemoryInfo memoryInfo() {
        makeCurrent();
        long[] info = Driver.memGetInfo();
        return new MemoryInfo(info[0], info[1]);
    }

    @Override public String toString() { return "cuda:" + index + " (" + name + ", sm_" + ccMajor + ccMinor + ")"; }
}
