package dev.kiln.dist;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;

/**
 * A rank of a launched test job: meets the others through the rendezvous, prints rank 0's payload, then per mode:
 * {@code ok} ends normally; {@code fail} (rank 1 exits 3; the others exit 5 when told, naming it); {@code hang} (rank 1
 * exits 3; the others ignore it and sleep, for the launcher to kill); {@code train} trains the test MLP data-parallel over
 * TCP on its shard and prints a checksum of its parameters ({@code train-alone}: with kiln.dp.reduce.alone); {@code nccl-train} the same over NCCL on cuda:LOCAL_RANK;
 * {@code nccl-fail}: rank 1 exits after the communicator is made, rank 0 keeps all-reducing until the abort ends it;
 * {@code nccl-hang}: the same with rank 1 alive but stuck (kiln.dist.timeout.s 5);
 * {@code nccl-adam} / {@code nccl-graphed}: 50 float32 Adam steps of a wider MLP, eagerly or captured as one CUDA graph
 * (the reductions inside it), and {@code nccl-adam-alone} / {@code nccl-graphed-alone} the same with kiln.dp.reduce.alone
 * (a job of one still reduces, through NCCL; the count of bucket reductions is printed), {@code nccl-graphed-alone-high}
 * with kiln.dp.comm.high.priority too; {@code nccl-syncbn}: 20 float64 SGD steps of an MLP with batch norm, synchronised over the
 * ranks (a job of one uses the plain batch norm), its running statistics included in the checksum;
 * {@code tcp-gpu-f32} / {@code tcp-gpu-bf16}: every rank on cuda:0, reducing over TCP (see {@link #tcpGpu}).
 */
