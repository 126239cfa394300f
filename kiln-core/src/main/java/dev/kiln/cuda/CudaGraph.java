package dev.kiln.cuda;

import dev.kiln.Device;

import java.lang.foreign.MemorySegment;

/**
 * A CUDA graph: the kernels, copies and library calls that one run of a step queues on a device's stream,
 * recorded once by stream capture and replayed with one {@code cuGraphLaunch}. The Java code of the step runs only
 * during {@link #capture}; a replay runs exactly the captured work on exactly the captured addresses, so:
 * <ul>
 *   <li>every tensor the step reads or writes must stay alive, at the same address, while the graph lives (copy new
 *       inputs into the captured input tensors, read results from the captured output tensors);</li>
 *   <li>nothing in the step may wait for the device or move data to or from the host ({@code item()},
 *       {@code toHost}, uploads): those throw an {@link IllegalStateException} during the capture;</li>
 *   <li>the step must not need fresh device memory: the capture takes blocks only from the caching allocator's pool
 *       (run the step eagerly first; {@link CudaAllocator.CaptureNeedsMemory} says when it could not), and those
 *       blocks stay the graph's until {@link #close()};</li>
 *   <li>values that change per step come from the graph's replay counter on the device (its first node adds one to
 *       it): dropout mixes it into its keys, Adam computes its bias corrections from it. Everything else given to a
 *       kernel as an argument (a learning rate, a key, a scalar) is baked in.</li>
 * </ul>
 * Capture runs in thread-local mode (see {@link Driver#CAPTURE_MODE_THREAD_LOCAL}); other threads must not queue
 * work on the device's stream while it lasts.
 */
public final class CudaGraph implements AutoCloseable {
    private final CudaDevice dev;
    private final CudaBackend backend;
    private final CudaAllocator.GraphPool pool;
    private final CudaAllocator.Block counter; // the u64 replay counter (its own block, outside the graph's pool)
    private MemorySegment graph, exec;
    private long replays;
    private boolean closed;

    private CudaGraph(CudaDevice dev, CudaBackend backend, CudaAllocator.GraphPool pool, CudaAllocator.Block counter,
                      MemorySegment graph, MemorySegment exec) {
        this.dev = dev;
        this.backend = backend;
        this.pool = pool;
        this.counter = counter;
        this.graph = graph;
        this.exec = exec;
    }

    /**
     * Runs {@code step} once under stream capture on {@code device}'s stream (its kernels are recorded, not run) and
     * instantiates the graph. If the step throws, the capture is ended, its blocks are given back and the exception
     * is rethrown; nothing of the step has run on the device.
     */
    public static CudaGraph capture(Device device, Runnable step) {
        if (!device.isCuda()) throw new IllegalArgumentException("CUDA graphs need a CUDA device, got " + device);
        CudaBackend be = CudaBackend.of(device.index());
        CudaDevice dev = be.cudaDevice();
        CudaAllocator alloc = dev.allocator();
        be.prepareReplayTick(); // no module loading inside a capture
        CudaAllocator.Block counter = alloc.allocateUncached(8); // not one of the cached blocks the step will want
        dev.zero(counter.address(), 8);
        dev.synchronize(); // earlier eager work is finished; the capture starts from a quiet stream
        MemorySegment stream = dev.stream();
        CudaAllocator.GraphPool pool;
        try {
            pool = alloc.beginCapture();
        } catch (RuntimeException e) {
            alloc.free(counter);
            throw e;
        }
        MemorySegment graph = null;
        boolean begun = false;
        try {
            dev.beginCapture(new CudaDevice.GraphCapture(Thread.currentThread(), counter.address()));
            Driver.streamBeginCapture(stream, Driver.CAPTURE_MODE_THREAD_LOCAL);
            begun = true;
            be.replayTick(counter.address()); // the first node: every replay counts itself
            step.run();
            begun = false;
            graph = Driver.streamEndCapture(stream);
            dev.endCapture();
            alloc.endCapture(pool);
            MemorySegment exec = Driver.graphInstantiate(graph, 0);
            return new CudaGraph(dev, be, pool, counter, graph, exec);
        } catch (RuntimeException | Error e) {
            if (begun) {
                try {
                    MemorySegment g = Driver.streamEndCapture(stream);
                    Driver.graphDestroy(g);
                } catch (RuntimeException ended) {
                    e.addSuppressed(ended); // an invalidated capture ends with an error status: the stream is out of capture either way
                }
            }
            if (graph != null) Driver.graphDestroy(graph);
            dev.endCapture();
            alloc.releaseGraph(pool);
            alloc.free(counter);
            throw e;
        }
    }

    /** Queues one replay of the captured step on the device's stream (returns at once). */
    public void replay() {
        if (closed) throw new IllegalStateException("CudaGraph used after close()");
        Driver.graphLaunch(exec, dev.stream());
        replays++;
    }

    /**
     * Adds one to the replay counter without replaying: an eager step run between replays (e.g. a last, partial batch)
     * calls this so that Adam's step count inside the graph stays the optimizer's.
     */
    public void advance() {
        if (closed) throw new IllegalStateException("CudaGraph used after close()");
        backend.replayTick(counter.address());
    }

    /** How many times {@link #replay()} was called. */
    public long replays() { return replays; }

    /** The device this graph runs on. */
    public Device device() { return Device.cuda(dev.index()); }

    /** Bytes of device memory the graph keeps reserved (its tensors' blocks, held or on its private free list). */
    public long reservedBytes() { return dev.allocator().graphOwnedBytes(pool); }

    /** Waits for queued replays, destroys the graph and gives its memory back to the pool. */
    @Override public void close() {
        if (closed) return;
        closed = true;
        dev.synchronize();
        Driver.graphExecDestroy(exec);
        Driver.graphDestroy(graph);
        exec = graph = null;
        dev.allocator().releaseGraph(pool);
        dev.allocator().free(counter);
    }
}
