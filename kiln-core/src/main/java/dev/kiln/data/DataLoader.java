package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.Generator;

import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Batches of a dataset, epoch after epoch: optionally shuffled (seeded; a new order each epoch, the same orders
 * for the same seed), the last short batch kept or dropped; a dataset that changes per epoch is asked for each
 * epoch's view ({@link Dataset#forEpoch}). Worker threads gather and transform the next
 * {@code prefetch} batches while the current one trains; batches still come out in order. Close the loader to
 * stop its threads.
 *
 * <p>On a CUDA device the workers write batches into pinned host buffers and each copy to the device runs on a
 * second stream, one batch ahead, overlapping the compute of the current batch ({@link PinnedFeed}). A
 * {@link DeviceDataset} needs none of that: each epoch uploads its order once and every batch is gathered on the
 * device. The batches are the same on every path.
 */
public final class DataLoader implements Iterable<Batch>, AutoCloseable {
    private final Dataset dataset;
    private final int batchSize, workers, prefetch;
    private final boolean shuffle, dropLast;
    private final long seed;
    private final Transform transform;
    private final Device device;
    private final ExecutorService pool;
    private PinnedFeed feed; // the pinned buffers of a CUDA loader, made on its first epoch
    private int epochCount;

    private DataLoader(Builder b) {
        this.dataset = b.dataset;
        this.batchSize = b.batchSize;
        this.shuffle = b.shuffle;
        this.seed = b.seed;
        this.dropLast = b.dropLast;
        this.workers = b.workers;
        this.prefetch = b.prefetch;
        this.transform = b.transform;
        this.device = b.device;
        AtomicInteger n = new AtomicInteger();
        this.pool = workers == 0 ? null : Executors.newFixedThreadPool(workers, r -> {
            Thread t = new Thread(r, "kiln-loader-" + n.incrementAndGet());
            t.setDaemon(true); // a forgotten close() must not keep the JVM alive
            return t;
        });
    }

    public static Builder builder(Dataset dataset) { return new Builder(dataset); }

    public int batchSize() { return batchSize; }

    public Dataset dataset() { return dataset; }

    /** Batches per epoch. */
    public int batchCount() {
        int n = dataset.size();
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize;
    }

    /** The examples one epoch visits (all of them unless the last batch is dropped). */
    public int sampleCount() { return dropLast ? batchCount() * batchSize : dataset.size(); }

    /** The next epoch's batches. */
    @Override public Epoch iterator() { return new Epoch(epochCount++); }

    /**
     * Epoch {@code epoch} (0-based) from batch {@code fromBatch} on: the batches its full pass yields from there, since
     * the order and transforms are a pure function of the seed, the epoch and the batch index; the next
     * {@link #iterator()} is epoch + 1. A resumed training run reads on where it stopped with it.
     */
    public Epoch epoch(int epoch, int fromBatch) {
        if (epoch < 0 || fromBatch < 0 || fromBatch > batchCount()) {
            throw new IllegalArgumentException("DataLoader.epoch: epoch " + epoch + ", batch " + fromBatch + " of " + batchCount());
        }
        epochCount = epoch + 1;
        Epoch e = new Epoch(epoch);
        e.submitted = e.returned = fromBatch;
        return e;
    }

    /** Whether batches reach the device through pinned buffers and the copy stream. */
    private boolean pinned() { return device.isCuda() && resident() == null; }

    /** The data resident on the device, whole or one rank's share of it: batches are gathered there. */
    private DeviceDataset resident() {
        return dataset instanceof DeviceDataset d ? d : dataset instanceof ShardedDataset s && s.source() instanceof DeviceDataset d ? d : null;
    }

    private PinnedFeed feed() {
        // prefetch batches may wait filled, one is in flight and one in use: a slot for each, so a slot is never
        // written before its batch's copy was queued
        if (feed == null) feed = new PinnedFeed(device, prefetch + 2);
        return feed;
    }

