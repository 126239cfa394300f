package dev.kiln.dist;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.BatchNorm;
import dev.kiln.nn.BatchNorm1d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.F;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** DataParallel's buckets, hooks, averaging and noSync, with fake groups and with two ranks as threads of one JVM. */
class DataParallelTest {
    private static Sequential mlp(long seed) {
        Generator g = new Generator(seed);
        return new Sequential(new Linear(6, 16, g), new ReLU(), new Linear(16, 16, g), new ReLU(), new Linear(16, 3, g)).to(DType.FLOAT64);
    }

    /** A rank 0 of two whose partner holds the same values: a sum doubles, a broadcast keeps. Counts its calls. */
    static final class MirrorGroup implements ProcessGroup {
        int reduces, broadcasts;

        @Override public int rank() { return 0; }

        @Override public int world() { return 2; }

        @Override public void allReduceSum(Tensor t) {
            reduces++;
            t.copyFrom(t.mul(2));
        }

        @Override public void broadcast(Tensor t, int root) { broadcasts++; }
    }

    private static double[][] grads(Sequential m) {
        return m.parameters().stream().map(p -> p.grad().toDoubleArray()).toArray(double[][]::new);
    }

    private static void step(Sequential m, Tensor x, Tensor y) {
        F.crossEntropy(m.forward(x), y).backward();
    }

    @Test void bucketsFollowReverseRegistrationUpToTheCap() {
        Sequential m = mlp(1);
        DataParallel dp = DataParallel.of(m, ProcessGroup.single(), 16 * 16 * 8);   // one 16x16 float64 weight per bucket
        List<List<Tensor>> b = dp.buckets();
        List<Tensor> params = m.parameters();
        assertSame(params.getLast(), b.getFirst().getFirst(), "the last layer's parameters come first");
        assertEquals(params.size(), b.stream().mapToInt(List::size).sum());
        for (List<Tensor> bucket : b) assertTrue(bucket.size() == 1 || bucket.stream().mapToLong(t -> t.numel() * 8).sum() <= 16 * 16 * 8);
    }

    /** With a last-bucket size the buckets shrink towards the end of backward: the last at most that, each before at most twice the next. */
    @Test void bucketsCanHalveTowardsTheEndOfBackward() {
        Generator g = new Generator(2);
        Layer[] layers = new Layer[12];
        for (int i = 0; i < layers.length; i++) layers[i] = new Linear(256, 256, g);   // 257 KiB of float32 each
        Sequential m = new Sequential(layers);
        long cap = 2 << 20, last = 1 << 20;
        List<List<Tensor>> b = DataParallel.of(m, ProcessGroup.single(), cap, last).buckets();
        assertEquals(m.parameters().reversed(), b.stream().flatMap(List::stream).toList(), "every parameter once, in reverse registration order");
        long limit = last;
        for (int k = b.size() - 1; k >= 0; k--, limit = Math.min(cap, 2 * limit)) {
            long bytes = b.get(k).stream().mapToLong(t -> t.numel() * 4).sum();
            assertTrue(bytes <= limit, "bucket " + k + " of " + b.size() + ": " + bytes + " bytes, at most " + limit);
        }
        assertTrue(b.getLast().stream().mapToLong(t -> t.numel() * 4).sum() > last / 2, "the last bucket is filled");
        List<List<Tensor>> equal = DataParallel.of(m, ProcessGroup.single(), cap).buckets();
        assertTrue(equal.getLast().stream().mapToLong(t -> t.numel() * 4).sum() > last, "equal buckets leave a larger last one: " + equal.size());
        assertThrows(IllegalArgumentException.class, () -> DataParallel.of(m, ProcessGroup.single(), cap, -1));
    }

    @Test void everyBucketIsReducedOnceAndTheMeanIsKept() {
        Tensor x = Tensor.randn(new Generator(3), new int[]{8, 6}, DType.FLOAT64, Device.CPU), y = Tensor.of(new long[]{0, 1, 2, 0, 1, 2, 0, 1}, 8);
        Sequential plain = mlp(2), wrapped = mlp(2);
        MirrorGroup g = new MirrorGroup();
        DataParallel dp = DataParallel.of(wrapped, g, 600);
        assertEquals(wrapped.parameters().size(), g.broadcasts, "every parameter from rank 0 at the start");
        step(plain, x, y);
        step(wrapped, x, y);
        dp.finish();
        assertEquals(dp.buckets().size(), g.reduces, "one all-reduce per bucket");
        double[][] a = grads(plain), b = grads(wrapped);
        for (int i = 0; i < a.length; i++) assertArrayEquals(a[i], b[i], 1e-15, "the mean over two identical ranks is the gradient");
    }