public final class LaunchChild {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        // before the settings are first read
        if (mode.contains("-alone")) System.setProperty("kiln.dp.reduce.alone", "on");
        if (mode.endsWith("-high")) System.setProperty("kiln.dp.comm.high.priority", "on");
        if (mode.startsWith("train")) {
            train(JobEnvironment.from(System.getenv()));
            return;
        }
        if (mode.startsWith("tcp-gpu")) {
            tcpGpu(JobEnvironment.from(System.getenv()), mode.equals("tcp-gpu-bf16"));
            return;
        }
        if (mode.equals("nccl-hang")) System.setProperty("kiln.dist.timeout.s", "5"); // before the settings are first read
        if (mode.startsWith("nccl")) {
            nccl(JobEnvironment.from(System.getenv()), mode);
            return;
        }
        JobEnvironment job = JobEnvironment.from(System.getenv());
        byte[] id = new byte[16];
        new SecureRandom().nextBytes(id);
        Rendezvous.Session s = job.rank() == 0
                ? Rendezvous.host(new java.net.InetSocketAddress(job.masterAddr(), job.masterPort()), job.token(), job.worldSize(), id, Duration.ofSeconds(30), System.out::println)
                : Rendezvous.join(job.master(), job.token(), job.rank(), job.worldSize(), Duration.ofSeconds(30));
        System.out.println("payload " + HexFormat.of().formatHex(s.payload()) + " world " + job.worldSize() + " local " + job.localRank()
                + " nvls " + System.getenv("NCCL_NVLS_ENABLE"));
        System.out.flush();
        switch (mode) {
            case "ok" -> {
                Thread.sleep(300);
                s.close();
            }
            case "fail", "hang" -> {
                if (job.rank() == 1) {
                    Thread.sleep(200);
                    System.exit(3);
                }
                if (mode.equals("fail")) {
                    s.watch(r -> {
                        System.out.println("rank " + r + " failed: aborting");
                        System.out.flush();
                        System.exit(5);
                    });
                }
                Thread.sleep(60_000);
            }
            default -> throw new IllegalArgumentException(mode);
        }
    }

    /** 30 SGD steps of a float64 MLP on 64 synthetic examples, the global batch 16 split over the ranks. */
    static void train(JobEnvironment job) throws Exception {
        try (TcpProcessGroup group = TcpProcessGroup.connect(job, Duration.ofSeconds(30))) {
            double[] sum = trainedParameters(group);
            double check = 0;
            for (int i = 0; i < sum.length; i++) check += sum[i] * (i + 1);
            System.out.println("checksum " + Double.doubleToLongBits(check) + " world " + job.worldSize());
        }
    }

    /** The job's training, as any rank runs it: returns the final parameters, flattened. */
    static double[] trainedParameters(ProcessGroup group) { return trainedParameters(group, dev.kiln.Device.CPU); }

    static double[] trainedParameters(ProcessGroup group, dev.kiln.Device device) {
        dev.kiln.Generator g = new dev.kiln.Generator(11 + group.rank());   // ranks start apart: the broadcast aligns them
        dev.kiln.nn.Sequential m = new dev.kiln.nn.Sequential(new dev.kiln.nn.Linear(5, 12, g), new dev.kiln.nn.ReLU(), new dev.kiln.nn.Linear(12, 3, g))
                .to(dev.kiln.DType.FLOAT64).to(device);
        DataParallel dp = DataParallel.of(m, group, 200);
        var opt = new dev.kiln.optim.SGD(m.parameters(), 0.2);
        try (var loader = shard(group, new int[]{64, 5}, dev.kiln.DType.FLOAT64, 5, 7, 3, 16)) {
            for (int epoch = 0; epoch < 8; epoch++) {   // 4 steps an epoch
                for (var b : loader) {
                    opt.zeroGrad();
                    dev.kiln.nn.F.crossEntropy(m.forward(b.inputs().to(device)), b.targets().to(device)).backward();
                    dp.finish();
                    opt.step();
                }
            }
        }
        System.out.println(bucketReport(dp));
        return m.parameters().stream().flatMapToDouble(p -> java.util.Arrays.stream(p.toDoubleArray())).toArray();
    }

    /** "reductions R buckets B flat F": F counts the buckets whose gradients all live in one storage (the bucket's). */
    static String bucketReport(DataParallel dp) {
        long flat = dp.buckets().stream().filter(b -> b.stream().allMatch(p -> p.grad() != null && p.grad().storage() == b.getFirst().grad().storage())).count();
        return "reductions " + dp.reductions() + " buckets " + dp.buckets().size() + " flat " + flat;
    }

    static void nccl(JobEnvironment job, String mode) throws Exception {
        dev.kiln.Device device = dev.kiln.Device.cuda(job.localRank());
        try (NcclProcessGroup group = NcclProcessGroup.connect(job, device, Duration.ofSeconds(60), Duration.ofSeconds(10))) {
            if (mode.equals("nccl-fail") || mode.equals("nccl-hang")) {
                if (job.rank() == 1 && mode.equals("nccl-fail")) Runtime.getRuntime().halt(3);
                if (job.rank() == 1) Thread.sleep(600_000);   // alive, but never reaches the collective: hung
                dev.kiln.Tensor t = dev.kiln.Tensor.ones(new int[]{1 << 20}, dev.kiln.DType.FLOAT32, device);
                for (int i = 0; i < 100_000; i++) {
                    group.allReduceSum(t);
                    t.sum().item();
                }
                return;
            }
            if (mode.equals("nccl-syncbn")) {
                double[] p = syncBatchNormParameters(group, device);
                double check = 0;
                for (int i = 0; i < p.length; i++) check += Math.abs(p[i]) * (1 + i % 7);
                System.out.println("checksum " + Double.doubleToLongBits(check) + " world " + job.worldSize());
                return;
            }
            if (mode.startsWith("nccl-adam") || mode.startsWith("nccl-graphed")) {
                dev.kiln.cuda.Cuda.setAllowTf32(device, false);  // one GPU and two must differ only in the sums' order
                double[] p = adamParameters(group, device, mode.startsWith("nccl-graphed"));
                double check = 0;
                for (int i = 0; i < p.length; i++) check += Math.abs(p[i]) * (1 + i % 7); // no cancellation
                System.out.println("checksum " + Double.doubleToLongBits(check) + " world " + job.worldSize());
                return;
            }
            double[] sum = trainedParameters(group, device);
            double check = 0;
            for (int i = 0; i < sum.length; i++) check += sum[i] * (i + 1);
            System.out.println("checksum " + Double.doubleToLongBits(check) + " world " + job.worldSize());
        }
    }

    /**
     * Data parallel's GPU side with every rank on the one GPU, the buckets reduced over TCP (NCCL takes one rank per
     * GPU): 20 SGD steps with momentum of a small channels-last convolutional net (global batch 16 of 64 synthetic
     * 3x12x12 images), in float32 or under bf16 autocast, with buckets that halve towards the end of backward.
     * Prints how far each parameter moved from rank 0's initial values (the sum of |p - p0|, one figure a parameter).
     */
    static void tcpGpu(JobEnvironment job, boolean bf16) throws Exception {
        dev.kiln.Device device = dev.kiln.Device.cuda(0);
        dev.kiln.cuda.Cuda.setAllowTf32(device, false);      // one rank and two must differ only in the sums' order
        dev.kiln.cuda.Cuda.setAllowTf32Conv(device, false);
        try (TcpProcessGroup group = TcpProcessGroup.connect(job, Duration.ofSeconds(60))) {
            dev.kiln.Generator g = new dev.kiln.Generator(41 + group.rank());
            dev.kiln.nn.Sequential m = new dev.kiln.nn.Sequential(new dev.kiln.nn.Conv2d(3, 16, 3, 1, 1, g), new dev.kiln.nn.ReLU(),
                    new dev.kiln.nn.Conv2d(16, 32, 3, 2, 1, g), new dev.kiln.nn.ReLU(), new dev.kiln.nn.AdaptiveAvgPool2d(1),
                    new dev.kiln.nn.Flatten(), new dev.kiln.nn.Linear(32, 64, g), new dev.kiln.nn.ReLU(), new dev.kiln.nn.Linear(64, 10, g)).to(device);
            m.channelsLast(true);
            DataParallel dp = DataParallel.of(m, group, 8192, 1024);   // 1 KB last, doubling up to 8 KB: several buckets
            if (dp.buckets().size() < 3) throw new IllegalStateException("expected several buckets, got " + dp.buckets().size());
            java.util.List<dev.kiln.Tensor> params = m.parameters();
            java.util.List<double[]> start = params.stream().map(dev.kiln.Tensor::toDoubleArray).toList();
            var opt = new dev.kiln.optim.SGD(params, 0.05, 0.9, 0, false);
            try (var loader = shard(group, new int[]{64, 3, 12, 12}, dev.kiln.DType.FLOAT32, 12, 7, 10, 16)) {
                for (int epoch = 0; epoch < 5; epoch++) {   // 4 steps an epoch
                    for (var b : loader) {
                        opt.zeroGrad();
                        dev.kiln.Tensor loss;
                        try (var ac = bf16 ? dev.kiln.autograd.Autocast.enable(dev.kiln.DType.BFLOAT16) : dev.kiln.autograd.Autocast.disabled()) {
                            loss = dev.kiln.nn.F.crossEntropy(m.forward(b.inputs().to(device)), b.targets().to(device));
                        }
                        loss.backward();
                        dp.finish();
                        opt.step();
                    }
                }
            }
            StringBuilder moves = new StringBuilder();
            for (int k = 0; k < params.size(); k++) {
                double[] now = params.get(k).toDoubleArray(), was = start.get(k);
                double d = 0;
                for (int i = 0; i < now.length; i++) d += Math.abs(now[i] - was[i]);
                moves.append(k == 0 ? "" : ",").append(Double.doubleToLongBits(d));
            }
            System.out.println("moves " + moves + " world " + job.worldSize());
        }
    }

    /** 50 float32 Adam steps (global batch 32 of 256 synthetic examples, split over the ranks), eager or graphed. */
    static double[] adamParameters(ProcessGroup group, dev.kiln.Device device, boolean graphed) {
        dev.kiln.Generator g = new dev.kiln.Generator(21 + group.rank());
        dev.kiln.nn.Sequential m = new dev.kiln.nn.Sequential(new dev.kiln.nn.Linear(20, 64, g), new dev.kiln.nn.ReLU(), new dev.kiln.nn.Linear(64, 64, g),
                new dev.kiln.nn.ReLU(), new dev.kiln.nn.Linear(64, 10, g)).to(device);
        DataParallel dp = DataParallel.of(m, group, 4096);   // several buckets
        var opt = new dev.kiln.optim.Adam(m.parameters(), 1e-2);
        int perRank = 32 / group.world();
        var loss = new dev.kiln.nn.CrossEntropyLoss();
        try (var loader = shard(group, new int[]{256, 20}, dev.kiln.DType.FLOAT32, 6, 13, 10, 32);
             var step = new dev.kiln.train.GraphedStep(m, loss, opt, new int[]{perRank, 20}, dev.kiln.DType.FLOAT32, new int[]{perRank},
                     dev.kiln.DType.INT64, device).dataParallel(dp)) {
            int steps = 0;
            while (steps < 50) {
                for (var b : loader) {
                    if (steps++ == 50) break;
                    try (var scope = dev.kiln.MemoryScope.open()) {
                        if (graphed) {
                            step.step(b.inputs().to(device), b.targets().to(device));
                        } else {
                            opt.zeroGrad();
                            loss.forward(m.forward(b.inputs().to(device)), b.targets().to(device)).backward();
                            dp.finish();
                            opt.step();
                        }
                    }
                }
            }
            if (graphed && !step.captured()) throw new IllegalStateException("the data-parallel step was never captured");
            System.out.println(bucketReport(dp));
        }
        return m.parameters().stream().flatMapToDouble(p -> java.util.Arrays.stream(p.toDoubleArray())).toArray();
    }

    static double[] syncBatchNormParameters(ProcessGroup group, dev.kiln.Device device) {
        dev.kiln.Generator g = new dev.kiln.Generator(31 + group.rank());
        dev.kiln.nn.Sequential m = new dev.kiln.nn.Sequential(new dev.kiln.nn.Linear(10, 16, g), new dev.kiln.nn.BatchNorm1d(16), new dev.kiln.nn.ReLU(),
                new dev.kiln.nn.Linear(16, 4, g)).to(dev.kiln.DType.FLOAT64).to(device);
        DataParallel dp = DataParallel.of(m, group, 1024);
        if (group.world() > 1) dp.syncBatchNorm();
        var opt = new dev.kiln.optim.SGD(m.parameters(), 0.1);
        try (var loader = shard(group, new int[]{64, 10}, dev.kiln.DType.FLOAT64, 9, 3, 4, 16)) {
            for (int epoch = 0; epoch < 5; epoch++) {   // 4 steps an epoch
                for (var b : loader) {
                    opt.zeroGrad();
                    dev.kiln.nn.F.crossEntropy(m.forward(b.inputs().to(device)), b.targets().to(device)).backward();
                    dp.finish();
                    opt.step();
                }
            }
        }
        return m.stateDict().entrySet().stream().filter(e -> !e.getKey().endsWith("num_batches_tracked"))
                .flatMapToDouble(e -> java.util.Arrays.stream(e.getValue().toDoubleArray())).toArray();
    }

    /**
     * This rank's loader over synthetic examples: inputs of {@code shape} (examples first) drawn from a generator seeded
     * {@code seed}, example i labelled (i * labelStride) % classes; the global batch split over the ranks, the order
     * seeded alike on every rank (as one process with the whole batch sees it).
     */
    static dev.kiln.data.DataLoader shard(ProcessGroup group, int[] shape, dev.kiln.DType dtype, long seed, int labelStride, int classes,
                                          int globalBatch) {
        int n = shape[0];
        dev.kiln.Tensor x = dev.kiln.Tensor.randn(new dev.kiln.Generator(seed), shape, dtype, dev.kiln.Device.CPU);
        long[] labels = new long[n];
        for (int i = 0; i < n; i++) labels[i] = (long) i * labelStride % classes;
        var data = new dev.kiln.data.TensorDataset(x, dev.kiln.Tensor.of(labels, n));
        int perRank = globalBatch / group.world();
        return dev.kiln.data.DataLoader.builder(dev.kiln.data.ShardedDataset.of(data, group.rank(), group.world(), perRank, 3)).batchSize(perRank).build();
    }
}