    /** Pinned host bytes this loader holds (0 off the GPU path; for tests and logs). */
    public long pinnedBytes() { return feed == null ? 0 : feed.pinnedBytes(); }

    /** One pass over the data; close it when leaving early so its pending batches are dropped. */
    public final class Epoch implements Iterator<Batch>, AutoCloseable {
        private final int[] order;
        private final Dataset data; // the dataset as this epoch sees it
        private final long epochKey;
        private final ArrayDeque<Future<Batch>> pending = new ArrayDeque<>();
        private final ArrayDeque<Future<PinnedFeed.Filled>> pendingPinned = new ArrayDeque<>();
        private PinnedFeed.InFlight staged; // the next batch, its copy already queued on the copy stream
        private Tensor deviceOrder;         // a DeviceDataset's order for this epoch, on its device
        private int submitted, returned;

        private Epoch(int epoch) {
            int n = dataset.size();
            data = dataset.forEpoch(epoch);
            if (data.size() != n) throw new IllegalStateException("epoch " + epoch + " of a dataset of " + n + " examples has " + data.size());
            epochKey = EpochShuffle.key(seed, epoch);
            if (shuffle) order = EpochShuffle.order(n, epochKey);
            else {
                order = new int[n];
                for (int i = 0; i < n; i++) order[i] = i;
            }
        }

        @Override public boolean hasNext() { return returned < batchCount(); }

        @Override public Batch next() {
            if (!hasNext()) throw new NoSuchElementException("the epoch has no more batches");
            DeviceDataset resident = resident();
            if (resident != null) return nextResident(resident);
            if (pinned()) return nextPinned();
            Batch b;
            if (pool == null) {
                b = prepare(returned);
            } else {
                fill();
                b = await(pending.poll());
            }
            returned++;
            if (pool != null) fill(); // keep the workers busy while the caller trains on b
            return device.equals(Device.CPU) ? b : b.to(device);
        }

        private void fill() {
            while (pending.size() < prefetch && submitted < batchCount()) {
                int k = submitted++;
                pending.add(pool.submit(() -> prepare(k)));
            }
        }

        private int[] indices(int k) {
            int start = k * batchSize, end = Math.min(start + batchSize, order.length);
            return java.util.Arrays.copyOfRange(order, start, end);
        }

        private Batch prepare(int k) { return transformed(k, data.batch(indices(k))); }

        private Batch transformed(int k, Batch b) {
            if (transform == null) return b;
            SplittableRandom rng = new SplittableRandom(Generator.mix(epochKey + k));
            return new Batch(transform.apply(b.inputs(), rng), b.targets());
        }

        // ---------------------------------------------------------------- resident on the device

        /** The epoch's order goes up once; batch k is rows [k·batch, (k+1)·batch) of it, gathered on the device. */
        private Batch nextResident(DeviceDataset d) {
            if (deviceOrder == null) {
                long[] o = new long[order.length];
                for (int i = 0; i < o.length; i++) o[i] = data instanceof ShardedDataset s ? s.sourceIndex(order[i]) : order[i];
                deviceOrder = Tensor.fromHost(o, DType.INT64, new int[]{o.length}, d.device()).keep();
            }
            int k = returned++, start = k * batchSize, len = Math.min(batchSize, order.length - start);
            Batch b = transformed(k, d.batch(deviceOrder.narrow(0, start, len)));
            if (returned == batchCount()) releaseOrder();
            return b;
        }

        private void releaseOrder() {
            if (deviceOrder != null) deviceOrder.close();
            deviceOrder = null;
        }

        // ---------------------------------------------------------------- pinned buffers and the copy stream

        private Batch nextPinned() {
            PinnedFeed feed = feed();
            if (staged == null) staged = feed.upload(takeFilled(feed));
            PinnedFeed.InFlight current = staged;
            staged = null;
            returned++;
            if (pool != null) fillPinned(feed);
            // queue the next copy now, before the caller queues this batch's kernels, so the two overlap; a worker
            // still busy with it is not waited for: then the copy is queued on the next call
            if (returned < batchCount() && (pool == null || pendingPinned.peek().isDone())) staged = feed.upload(takeFilled(feed));
            return feed.take(current);
        }