    @Test void noSyncAccumulatesAndTheNextBackwardReducesTheSum() throws Exception {
        Tensor x = Tensor.randn(new Generator(4), new int[]{6, 6}, DType.FLOAT64, Device.CPU), y = Tensor.of(new long[]{0, 1, 2, 2, 1, 0}, 6);
        Sequential m = mlp(5);
        MirrorGroup g = new MirrorGroup();
        DataParallel dp = DataParallel.of(m, g, 1 << 20);
        try (AutoCloseable ignored = dp.noSync()) {
            step(m, x, y);
            step(m, x, y);
            dp.finish();
        }
        assertEquals(0, g.reduces, "no communication inside noSync");
        step(m, x, y);
        dp.finish();
        assertEquals(dp.buckets().size(), g.reduces);
        Sequential ref = mlp(5);
        for (int i = 0; i < 3; i++) step(ref, x, y);
        double[][] a = grads(ref), b = grads(m);
        for (int i = 0; i < a.length; i++) assertArrayEquals(a[i], b[i], 1e-14, "three accumulated gradients, averaged over mirrored ranks");
    }

    /** Ranks as threads sharing memory: each collective meets at a barrier and sums in rank order. */
    static final class ThreadGroup implements ProcessGroup {
        private final int rank;
        private final CyclicBarrier barrier;
        private final double[][] slots;

        ThreadGroup(int rank, CyclicBarrier barrier, double[][] slots) {
            this.rank = rank;
            this.barrier = barrier;
            this.slots = slots;
        }

        @Override public int rank() { return rank; }

        @Override public int world() { return slots.length; }

        @Override public void allReduceSum(Tensor t) {
            slots[rank] = t.toDoubleArray();
            await();
            double[] sum = new double[slots[0].length];
            for (double[] s : slots) for (int i = 0; i < sum.length; i++) sum[i] += s[i];
            await();
            t.copyFrom(Tensor.of(sum, t.shape()).to(t.dtype()));
        }

        @Override public void broadcast(Tensor t, int root) {
            if (rank == root) slots[root] = t.toDoubleArray();
            await();
            double[] v = slots[root];
            await();
            t.copyFrom(Tensor.of(v, t.shape()).to(t.dtype()));
        }

