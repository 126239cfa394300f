package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Settings;
import dev.kiln.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static dev.kiln.cuda.NativeLibrary.ADDR;
import static dev.kiln.cuda.NativeLibrary.INT;
import static dev.kiln.cuda.NativeLibrary.PTR;
import static dev.kiln.cuda.NativeLibrary.SIZE_T;

/**
 * NCCL (libnccl.so.2), found on the machine, never bundled: unique ids, communicators and the collectives data
 * parallel training needs, queued on the device's stream like every other Kiln kernel. Kiln uses each device's primary
 * context, which the CUDA runtime inside NCCL shares, so Kiln's stream is valid for NCCL. Every process that loads
 * NCCL must keep {@code NCCL_NVLS_ENABLE=0} (NVLink multicast); {@code kiln launch} sets it, and {@link #communicator}
 * refuses to start without it rather than risk the shared machine's GPUs.
 */
public final class Nccl {
    private Nccl() {}

    static final NativeLibrary LIB = new NativeLibrary("NCCL", "nccl", Nccl::statusName, "libnccl.so.2", "libnccl.so");

    /** ncclUniqueId: char internal[128], passed by value to ncclCommInitRank. */
    public static final int UNIQUE_ID_BYTES = 128;
    private static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, ValueLayout.JAVA_BYTE));
    /** ncclRedOp_t */
    static final int SUM = 0, AVG = 4;

    private static final class H {
        static final MethodHandle getVersion = LIB.bind("ncclGetVersion", ADDR);
        static final MethodHandle getUniqueId = LIB.bind("ncclGetUniqueId", ADDR);
        static final MethodHandle commInitRank = LIB.bind("ncclCommInitRank", ADDR, INT, UNIQUE_ID, INT);
        static final MethodHandle allReduce = LIB.bind("ncclAllReduce", PTR, PTR, SIZE_T, INT, INT, PTR, ADDR);
        static final MethodHandle broadcast = LIB.bind("ncclBroadcast", PTR, PTR, SIZE_T, INT, INT, PTR, ADDR);
        static final MethodHandle allGather = LIB.bind("ncclAllGather", PTR, PTR, SIZE_T, INT, PTR, ADDR);
        static final MethodHandle reduceScatter = LIB.bind("ncclReduceScatter", PTR, PTR, SIZE_T, INT, INT, PTR, ADDR);
        static final MethodHandle groupStart = LIB.bind("ncclGroupStart");
        static final MethodHandle groupEnd = LIB.bind("ncclGroupEnd");
        static final MethodHandle commAbort = LIB.bind("ncclCommAbort", PTR);
        static final MethodHandle commDestroy = LIB.bind("ncclCommDestroy", PTR);
        static final MethodHandle errorString = LIB.bind("ncclGetErrorString", FunctionDescriptor.of(ADDR, INT));
    }

    static String statusName(int status) {
        try {
            return NativeLibrary.cString((MemorySegment) H.errorString.invokeExact(status));
        } catch (Throwable t) {
            return null;
        }
    }

    public static boolean available() { return LIB.available(); }

    /** ncclGetVersion as "2.28.7". */
    public static String version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            LIB.check("ncclGetVersion", (int) H.getVersion.invokeExact(v));
            int n = v.get(INT, 0);
            return n / 10000 + "." + n % 10000 / 100 + "." + n % 100;
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** ncclGetUniqueId: rank 0 makes it and hands it to the others (Kiln's rendezvous carries it). */
    public static byte[] uniqueId() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment id = a.allocate(UNIQUE_ID);
            LIB.check("ncclGetUniqueId", (int) H.getUniqueId.invokeExact(id));
            return id.toArray(ValueLayout.JAVA_BYTE);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** ncclDataType_t of a dtype (bool travels as uint8). */
    static int dataType(DType t) {
        return switch (t) {
            case UINT8, BOOL -> 1;
            case INT32 -> 2;
            case INT64 -> 4;
            case FLOAT16 -> 6;
            case FLOAT32 -> 7;
            case FLOAT64 -> 8;
            case BFLOAT16 -> 9;
        };
    }

    /** ncclGroupStart / ncclGroupEnd around {@code body}: its collectives launch as one. */
    public static void group(Runnable body) {
        try {
            LIB.check("ncclGroupStart", (int) H.groupStart.invokeExact());
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
        try {
            body.run();
        } finally {
            try {
                LIB.check("ncclGroupEnd", (int) H.groupEnd.invokeExact());
            } catch (Throwable t) {
                throw NativeLibrary.rethrow(t);
            }
        }
    }

    /**
     * This rank's communicator on {@code device} (ncclCommInitRank; every rank calls it with the same id and world).
     * @throws IllegalStateException when NCCL_NVLS_ENABLE is not 0 in this process's environment
     */
    public static Communicator communicator(Device device, int world, int rank, byte[] uniqueId) {
        if (!"0".equals(System.getenv("NCCL_NVLS_ENABLE"))) {
            throw new IllegalStateException("NCCL_NVLS_ENABLE must be 0 in a process that uses NCCL (NVLink multicast can take a shared "
                    + "machine's GPUs down): kiln launch sets it; other launchers must too");
        }
        if (uniqueId.length != UNIQUE_ID_BYTES) throw new IllegalArgumentException("an NCCL unique id has " + UNIQUE_ID_BYTES + " bytes, got " + uniqueId.length);
        CudaDevice dev = CudaDevice.get(device.index());
        dev.makeCurrent();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment comm = a.allocate(ADDR);
            MemorySegment id = a.allocate(UNIQUE_ID);
            MemorySegment.copy(uniqueId, 0, id, ValueLayout.JAVA_BYTE, 0, UNIQUE_ID_BYTES);
            LIB.check("ncclCommInitRank", (int) H.commInitRank.invokeExact(comm, world, id, rank));
            return new Communicator(dev, world, rank, comm.get(ADDR, 0).address());
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /**
     * One rank's NCCL communicator; collectives are queued on its device's stream and return at once. The
     * {@code ...Overlapped} ones run on the communicator's own stream instead, after the work already queued on the
     * device's stream, so that later compute (the rest of a backward pass) runs beside them until
     * {@link #joinOverlapped} makes the device's stream wait for them. Both streams' events work inside a CUDA graph
     * capture: the communication stream forks from the captured stream and joins it again.
     */
    public static final class Communicator extends NativeHandle {
        private final CudaDevice dev;
        private final int world, rank;
        private boolean aborted;
        private MemorySegment commStream;     // made on the first overlapped collective
        private Event forked, joined;

        private Communicator(CudaDevice dev, int world, int rank, long handle) {
            super("NCCL communicator", handle);
            this.dev = dev;
            this.world = world;
            this.rank = rank;
        }

        public int world() { return world; }

        public int rank() { return rank; }

        private long ptr(Tensor t) {
            if (!(t.storage() instanceof CudaStorage s) || s.cudaDevice() != dev || !t.isContiguous()) {
                throw new IllegalArgumentException("NCCL collectives take contiguous tensors on cuda:" + dev.index() + ", got one on " + t.device()
                        + (t.isContiguous() ? "" : " (not contiguous)"));
            }
            return s.address() + (long) t.offset() * t.dtype().byteSize();
        }

        /** t = the sum of t over the ranks, in place. */
        public void allReduceSum(Tensor t) {
            long p = ptr(t);
            call("ncclAllReduce", () -> (int) H.allReduce.invokeExact(p, p, t.numel(), dataType(t.dtype()), SUM, handle(), dev.stream()));
        }

        /**
         * Makes the communication stream wait for the work queued so far on the device's stream, and returns it: the
         * stream for {@link #allReduceAverage}'s overlapped collectives (made on the first call). Their tensors must not
         * be read, written or freed before {@link #joinOverlapped}.
         */
        public MemorySegment forkOverlapped() {
            if (commStream == null) {
                dev.makeCurrent();
                // kiln.dp.comm.high.priority: NCCL's blocks take the SMs backward frees before its own queued blocks do
                commStream = Settings.get().dpCommHighPriority() ? Driver.streamCreateHighestPriority(1) : Driver.streamCreate(1);
                forked = Event.create(dev, false);
                joined = Event.create(dev, false);
            }
            forked.record(dev.stream());
            forked.makeWait(commStream);
            return commStream;
        }

        /** t = the mean of t over the ranks, in place, queued on {@code stream}. */
        public void allReduceAverage(Tensor t, MemorySegment stream) {
            long p = ptr(t);
            call("ncclAllReduce", () -> (int) H.allReduce.invokeExact(p, p, t.numel(), dataType(t.dtype()), AVG, handle(), stream));
        }

        /** The device this communicator's rank runs on. */
        public CudaDevice device() { return dev; }

        /** Makes later work on the device's stream wait for the overlapped collectives queued so far. */
        public void joinOverlapped() {
            if (commStream == null) return;
            joined.record(commStream);
            joined.makeWait(dev.stream());
        }

        /** t = rank {@code root}'s t, in place. */
        public void broadcast(Tensor t, int root) {
            long p = ptr(t);
            call("ncclBroadcast", () -> (int) H.broadcast.invokeExact(p, p, t.numel(), dataType(t.dtype()), root, handle(), dev.stream()));
        }

        /** out (world x the send count) = every rank's send, in rank order. */
        public void allGather(Tensor send, Tensor out) {
            if (out.numel() != send.numel() * world) throw new IllegalArgumentException("all_gather: out must hold world x send elements");
            long s = ptr(send), o = ptr(out);
            call("ncclAllGather", () -> (int) H.allGather.invokeExact(s, o, send.numel(), dataType(send.dtype()), handle(), dev.stream()));
        }

        /** out = this rank's slice (send's elements / world) of the sum of send over the ranks. */
        public void reduceScatterSum(Tensor send, Tensor out) {
            if (send.numel() != out.numel() * world) throw new IllegalArgumentException("reduce_scatter: send must hold world x out elements");
            long s = ptr(send), o = ptr(out);
            call("ncclReduceScatter", () -> (int) H.reduceScatter.invokeExact(s, o, out.numel(), dataType(out.dtype()), SUM, handle(), dev.stream()));
        }

        /** ncclCommAbort: ends the communicator at once, pending collectives included (a peer failed). */
        public void abort() {
            if (isClosed()) return;
            call("ncclCommAbort", () -> (int) H.commAbort.invokeExact(handle()));
            aborted = true;
            close();
        }

        @Override protected void destroy(long handle) {
            if (!aborted) call("ncclCommDestroy", () -> (int) H.commDestroy.invokeExact(handle));
            if (commStream != null) {
                forked.close();
                joined.close();
                if (!aborted) Driver.streamDestroy(commStream); // after an abort the stream may still hold NCCL's dead kernels
            }
        }

        private interface Call { int run() throws Throwable; }

        private void call(String name, Call c) {
            dev.makeCurrent();
            try {
                LIB.check(name, c.run());
            } catch (Throwable t) {
                throw NativeLibrary.rethrow(t);
            }
        }
    }
}