        private PinnedFeed.Filled takeFilled(PinnedFeed feed) {
            if (pool == null) {
                int k = submitted++;
                return fillOne(feed, k);
            }
            fillPinned(feed);
            return await(pendingPinned.poll());
        }

        private void fillPinned(PinnedFeed feed) {
            while (pendingPinned.size() < prefetch && submitted < batchCount()) {
                int k = submitted++;
                pendingPinned.add(pool.submit(() -> fillOne(feed, k)));
            }
        }

        private PinnedFeed.Filled fillOne(PinnedFeed feed, int k) {
            int[] idx = indices(k);
            return feed.fill(k, idx, data, transform == null ? null : () -> transformed(k, data.batch(idx)));
        }

        private <T> T await(Future<T> f) {
            try {
                return f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a batch", e);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof RuntimeException r) throw r;
                if (c instanceof Error err) throw err;
                throw new IllegalStateException("loading a batch failed: " + c, c);
            } catch (CancellationException e) {
                throw new IllegalStateException("the loader was closed", e);
            }
        }

        /** Batches prepared in the background and not yet taken. */
        public int prefetched() {
            int done = 0;
            for (Future<Batch> f : pending) if (f.isDone()) done++;
            for (Future<PinnedFeed.Filled> f : pendingPinned) if (f.isDone()) done++;
            return done;
        }

        @Override public void close() {
            for (Future<Batch> f : pending) f.cancel(true);
            pending.clear();
            // a worker writing a pinned slot is let finish (not interrupted): the next epoch reuses the slot
            for (Future<PinnedFeed.Filled> f : pendingPinned) {
                if (!f.cancel(false)) {
                    try {
                        f.get();
                    } catch (Exception ignored) {
                        // its batch is dropped either way
                    }
                }
            }
            pendingPinned.clear();
            if (staged != null) feed.drop(staged);
            staged = null;
            releaseOrder();
            returned = batchCount();
        }
    }

    @Override public void close() {
        if (pool != null) {
            pool.shutdownNow();
            try {
                pool.awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (feed != null) feed.close(); // after the workers stopped: they write its buffers
        feed = null;
    }

    /** Options of a loader: batch size, shuffling, workers, prefetch depth and the device batches go to. */
    public static final class Builder {
        private final Dataset dataset;
        private int batchSize = 1, workers = 1, prefetch = 2;
        private boolean shuffle, dropLast;
        private long seed;
        private Transform transform;
        private Device device = Device.CPU;

        private Builder(Dataset dataset) { this.dataset = dataset; }

        public Builder batchSize(int n) {
            if (n < 1) throw new IllegalArgumentException("batch size must be >= 1, got " + n);
            batchSize = n;
            return this;
        }

        /** Shuffles every epoch, seeded: the same seed gives the same sequence of orders. */
        public Builder shuffle(long seed) {
            this.shuffle = true;
            this.seed = seed;
            return this;
        }

        public Builder dropLast(boolean on) {
            dropLast = on;
            return this;
        }

        /** Background threads preparing batches (0: prepare on the caller's thread). Default 1. */
        public Builder workers(int n) {
            if (n < 0) throw new IllegalArgumentException("workers must be >= 0, got " + n);
            workers = n;
            return this;
        }

        /** How many prepared batches may wait (the bounded queue). Default 2. */
        public Builder prefetch(int n) {
            if (n < 1) throw new IllegalArgumentException("prefetch must be >= 1, got " + n);
            prefetch = n;
            return this;
        }

        public Builder transform(Transform t) {
            transform = t;
            return this;
        }

        /** Where batches are delivered (copied from the CPU on the caller's thread). */
        public Builder device(Device d) {
            device = d;
            return this;
        }

        public DataLoader build() { return new DataLoader(this); }
    }
}
