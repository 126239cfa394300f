package dev.kiln.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A CUDA event of one device: a marker recorded on a stream that another stream can wait for
 * ({@link #makeWait}) or the host can poll or wait for, without waiting for the whole device. Timing events
 * ({@code timing = true}) also give the time between two of them on the device's clock.
 */
public final class Event implements AutoCloseable {
    private final CudaDevice device;
    private final MemorySegment handle;
    private boolean recorded, closed;

    private Event(CudaDevice device, boolean timing) {
        this.device = device;
        device.makeCurrent();
        this.handle = Driver.eventCreate(timing ? 0 : 2); // 2: CU_EVENT_DISABLE_TIMING, the cheaper kind
    }

    public static Event create(CudaDevice device, boolean timing) { return new Event(device, timing); }

    /** Marks the current end of {@code stream}'s queue. */
    public void record(MemorySegment stream) {
        device.makeCurrent();
        Driver.eventRecord(live(), stream);
        recorded = true;
    }

    /** Makes later work on {@code stream} wait until the work before this event's last record is done. */
    public void makeWait(MemorySegment stream) {
        device.makeCurrent();
        Driver.streamWaitEvent(stream, live());
    }

    /** Whether the work before the last record has finished (true if never recorded). */
    public boolean isDone() {
        device.makeCurrent();
        return !recorded || Driver.eventQuery(live());
    }

    /** Blocks this thread until the work before the last record has finished. */
    public void synchronize() {
        if (!recorded) return;
        device.makeCurrent();
        Driver.eventSynchronize(live());
    }

    /** Device milliseconds from {@code start} to this event (both timing events, both finished). */
    public float millisSince(Event start) {
        device.makeCurrent();
        return Driver.eventElapsedMillis(start.live(), live());
    }

    private MemorySegment live() {
        if (closed) throw new IllegalStateException("CUDA event used after close()");
        return handle;
    }

    @Override public void close() {
        if (closed) return;
        closed = true;
        device.makeCurrent();
        Driver.eventDestroy(handle);
    }
}
