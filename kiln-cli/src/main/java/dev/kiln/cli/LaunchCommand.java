package dev.kiln.cli;

import dev.kiln.dist.Launcher;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "launch", mixinStandardHelpOptions = true,
        description = {"Starts one kiln process per GPU with torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, "
                + "MASTER_PORT), e.g. kiln launch --nproc-per-node 2 -- bench ...",
                "Several hosts: the same command on each with --nnodes, its --node-rank, rank 0's --master-addr and --master-port, "
                        + "and one --token (or KILN_JOB_TOKEN) for the job."})
final class LaunchCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--nproc-per-node", required = true, description = "processes on this host (one per GPU)")
    int nprocPerNode;

    @Option(names = "--nnodes", defaultValue = "1", description = "hosts in the job (default 1)")
    int nnodes;

    @Option(names = "--node-rank", defaultValue = "0", description = "this host's index; 0 runs rank 0 (default 0)")
    int nodeRank;

    @Option(names = "--master-addr", defaultValue = "127.0.0.1", description = "rank 0's host as the others reach it; its rendezvous "
            + "binds there (default 127.0.0.1: one host, loopback only)")
    String masterAddr;

    @Option(names = "--master-port", defaultValue = "29500", description = "rank 0's rendezvous port (default 29500)")
    int masterPort;

    @Option(names = "--token", description = "the job's secret, the same on every host (default: KILN_JOB_TOKEN, or a fresh one for one host)")
    String token;

    @Option(names = "--grace", defaultValue = "30", description = "seconds the other ranks have to end after one failed, before they are killed (default 30)")
    int grace;

    @Parameters(arity = "1..*", paramLabel = "COMMAND", description = "the kiln command each process runs, after --")
    List<String> command;

    /** This JVM's java, flags and classpath running kiln's Main: the start of every rank's command line. */
    static List<String> javaCommand() {
        return new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"), "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
    }

    @Override public Integer call() throws Exception {
        String t = token != null ? token : System.getenv("KILN_JOB_TOKEN");
        if (t == null) {
            if (nnodes > 1) throw new ParameterException(spec.commandLine(), "a job of several hosts needs the same --token on each (or KILN_JOB_TOKEN)");
            t = Launcher.newToken();
        }
        Launcher launcher = new Launcher(nprocPerNode, nnodes, nodeRank, masterAddr, masterPort, t, Duration.ofSeconds(grace));
        List<String> child = javaCommand();
        child.addAll(command);
        var out = spec.commandLine().getOut();
        return launcher.run(child, line -> {
            out.println(line);
            out.flush();
        });
    }
}
