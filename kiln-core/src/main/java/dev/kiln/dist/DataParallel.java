package dev.kiln.dist;

import dev.kiln.Tensor;
import dev.kiln.nn.Layer;

import java.util.ArrayList;
import java.util.List;

/**
 * Data parallel training of one model replica per rank, as PyTorch's DistributedDataParallel: at the start every
 * parameter is overwritten with rank 0's; during backward the gradients are grouped in buckets (in reverse order of
 * registration, the order backward tends to produce them, up to {@code bucketBytes} each), and each bucket is summed
 * over the ranks as soon as its last gradient has been accumulated, then divided by the world size, so every rank
 * steps with the mean gradient of the global batch. {@link #noSync()} skips the reduction for gradient accumulation:
 * the next synchronised backward reduces the accumulated sum. {@link #finish()} reduces buckets a backward left
 * incomplete (parameters that got no gradient this step); a training loop calls it after each backward.
 */
public final class DataParallel {
    /** PyTorch's default bucket size. */
    public static final long DEFAULT_BUCKET_BYTES = 25L << 20;

    private final ProcessGroup group;
    private final List<List<Tensor>> buckets = new ArrayList<>();
    private final int[] waiting;     // per bucket: gradients not yet accumulated in this backward
    private boolean sync = true;
    private long reductions;

    private DataParallel(Layer model, ProcessGroup group, long bucketBytes) {
        if (bucketBytes < 1) throw new IllegalArgumentException("data parallel: bucket size must be >= 1 byte, got " + bucketBytes);
        this.group = group;
        List<Tensor> params = model.parameters();
        List<Tensor> current = new ArrayList<>();
        long bytes = 0;
        for (int i = params.size() - 1; i >= 0; i--) {
            Tensor p = params.get(i);
            long b = p.numel() * p.dtype().byteSize();
            if (!current.isEmpty() && (bytes + b > bucketBytes || current.getFirst().dtype() != p.dtype())) {
                buckets.add(current);
                current = new ArrayList<>();
                bytes = 0;
            }
            current.add(p);
            bytes += b;
        }
        if (!current.isEmpty()) buckets.add(current);
        waiting = new int[buckets.size()];
        for (int k = 0; k < buckets.size(); k++) {
            waiting[k] = buckets.get(k).size();
            int bucket = k;
            for (Tensor p : buckets.get(k)) p.registerPostAccumulateHook(g -> arrived(bucket));
        }
        Tensor.noGrad(() -> {
            for (Tensor p : params) group.broadcast(p, 0);
            return null;
        });
    }

    /** Wraps {@code model} for {@code group}: its parameters take rank 0's values now, its gradients are averaged from now on. */
    public static DataParallel of(Layer model, ProcessGroup group) { return of(model, group, DEFAULT_BUCKET_BYTES); }

    public static DataParallel of(Layer model, ProcessGroup group, long bucketBytes) { return new DataParallel(model, group, bucketBytes); }

    /** The buckets, each a list of parameters, in the order they are reduced. */
    public List<List<Tensor>> buckets() { return buckets.stream().map(List::copyOf).toList(); }

    /** How many bucket reductions have run (for tests and logs). */
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

    /** Reduces the buckets this backward left incomplete; every bucket is ready for the next backward afterwards. */
    public void finish() {
        if (!sync) return;
        for (int k = 0; k < buckets.size(); k++) if (waiting[k] != buckets.get(k).size()) reduce(k);
    }

    private void reduce(int bucket) {
        waiting[bucket] = buckets.get(bucket).size();
        reductions++;
        if (group.world() == 1) return;
        Tensor.noGrad(() -> {
            List<Tensor> grads = new ArrayList<>();
            for (Tensor p : buckets.get(bucket)) grads.add(p.grad() == null ? Tensor.zeros(p.shape(), p.dtype(), p.device()) : p.grad());
            Tensor flat = Tensor.cat(grads.stream().map(g -> g.reshape(-1)).toList(), 0);
            group.allReduceSum(flat);
            Tensor mean = flat.div(group.world());
            long at = 0;
            for (int i = 0; i < grads.size(); i++) {
                Tensor p = buckets.get(bucket).get(i);
                Tensor slice = mean.narrow(0, (int) at, (int) p.numel()).reshape(p.shape());
                if (p.grad() == null) p.setGrad(slice.contiguousCopy().keep()); else p.grad().copyFrom(slice); // a gradient outlives the step
                at += p.numel();
            }
            return null;
        });
    }
}
