package dev.kiln.dist;

import dev.kiln.Device;
import dev.kiln.Settings;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.Layer;

import java.util.ArrayList;
import java.util.List;

/**
 * Data parallel training of one model replica per rank, as PyTorch's DistributedDataParallel: at the start every
 * parameter is overwritten with rank 0's; during backward the gradients are grouped in buckets (in reverse order of
 * registration, the order backward tends to produce them, up to {@code bucketBytes} each, or optionally smaller
 * towards the end of backward), and each bucket is averaged
 * over the ranks as soon as its last gradient has been accumulated, so every rank steps with the mean gradient of the
 * global batch. Each bucket is one flat buffer made once, and each parameter's gradient is a slice of it (PyTorch's
 * {@code gradient_as_bucket_view}, by {@link Tensor#setGradBuffer}): a linear layer's weight-gradient product writes
 * there directly, the engine copies other gradients there as it accumulates them, and the buffer is reduced in place,
 * on NCCL's communication stream while the rest of backward runs. {@link #finish()} reduces buckets a backward left
 * incomplete (parameters that got no gradient this step) and makes the device wait for the reductions: a training loop
 * calls it after each backward, before the optimizer reads the gradients. {@link #noSync()} skips the reduction for
 * gradient accumulation: the next synchronised backward reduces the accumulated sum. The whole step, reductions
 * included, can be captured as one CUDA graph ({@code GraphedStep.dataParallel}).
 */
public final class DataParallel {
    private final ProcessGroup group;
    private final Layer model;
    private final List<List<Tensor>> buckets = new ArrayList<>();
    private final List<Tensor> flats = new ArrayList<>();     // per bucket: its gradients, back to back (made once, kept)
    private final List<List<Tensor>> slices = new ArrayList<>();  // per bucket: each parameter's gradient slice of its flat
    private final int[] waiting;     // per bucket: gradients not yet accumulated in this backward
    private final boolean reduces;   // more than one rank, or kiln.dp.reduce.alone: buckets are gradients' home and reduced
    private boolean sync = true;
    private long reductions;

    private DataParallel(Layer model, ProcessGroup group, long bucketBytes, long lastBucketBytes) {
        if (bucketBytes < 1) throw new IllegalArgumentException("data parallel: bucket size must be >= 1 byte, got " + bucketBytes);
        if (lastBucketBytes < 0) throw new IllegalArgumentException("data parallel: last bucket size must be >= 0 bytes, got " + lastBucketBytes);
        this.group = group;
        this.model = model;
        this.reduces = group.world() > 1 || Settings.get().dpReduceAlone();
        List<Tensor> params = model.parameters();
        if (params.isEmpty()) throw new IllegalArgumentException("data parallel: the model has no parameters");
        Device device = params.getFirst().device();
        for (Tensor p : params) {
            if (!p.device().equals(device)) {
                throw new IllegalArgumentException("data parallel: the model's parameters are on " + device + " and " + p.device()
                        + "; move the model to its rank's device first");
            }
        }
        if (lastBucketBytes == 0) {
            buckets.addAll(cut(params.reversed(), bucketBytes, bucketBytes));
        } else {
            // cut from the first-registered parameter, whose gradient backward makes last, with caps that double from
            // lastBucketBytes, then put in the order backward fills them
            for (List<Tensor> b : cut(params, Math.min(bucketBytes, lastBucketBytes), bucketBytes).reversed()) buckets.add(b.reversed());
        }
        waiting = new int[buckets.size()];
        for (int k = 0; k < buckets.size(); k++) {
            List<Tensor> bucket = buckets.get(k);
            long n = 0;
            for (Tensor p : bucket) n = aligned(n) + p.numel();
            if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("data parallel: a bucket of " + n + " elements; use smaller buckets");
            Tensor flat = Tensor.zeros(new int[]{(int) n}, bucket.getFirst().dtype(), device).keep();
            flats.add(flat);
            waiting[k] = bucket.size();
            int index = k;
            long at = 0;
            List<Tensor> views = new ArrayList<>();
            for (Tensor p : bucket) {
                at = aligned(at);
                Tensor range = flat.narrow(0, (int) at, (int) p.numel());
                int[] s = p.shape();   // a channels-last filter's gradient: the same range, laid out as it
                Tensor slice = p.prefersChannelsLast() ? range.view(s[0], s[2], s[3], s[1]).permute(0, 3, 1, 2) : range.view(s);
                views.add(slice);
                // each gradient is a slice of its bucket from the first backward on (PyTorch's gradient_as_bucket_view):
                // written there by the ops that can, copied there by the engine otherwise, so the bucket is ready as is
                if (reduces) p.setGradBuffer(slice);
                at += p.numel();
                p.registerPostAccumulateHook(g -> arrived(index));
            }
            slices.add(views);
        }
        Tensor.noGrad(() -> {
            for (Tensor p : params) group.broadcast(p, 0);
            return null;
        });
    }
    /**
     * Wraps {@code model} for {@code group}: its parameters take rank 0's values now, its gradients are averaged from
     * now on, in buckets of {@link Settings#dpBucketMb()} (25 MB unless set), shrinking towards the end of backward when
     * {@link Settings#dpLastBucketMb()} is set.
     */
    public static DataParallel of(Layer model, ProcessGroup group) {
        return of(model, group, Settings.get().dpBucketMb() << 20, Settings.get().dpLastBucketMb() << 20);
    }

