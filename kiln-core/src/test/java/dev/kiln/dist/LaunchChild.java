package dev.kiln.dist;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;

/**
 * A rank of a launched test job: meets the others through the rendezvous, prints rank 0's payload, then per mode:
 * {@code ok} ends normally; {@code fail} (rank 1 exits 3; the others exit 5 when told, naming it); {@code hang} (rank 1
 * exits 3; the others ignore it and sleep, for the launcher to kill); {@code train} trains the test MLP data-parallel over
 * TCP on its shard and prints a checksum of its parameters; {@code nccl-train} the same over NCCL on cuda:LOCAL_RANK;
 * {@code nccl-fail}: rank 1 exits after the communicator is made, rank 0 keeps all-reducing until the abort ends it.
 */
public final class LaunchChild {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        if (mode.equals("train")) {
            train(JobEnvironment.from(System.getenv()));
            return;
        }
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
        dev.kiln.Tensor x = dev.kiln.Tensor.randn(new dev.kiln.Generator(5), new int[]{64, 5}, dev.kiln.DType.FLOAT64, dev.kiln.Device.CPU);
        long[] labels = new long[64];
        for (int i = 0; i < 64; i++) labels[i] = (i * 7) % 3;
        var data = new dev.kiln.data.TensorDataset(x, dev.kiln.Tensor.of(labels, 64));
        int perRank = 16 / group.world();
        try (var loader = dev.kiln.data.DataLoader.builder(dev.kiln.data.ShardedDataset.of(data, group.rank(), group.world(), perRank, 3))
                .batchSize(perRank).build()) {
            for (int epoch = 0; epoch < 8; epoch++) {   // 4 steps an epoch
                for (var b : loader) {
                    opt.zeroGrad();
                    dev.kiln.nn.F.crossEntropy(m.forward(b.inputs().to(device)), b.targets().to(device)).backward();
                    dp.finish();
                    opt.step();
                }
            }
        }
        return m.parameters().stream().flatMapToDouble(p -> java.util.Arrays.stream(p.toDoubleArray())).toArray();
    }

    static void nccl(JobEnvironment job, String mode) throws Exception {
        dev.kiln.Device device = dev.kiln.Device.cuda(job.localRank());
        try (NcclProcessGroup group = NcclProcessGroup.connect(job, device, Duration.ofSeconds(60), Duration.ofSeconds(10))) {
            if (mode.equals("nccl-fail")) {
                if (job.rank() == 1) Runtime.getRuntime().halt(3);
                dev.kiln.Tensor t = dev.kiln.Tensor.ones(new int[]{1 << 20}, dev.kiln.DType.FLOAT32, device);
                for (int i = 0; i < 100_000; i++) {
                    group.allReduceSum(t);
                    t.sum().item();
                }
                return;
            }
            double[] sum = trainedParameters(group, device);
            double check = 0;
            for (int i = 0; i < sum.length; i++) check += sum[i] * (i + 1);
            System.out.println("checksum " + Double.doubleToLongBits(check) + " world " + job.worldSize());
        }
    }
}
