package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Generator;

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
 *       it): Adam computes its bias corrections from it, and random kernels (dropout, fills) look their key up in the
 *       graph's key table with it ({@link Generator.GraphKeys}: each replay draws the keys an eager step would, and
 *       the generators advance on the host as if it had run eagerly). Learning rates are live scalars: the
 *       optimizer kernels read them from the graph's scalar table, which each replay first sets (stream-ordered) to
 *       their current values, so a scheduler never forces a new capture. Every other kernel argument is baked in.</li>
 * </ul>
 * Capture runs in thread-local mode (see {@link Driver#CAPTURE_MODE_THREAD_LOCAL}); other threads must not queue
 * work on the device's stream while it lasts.
 */
public final class CudaGraph implements AutoCloseable {
    private final CudaDevice dev;
    private final CudaBackend backend;
    private final CudaAllocator.GraphPool pool;
    private final CudaAllocator.Block counter; // the u64 replay counter, the key table, the live scalars (its own block, outside the graph's pool)
    private MemorySegment graph, exec;
    private long replays;
    private boolean closed;

    /** Most random keys one captured step may draw. */
    static final int MAX_KEYS = 256;

    /** Most live scalars (learning rates of parameter groups) one captured step may read. */
    static final int MAX_SCALARS = 64;

    /** The live scalars a capture read, in slot order, and the values the device's table holds. */
    private static final class LiveScalars {
        final java.util.List<java.util.function.DoubleSupplier> values = new java.util.ArrayList<>();
        double[] written = new double[0];

        /** The slot of {@code v} (one per supplier, however often the step reads it). */
        int slot(java.util.function.DoubleSupplier v) {
            for (int i = 0; i < values.size(); i++) if (values.get(i) == v) return i;
            if (values.size() == MAX_SCALARS) throw new IllegalStateException("a captured step read more than " + MAX_SCALARS + " live scalars");
            values.add(v);
            return values.size() - 1;
        }
    }

    private final LiveScalars scalars;

    /**
     * The keys a capture drew: slot j is (seed, counter) of generator gen[j]'s key, and each generator's keys per step.
     * On the device after the replay counter: {@code (seed, counter, keys per step)} per slot, read by random.cuh's
     * {@code graph_key}.
     */
    private static final class KeyTable implements Generator.GraphKeys {
        final java.util.List<Generator> gens = new java.util.ArrayList<>();
        final java.util.List<Long> counters = new java.util.ArrayList<>();
        final java.util.Map<Generator, Long> before = new java.util.IdentityHashMap<>();   // each generator's counter before the capture

        @Override public long slot(Generator g, long counter) {
            if (gens.size() == MAX_KEYS) throw new IllegalStateException("a captured step drew more than " + MAX_KEYS + " random keys");
            before.putIfAbsent(g, counter - 1);
            gens.add(g);
            counters.add(counter);
            return gens.size() - 1;
        }

        /** Keys per step of g: what the capture drew (then given back: the capture itself runs nothing). */
        long stride(Generator g) { return g.counter() - before.get(g); }

        void giveBack() { before.forEach(Generator::restore); }

        long[] deviceTable(java.util.Map<Generator, Long> strides) {
            long[] t = new long[3 * gens.size()];
            for (int j = 0; j < gens.size(); j++) {
                t[3 * j] = gens.get(j).seed();
                t[3 * j + 1] = counters.get(j);
                t[3 * j + 2] = strides.get(gens.get(j));
            }
            return t;
        }
    }

    private final java.util.Map<Generator, Long> strides; // keys per step, per generator the step draws from

    private CudaGraph(CudaDevice dev, CudaBackend backend, CudaAllocator.GraphPool pool, CudaAllocator.Block counter,
                      MemorySegment graph, MemorySegment exec, java.util.Map<Generator, Long> strides, LiveScalars scalars) {
        this.strides = strides;
        this.scalars = scalars;
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
        long tableBytes = 8L * (1 + 3 * MAX_KEYS + MAX_SCALARS);
        CudaAllocator.Block counter = alloc.allocateUncached(tableBytes); // not one of the cached blocks the step will want
        dev.zero(counter.address(), tableBytes);
        KeyTable keys = new KeyTable();
        LiveScalars scalars = new LiveScalars();
        long scalarTable = counter.address() + 8L * (1 + 3 * MAX_KEYS);
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
            dev.beginCapture(new CudaDevice.GraphCapture(Thread.currentThread(), counter.address(), v -> scalarTable + 8L * scalars.slot(v)));
            Driver.streamBeginCapture(stream, Driver.CAPTURE_MODE_THREAD_LOCAL);
            begun = true;
            be.replayTick(counter.address()); // the first node: every replay counts itself
            try (AutoCloseable routed = Generator.capturingKeys(keys)) {
                step.run();
            }
            begun = false;
            graph = Driver.streamEndCapture(stream);
            dev.endCapture();
            alloc.endCapture(pool);
            java.util.Map<Generator, Long> strides = new java.util.IdentityHashMap<>();
            for (Generator g : keys.before.keySet()) strides.put(g, keys.stride(g));
            keys.giveBack();
            long[] table = keys.deviceTable(strides);
            if (table.length > 0) {
                try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                    MemorySegment host = a.allocateFrom(java.lang.foreign.ValueLayout.JAVA_LONG, table);
                    dev.copyHostToDevice(host, counter.address() + 8, 8L * table.length);
                    dev.synchronize();
                }
            }
            MemorySegment exec = Driver.graphInstantiate(graph, 0);
            CudaGraph g = new CudaGraph(dev, be, pool, counter, graph, exec, strides, scalars);
            g.setLiveScalars(dev.stream());
            return g;
        } catch (Exception | Error e) {
            keys.giveBack();
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
            if (e instanceof RuntimeException r) throw r;
            if (e instanceof Error r) throw r;
            throw new IllegalStateException(e);
        }
    }

    /** Queues one replay of the captured step on the device's stream (returns at once). */
    public void replay() { replay(dev.stream()); }

    /** As {@link #replay()}, on another stream of the device ({@link CudaStream#replay}). */
    void replay(MemorySegment stream) {
        if (closed) throw new IllegalStateException("CudaGraph used after close()");
        setLiveScalars(stream);
        Driver.graphLaunch(exec, stream);
        replays++;
        strides.forEach((g, n) -> g.restore(g.counter() + n)); // the generators stand where an eager step leaves them
    }

    /**
     * Adds one to the replay counter without replaying: an eager step run between replays (e.g. a last, partial batch)
     * calls this so that Adam's step count inside the graph stays the optimizer's.
     */
    public void advance() {
        if (closed) throw new IllegalStateException("CudaGraph used after close()");
        backend.replayTick(counter.address());
    }

    /** Whether the captured step reads {@code value} live (as a learning rate the optimizer kernels read from the table). */
    public boolean readsLive(java.util.function.DoubleSupplier value) { return scalars.values.contains(value); }

    /**
     * Brings the device's scalar table to the suppliers' current values where they changed: two 32-bit memsets per
     * double, queued on the stream before the replay (a memset carries its value, so no host buffer must outlive it).
     */
    private void setLiveScalars(MemorySegment stream) {
        int n = scalars.values.size();
        if (scalars.written.length != n) {
            scalars.written = new double[n];
            java.util.Arrays.fill(scalars.written, Double.NaN);
        }
        long table = counter.address() + 8L * (1 + 3 * MAX_KEYS);
        for (int i = 0; i < n; i++) {
            double v = scalars.values.get(i).getAsDouble();
            if (Double.doubleToRawLongBits(v) == Double.doubleToRawLongBits(scalars.written[i])) continue;
            long bits = Double.doubleToRawLongBits(v);
            Driver.memsetD32Async(table + 8L * i, (int) bits, 1, stream);           // little-endian: low word first
            Driver.memsetD32Async(table + 8L * i + 4, (int) (bits >>> 32), 1, stream);
            scalars.written[i] = v;
        }
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