    /** Buckets of equal size, {@code bucketBytes} at most each. */
    public static DataParallel of(Layer model, ProcessGroup group, long bucketBytes) { return of(model, group, bucketBytes, 0); }

    /**
     * Buckets of at most {@code bucketBytes} that shrink towards the end of backward when lastBucketBytes is above 0: the
     * bucket reduced last holds at most lastBucketBytes, each one before it at most twice the next.
     */
    public static DataParallel of(Layer model, ProcessGroup group, long bucketBytes, long lastBucketBytes) {
        return new DataParallel(model, group, bucketBytes, lastBucketBytes);
    }

    /**
     * Synchronised batch norm (PyTorch's {@code convert_sync_batchnorm}): every {@link BatchNorm} of the model
     * normalises by the statistics of the global batch in training (one all-reduce of its per-channel sums in forward
     * and one in backward). For small per-GPU batches, where a rank's own statistics are too noisy. Returns this.
     */
    public DataParallel syncBatchNorm() {
        for (Layer l : model.layers()) if (l instanceof BatchNorm bn) bn.synchronize(t -> sumOverRanks(t, group));
        return this;
    }

    /** The sum of t over the ranks as a recorded op: its gradient is the sum of the ranks' gradients, the same way. */
    static Tensor sumOverRanks(Tensor t, ProcessGroup group) {
        Tensor out = Tensor.noGrad(() -> {
            Tensor c = t.contiguousCopy();
            group.allReduceSum(c);
            return c;
        });
        return Autograd.record("sum_over_ranks", out, g -> {
            Tensor c = Tensor.noGrad(g::contiguousCopy);
            group.allReduceSum(c);
            return new Tensor[]{c};
        }, t);
    }

    /** A step replayed from a CUDA graph (its reductions inside): counted as this rank's progress by the group's hang detection. */
    public void stepReplayed() { group.markProgress(); }

    /** The buckets, each a list of parameters, in the order they are reduced. */
    public List<List<Tensor>> buckets() { return buckets.stream().map(List::copyOf).toList(); }

    /** How many bucket reductions have been queued (none in a job of one, unless kiln.dp.reduce.alone is on). */
    public long reductions() { return reductions; }

    /** A scope whose backward passes only accumulate gradients (closing it re-enables the reduction). */
    public AutoCloseable noSync() {
        sync = false;
        return () -> sync = true;
    }

    private void arrived(int bucket) {
        if (!sync) return;
        if (--waiting[bucket] == 0) reduce(bucket);
    }

    /**
     * Reduces the buckets this backward left incomplete and makes the device's later work wait for every reduction:
     * call it after each backward, before the gradients are read.
     */
    public void finish() {
        if (!sync) return;
        for (int k = 0; k < buckets.size(); k++) if (waiting[k] != buckets.get(k).size()) reduce(k);
        group.awaitReductions();
    }

    /**
     * params cut, in their order, into runs of one dtype: the first holds at most firstCap bytes, each next one at most
     * twice the one before, up to cap (a single larger parameter is a run of its own).
     */
    private static List<List<Tensor>> cut(List<Tensor> params, long firstCap, long cap) {
        List<List<Tensor>> runs = new ArrayList<>();
        List<Tensor> current = new ArrayList<>();
        long bytes = 0, limit = firstCap;
        for (Tensor p : params) {
            long b = p.numel() * p.dtype().byteSize();
            if (!current.isEmpty() && (bytes + b > limit || current.getFirst().dtype() != p.dtype())) {
                runs.add(current);
                current = new ArrayList<>();
                bytes = 0;
                limit = Math.min(cap, 2 * limit);
            }
            current.add(p);
            bytes += b;
        }
        runs.add(current);
        return runs;
    }

    /** Bucket offsets in elements rounded up to 64 (256 bytes of float32): each gradient slice starts aligned for cuBLASLt. */
    private static long aligned(long elements) { return (elements + 63) & ~63L; }

    private void reduce(int bucket) {
        waiting[bucket] = buckets.get(bucket).size();
        if (!reduces) return;
        reductions++;
        Tensor flat = flats.get(bucket);
        Tensor.noGrad(() -> {
            List<Tensor> params = buckets.get(bucket);
            for (int i = 0; i < params.size(); i++) {
                Tensor p = params.get(i), slice = slices.get(bucket).get(i), g = p.grad();
                if (g != null && g.storage() == slice.storage() && g.offset() == slice.offset()) continue;   // already there
                // no gradient this step (zeros: the ranks step alike), or one accumulated under noSync
                slice.copyFrom(g == null ? Tensor.zeros(p.shape(), p.dtype(), p.device()) : g);
                p.zeroGrad();       // frees an accumulated gradient (stream-ordered after the copy)
                p.setGrad(slice);
            }
            group.allReduceMeanAsync(flat);
            return null;
        });
    }
}