        private void await() {
            try {
                barrier.await(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * Two thread ranks, each built by {@code make(rank)} (different starts: rank 0's broadcast makes them one) and
     * wrapped by {@code wrap}, train {@code steps} SGD steps on their halves of (x, y); then one process, built as rank 0,
     * trains on the whole batch. Returns {rank 0, rank 1, the single process}.
     */
    private static Sequential[] twoRanksAndOne(java.util.function.IntFunction<Sequential> make,
                                               java.util.function.BiFunction<Sequential, ProcessGroup, DataParallel> wrap,
                                               Tensor x, Tensor y, int steps) throws Exception {
        CyclicBarrier barrier = new CyclicBarrier(2);
        double[][] slots = new double[2][];
        int half = x.size(0) / 2;
        var pool = Executors.newFixedThreadPool(2);
        try {
            List<CompletableFuture<Sequential>> ranks = List.of(0, 1).stream().map(r -> CompletableFuture.supplyAsync(() -> {
                Sequential m = make.apply(r);
                DataParallel dp = wrap.apply(m, new ThreadGroup(r, barrier, slots));
                SGD o = new SGD(m.parameters(), 0.1);
                Tensor xr = x.narrow(0, half * r, half), yr = y.narrow(0, half * r, half);
                for (int s = 0; s < steps; s++) {
                    o.zeroGrad();
                    step(m, xr, yr);
                    dp.finish();
                    o.step();
                }
                return m;
            }, pool)).toList();
            Sequential m0 = ranks.get(0).get(60, TimeUnit.SECONDS), m1 = ranks.get(1).get(60, TimeUnit.SECONDS);
            Sequential ref = make.apply(0);
            SGD ro = new SGD(ref.parameters(), 0.1);
            for (int s = 0; s < steps; s++) {
                ro.zeroGrad();
                step(ref, x, y);
                ro.step();
            }
            return new Sequential[]{m0, m1, ref};
        } finally {
            pool.shutdownNow();
        }
    }

    /** The state dicts agree: rank 0 with the single process within tol, the ranks with each other within 1e-15. */
    private static void assertTrainedAlike(Sequential[] m, double tol) {
        var want = m[2].stateDict();
        var got0 = m[0].stateDict();
        var got1 = m[1].stateDict();
        for (String k : want.keySet()) {
            if (k.endsWith("num_batches_tracked")) continue;
            assertArrayEquals(want.get(k).toDoubleArray(), got0.get(k).toDoubleArray(), tol, "rank 0: " + k);
            assertArrayEquals(got0.get(k).toDoubleArray(), got1.get(k).toDoubleArray(), 1e-15, "ranks agree: " + k);
        }
    }

    private static Tensor labels(int n, int mul) {
        long[] labels = new long[n];
        for (int i = 0; i < n; i++) labels[i] = (i * mul) % 3;
        return Tensor.of(labels, n);
    }

    @Test void twoRanksWithHalfTheBatchTrainAsOneWithTheWholeBatch() throws Exception {
        Tensor x = Tensor.randn(new Generator(6), new int[]{16, 6}, DType.FLOAT64, Device.CPU);
        assertTrainedAlike(twoRanksAndOne(r -> mlp(100 + r), (m, g) -> DataParallel.of(m, g, 700), x, labels(16, 5), 20), 1e-12);
        // buckets that shrink towards the end of backward (the last at most 300 bytes) reduce the same gradients
        assertTrainedAlike(twoRanksAndOne(r -> mlp(100 + r), (m, g) -> DataParallel.of(m, g, 700, 300), x, labels(16, 5), 20), 1e-12);
    }

    private static Sequential convNet(long seed) {
        Generator g = new Generator(seed);
        Sequential m = new Sequential(new Conv2d(2, 4, 3, 1, 1, g), new ReLU(), new Flatten(), new Linear(4 * 5 * 5, 3, g)).to(DType.FLOAT64);
        return (Sequential) m.channelsLast(true);
    }

    /** Channels-last filters: their gradients are channels-last views of the buckets, reduced as any other. */
    @Test void channelsLastFiltersTrainOnTwoRanksAsOne() throws Exception {
        Tensor x = Tensor.randn(new Generator(8), new int[]{16, 2, 5, 5}, DType.FLOAT64, Device.CPU);
        Sequential[] m = twoRanksAndOne(r -> convNet(300 + r), (net, g) -> DataParallel.of(net, g, 400), x, labels(16, 5), 10);
        for (Sequential s : m) assertTrue(s.parameters().getFirst().prefersChannelsLast(), "the filter stays channels-last");
        assertTrainedAlike(m, 1e-12);
    }

    private static Sequential bnNet(long seed) {
        Generator g = new Generator(seed);
        return new Sequential(new Linear(6, 8, g), new BatchNorm1d(8), new ReLU(), new Linear(8, 3, g)).to(DType.FLOAT64);
    }

    @Test void syncBatchNormOnTwoRanksTrainsAsOneBatchNormOnTheWholeBatch() throws Exception {
        Tensor x = Tensor.randn(new Generator(7), new int[]{16, 6}, DType.FLOAT64, Device.CPU);
        // the single process: the fused batch norm over the whole batch; the ranks: synchronised over their halves
        assertTrainedAlike(twoRanksAndOne(r -> bnNet(200 + r), (m, g) -> DataParallel.of(m, g, 300).syncBatchNorm(),
                x, labels(16, 7), 10), 1e-12);
    }

    @Test void syncBatchNormOfAWorldOfOneIsBatchNormAndItsGradientChecks() {
        for (int[] shape : new int[][]{{6, 3}, {4, 3, 2, 5}}) {
            Tensor x = Tensor.randn(new Generator(8), shape, DType.FLOAT64, Device.CPU);
            Tensor res = Tensor.randn(new Generator(9), shape, DType.FLOAT64, Device.CPU);
            dev.kiln.GradCheck.check(in -> {
                BatchNorm bn = shape.length == 2 ? new BatchNorm1d(3) : new BatchNorm2d(3);
                bn.to(DType.FLOAT64);
                bn.synchronize(t -> DataParallel.sumOverRanks(t, ProcessGroup.single()));
                return bn.forward(in[0], in[1], true).mul(in[0]).sum();
            }, x.requiresGrad(true), res.requiresGrad(true));
            BatchNorm fused = shape.length == 2 ? new BatchNorm1d(3) : new BatchNorm2d(3), synced = shape.length == 2 ? new BatchNorm1d(3) : new BatchNorm2d(3);
            fused.to(DType.FLOAT64);
            synced.to(DType.FLOAT64);
            synced.synchronize(t -> DataParallel.sumOverRanks(t, ProcessGroup.single()));
            Tensor a = Tensor.noGrad(() -> fused.forward(x, res, true)), b = Tensor.noGrad(() -> synced.forward(x, res, true));
            assertArrayEquals(a.toDoubleArray(), b.toDoubleArray(), 1e-12, "the same normalisation");
            assertArrayEquals(fused.runningVar().toDoubleArray(), synced.runningVar().toDoubleArray(), 1e-12, "the same running variance (unbiased)");
            assertArrayEquals(fused.runningMean().toDoubleArray(), synced.runningMean().toDoubleArray(), 1e-12, "the same running mean");
        }
    }
}
