package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.Settings;
import dev.kiln.dist.JobEnvironment;
import dev.kiln.dist.Launcher;
import dev.kiln.dist.NcclProcessGroup;
import dev.kiln.dist.ProcessGroup;
import dev.kiln.dist.TcpProcessGroup;
import dev.kiln.cuda.Cuda;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The command line's side of data parallel jobs: {@code --gpus N} starts the same command once per GPU through
 * {@code kiln launch}'s launcher on this host, and each of those processes joins the job's NCCL group on its own GPU.
 */
final class Ranks {
    private Ranks() {}

    /** How long a rank waits for the others to reach the rendezvous. */
    static final Duration RENDEZVOUS_TIMEOUT = Duration.ofSeconds(120);
    /** How long a rank whose peer died keeps going (to let its last lines out) before it exits. */
    static final Duration EXIT_AFTER_PEER_FAILED = Duration.ofSeconds(10);

    /** This process's job from the environment (torchrun's contract): a job of one when nothing is set. */
    static JobEnvironment job() { return JobEnvironment.from(System.getenv()); }

    /** This rank's device: {@code cuda:LOCAL_RANK}, or the CPU on a machine without a usable GPU. */
    static Device device(JobEnvironment job) { return Cuda.isAvailable() ? Device.cuda(job.localRank()) : Device.CPU; }

    /**
     * The job's process group: NCCL over the job's GPUs; on a machine without GPUs the CPU collectives over TCP (slow,
     * for trying a job out). A job of one process (no launcher, or a launcher's single rank) gets the group of one, or,
     * under kiln.dp.reduce.alone on a GPU, NCCL's communicator of one (what the data-parallel step itself costs).
     */
    static ProcessGroup group(JobEnvironment job) throws IOException {
        if (!job.distributed() && !Settings.get().dpReduceAlone()) return ProcessGroup.single();
        Device d = device(job);
        if (!d.isCuda()) return job.distributed() ? TcpProcessGroup.connect(job, RENDEZVOUS_TIMEOUT) : ProcessGroup.single();
        return NcclProcessGroup.connect(job, d, RENDEZVOUS_TIMEOUT, EXIT_AFTER_PEER_FAILED);
    }

    /**
     * Runs {@code kiln COMMAND ARGS} once per GPU on this host ({@code --gpus} and its value removed from args), the
     * ranks meeting on loopback; their output comes through {@code out} prefixed with the rank. Returns the job's
     * exit code (the first failed rank's).
     */
    static int launch(int gpus, String command, List<String> args, PrintWriter out) throws IOException, InterruptedException {
        // a rank past the last GPU would fail in its own process; NCCL takes one rank per GPU, so say it here, once
        int have = Cuda.deviceCount();
        if (have > 0 && gpus > have) {
            throw new IllegalArgumentException("--gpus " + gpus + ": this host has " + have + " CUDA GPU" + (have == 1 ? "" : "s")
                    + " (one process per GPU)");
        }
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<String> child = LaunchCommand.javaCommand();
        child.add(command);
        int at = args.indexOf(command); // picocli's original arguments may start with the command's name
        child.addAll(withoutOption(at >= 0 ? args.subList(at + 1, args.size()) : args, "--gpus"));
        Launcher launcher = new Launcher(gpus, 1, 0, "127.0.0.1", port, Launcher.newToken(), Duration.ofSeconds(30));
        return launcher.run(child, line -> {
            out.println(line);
            out.flush();
        });
    }

    /** args without {@code name VALUE} and {@code name=VALUE}. */
    static List<String> withoutOption(List<String> args, String name) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals(name)) i++;
            else if (!a.startsWith(name + "=")) out.add(a);
        }
        return out;
    }
}
