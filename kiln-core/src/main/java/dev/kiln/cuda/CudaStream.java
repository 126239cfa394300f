package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A stream of its own on a device, beside the device's compute stream, for replaying captured graphs side by side:
 * each of a {@link dev.kiln.infer.Predictor}'s lanes copies its batch in, replays its own graph and copies the result
 * out here, so concurrent callers do not queue behind one another. Only graphs and copies go on it (every op of the
 * backend runs on the device's stream); a graph must be replayed on one stream at a time. Used by one thread at a time.
 */
public final class CudaStream implements AutoCloseable {
    private final CudaDevice dev;
    private final CudaBackend backend;
    private final MemorySegment stream;
    // page-locked host buffers of the copies in and out, grown as needed: a pageable buffer would make the driver stage
    // every copy through its own pinned memory (a synchronous detour that dominates a batch of one)
    private MemorySegment stagingIn = MemorySegment.NULL, stagingOut = MemorySegment.NULL;
    private boolean inFlight;   // a copy from stagingIn may still be queued
    private Event made;   // the device stream's work up to a device-side copyIn's source
    private boolean closed;

    private CudaStream(Device device) {
        backend = CudaBackend.of(device.index());
        dev = backend.cudaDevice();
        dev.makeCurrent();
        stream = Driver.streamCreate(1);   // CU_STREAM_NON_BLOCKING: no implicit waits on the legacy stream
    }

    /** A new stream on a CUDA device. */
    public static CudaStream create(Device device) {
        if (!device.isCuda()) throw new IllegalArgumentException("CudaStream: a CUDA device is needed, got " + device);
        return new CudaStream(device);
    }

    /** Queues the copy of {@code count} floats into the start of {@code dst} (contiguous float32 on this device). */
    public void copyIn(float[] src, int count, Tensor dst) {
        long bytes = 4L * requireRoom("copyIn", dst, count);
        dev.makeCurrent();
        if (inFlight) Driver.streamSynchronize(live());   // the last copy in may not have read its buffer yet
        MemorySegment host = stagingIn = pinned(stagingIn, bytes);
        MemorySegment.copy(src, 0, host, ValueLayout.JAVA_FLOAT, 0, count);
        Driver.memcpyHtoDAsync(backend.ptr(dst), host, bytes, live());
        inFlight = true;
    }

    /**
     * Queues the copy of the first {@code count} floats of {@code src} (contiguous float32 on this device) into the start
     * of {@code dst}, after the work already queued on the device's stream (which made src). Must not run while that
     * stream is being captured.
     */
    public void copyIn(Tensor src, int count, Tensor dst) {
        long bytes = 4L * requireRoom("copyIn", dst, requireRoom("copyIn", src, count));
        dev.makeCurrent();
        if (made == null) made = Event.create(dev, false);
        made.record(dev.stream());
        made.makeWait(live());
        Driver.memcpyDtoDAsync(backend.ptr(dst), backend.ptr(src), bytes, stream);
    }

    /** Queues one replay of the graph (captured on this device) after the work queued before it here. */
    public void replay(CudaGraph graph) {
        if (!graph.device().equals(Device.cuda(dev.index()))) throw new IllegalArgumentException("CudaStream: a graph of " + graph.device() + " on a stream of cuda:" + dev.index());
        dev.makeCurrent();
        graph.replay(live());
    }

    /** Waits for the work queued so far, then reads the first {@code count} floats of {@code src} into {@code dst}. */
    public void copyOut(Tensor src, int count, float[] dst) {
        long bytes = 4L * requireRoom("copyOut", src, count);
        dev.makeCurrent();
        MemorySegment host = stagingOut = pinned(stagingOut, bytes);
        Driver.memcpyDtoHAsync(host, backend.ptr(src), bytes, live());
        Driver.streamSynchronize(stream);
        inFlight = false;
        MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, dst, 0, count);
    }

    private static int requireRoom(String op, Tensor t, int count) {
        if (t.dtype() != DType.FLOAT32 || !t.isContiguous() || count < 0 || count > t.numel()) {
            throw new IllegalArgumentException("CudaStream." + op + ": needs a contiguous float32 tensor of at least " + count
                    + " elements, got " + t.dtype() + " " + Shape.str(t.shape()));
        }
        return count;
    }

    /** buf when it holds bytes, else a larger page-locked buffer (buf freed: no copy of it is queued when this runs). */
    private MemorySegment pinned(MemorySegment buf, long bytes) {
        if (buf.byteSize() >= bytes) return buf;
        if (inFlight) Driver.streamSynchronize(live());
        inFlight = false;
        if (buf.byteSize() > 0) Driver.memFreeHost(buf);
        return Driver.memHostAlloc(Math.max(bytes, 2 * buf.byteSize()));
    }

    private MemorySegment live() {
        if (closed) throw new IllegalStateException("CudaStream used after close()");
        return stream;
    }

    /** Waits for the stream's work and destroys it. */
    @Override public void close() {
        if (closed) return;
        closed = true;
        dev.makeCurrent();
        Driver.streamSynchronize(stream);
        Driver.streamDestroy(stream);
        if (made != null) made.close();
        if (stagingIn.byteSize() > 0) Driver.memFreeHost(stagingIn);
        if (stagingOut.byteSize() > 0) Driver.memFreeHost(stagingOut);
    }
}
