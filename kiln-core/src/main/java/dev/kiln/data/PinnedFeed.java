package dev.kiln.data;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.HostArrays;
import dev.kiln.MemoryScope;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.cuda.CudaDevice;
import dev.kiln.cuda.CudaStorage;
import dev.kiln.cuda.PinnedPool;
import dev.kiln.profile.Profiler;

import java.lang.foreign.MemorySegment;

/**
 * The GPU half of a {@link DataLoader}: loader threads write each batch into a pinned slot ({@link #fill}); the
 * caller's thread queues its copy to the device on the copy stream ({@link #upload}) one batch ahead, and hands it
 * out ({@link #take}) after making the compute stream wait for that copy. So the copy of batch k+1 runs while the
 * kernels of batch k run, and neither the host nor the compute stream waits for the whole device.
 *
 * <p>Device memory: the destinations are allocated on the caller's thread from the caching allocator, whose blocks
 * may still be read by kernels queued on the compute stream (the allocator hands a block out again as soon as the
 * scope that used it closes). {@link PinnedPool.Slot#copyToDevice} therefore makes the copy stream wait for an event
 * recorded on the compute stream at upload time. The tensors are kept out of the step's scope while in flight (the
 * step that uploads batch k+1 is batch k's step) and given to the scope of the step that takes them.
 */
final class PinnedFeed implements AutoCloseable {
    /** A batch in a pinned slot: inputs at offset 0, targets at {@code targetsOffset}. */
    record Filled(PinnedPool.Slot slot, DType inputType, int[] inputShape, DType targetType, int[] targetShape, long targetsOffset) {
        long inputBytes() { return Shape.numel(inputShape) * inputType.byteSize(); }

        long targetBytes() { return Shape.numel(targetShape) * targetType.byteSize(); }
    }

    /** A batch whose copy is queued: device tensors kept out of every scope until {@link #take}. */
    record InFlight(Filled filled, Tensor inputs, Tensor targets) {}

    private static final long ALIGN = 256; // the targets start on a fresh 256-byte line, as device blocks do

    private final Device device;
    private final CudaDevice cuda;
    private final PinnedPool pool;

    PinnedFeed(Device device, int slots) {
        this.device = device;
        this.cuda = CudaDevice.get(device.index());
        this.pool = new PinnedPool(cuda, slots);
    }

    long pinnedBytes() { return pool.pinnedBytes(); }

    /**
     * On a loader thread: the k-th batch of the epoch into slot k. A {@link TensorDataset} without a transform gathers
     * straight into pinned memory; otherwise the batch is prepared as usual ({@code prepared}, or the dataset's batch when
     * null) and its arrays copied in.
     */
    Filled fill(long k, int[] indices, Dataset dataset, java.util.function.Supplier<Batch> prepared) {
        PinnedPool.Slot slot = pool.slot(k);
        if (prepared == null && dataset instanceof TensorDataset td) {
            int[] inShape = td.inputShape(indices.length), tgShape = td.targetShape(indices.length);
            Filled f = new Filled(slot, td.inputType(), inShape, td.targetType(), tgShape,
                    align(Shape.numel(inShape) * td.inputType().byteSize()));
            MemorySegment host = slot.acquire(f.targetsOffset() + f.targetBytes());
            td.gatherInto(indices, host.asSlice(0, f.inputBytes()), host.asSlice(f.targetsOffset(), f.targetBytes()));
            return f;
        }
        Batch b = prepared == null ? dataset.batch(indices) : prepared.get();
        Tensor in = b.inputs().cpu(), tg = b.targets().cpu();
        Filled f = new Filled(slot, in.dtype(), in.shape(), tg.dtype(), tg.shape(), align(in.numel() * in.dtype().byteSize()));
        MemorySegment host = slot.acquire(f.targetsOffset() + f.targetBytes());
        MemorySegment.copy(HostArrays.segment(in.toHostArray()), 0, host, 0, f.inputBytes());
        MemorySegment.copy(HostArrays.segment(tg.toHostArray()), 0, host, f.targetsOffset(), f.targetBytes());
        return f;
    }

    private static long align(long bytes) { return (bytes + ALIGN - 1) / ALIGN * ALIGN; }

    /** On the caller's thread: allocates the device tensors and queues the copy on the copy stream. */
    InFlight upload(Filled f) {
        Tensor in = new Tensor(Backends.get(device).allocate(f.inputType(), Shape.numel(f.inputShape())), f.inputShape()).keep();
        Tensor tg = new Tensor(Backends.get(device).allocate(f.targetType(), Shape.numel(f.targetShape())), f.targetShape()).keep();
        long inAddr = ((CudaStorage) in.storage()).address(), tgAddr = ((CudaStorage) tg.storage()).address();
        try (Profiler.Scope span = Profiler.copySpan(cuda, "HtoD batch " + Shape.str(f.inputShape()), f.inputBytes() + f.targetBytes())) {
            f.slot().copyToDevice(new long[][]{{0, inAddr, f.inputBytes()}, {f.targetsOffset(), tgAddr, f.targetBytes()}});
        }
        return new InFlight(f, in, tg);
    }

    /** On the caller's thread: the compute stream waits for the copy; the step's scope takes the tensors. */
    Batch take(InFlight b) {
        b.filled().slot().copied().makeWait(cuda.stream());
        MemoryScope.track(b.inputs().storage());
        MemoryScope.track(b.targets().storage());
        return new Batch(b.inputs(), b.targets());
    }

    /** Frees a batch that was uploaded but never taken (its copy is waited for first: it still writes the memory). */
    void drop(InFlight b) {
        b.filled().slot().copied().synchronize();
        b.inputs().close();
        b.targets().close();
    }

    @Override public void close() { pool.close(); }
}
