package dev.kiln.dist;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Starts one process per local rank of a job, as torchrun does: each gets {@code RANK}, {@code LOCAL_RANK},
 * {@code WORLD_SIZE}, {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}, the job token
 * ({@code KILN_JOB_TOKEN}) and {@code NCCL_NVLS_ENABLE=0} (NVLink multicast stays off in every process Kiln starts).
 * Each output line is prefixed with its rank. When a rank exits with an error the others get {@code grace} to end
 * (their rendezvous session tells them), then are killed; the launcher returns that rank's exit code. A launcher
 * that is itself stopped takes its children with it.
 *
 * @param nprocPerNode processes on this host
 * @param nnodes       hosts in the job
 * @param nodeRank     this host's index, 0 for the one whose first process is rank 0
 * @param masterAddr   rank 0's host, as the other hosts reach it
 * @param masterPort   rank 0's rendezvous port
 * @param token        the job's secret; every host of a job must use the same
 * @param grace        how long the other ranks have to end after one failed
 */
public record Launcher(int nprocPerNode, int nnodes, int nodeRank, String masterAddr, int masterPort, String token, Duration grace) {
    public Launcher {
        if (nprocPerNode < 1) throw new IllegalArgumentException("--nproc-per-node must be >= 1, got " + nprocPerNode);
        if (nnodes < 1) throw new IllegalArgumentException("--nnodes must be >= 1, got " + nnodes);
        if (nodeRank < 0 || nodeRank >= nnodes) throw new IllegalArgumentException("--node-rank " + nodeRank + " is outside 0.." + (nnodes - 1));
        if (masterPort < 1 || masterPort > 65535) throw new IllegalArgumentException("--master-port must be a port number (1-65535), got " + masterPort);
        if (token == null || token.isBlank() || token.contains(" ")) throw new IllegalArgumentException("the job token must be a non-empty word");
    }

    /** A fresh random job token (hex), for a job whose hosts are started together. */
    public static String newToken() {
        byte[] b = new byte[16];
        new SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    public int worldSize() { return nprocPerNode * nnodes; }

    /** The environment of local rank {@code local}. */
    public Map<String, String> environment(int local) {
        return Map.of("RANK", String.valueOf(nodeRank * nprocPerNode + local), "LOCAL_RANK", String.valueOf(local),
                "WORLD_SIZE", String.valueOf(worldSize()), "LOCAL_WORLD_SIZE", String.valueOf(nprocPerNode), "MASTER_ADDR", masterAddr,
                "MASTER_PORT", String.valueOf(masterPort), "KILN_JOB_TOKEN", token, "NCCL_NVLS_ENABLE", "0");
    }

    /**
     * Runs {@code command} once per local rank and waits for them all: 0 when every rank exits 0, else the exit code
     * of the first rank that failed (after a line naming it). Every line (the ranks' output, prefixed, and the launcher's own)
     * goes to {@code out}, one call per line, all before this returns.
     */
    public int run(List<String> command, Consumer<String> out) throws IOException, InterruptedException {
        List<Process> procs = new ArrayList<>();
        List<Thread> pumps = new ArrayList<>();
        Thread reaper = new Thread(() -> procs.forEach(Launcher::killTree), "kiln-launch-reaper");
        Runtime.getRuntime().addShutdownHook(reaper);
        try {
            for (int local = 0; local < nprocPerNode; local++) {
                ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
                pb.environment().putAll(environment(local));
                Process p = pb.start();
                procs.add(p);
                pumps.add(pump(p.getInputStream(), "[rank " + (nodeRank * nprocPerNode + local) + "] ", out));
            }
            int code = await(procs, out);
            // the ranks' last lines reach `out` before run returns (a caller reading it then saw a rank's output
            // missing); anything still holding a rank's output open is ended first, so this wait is short
            procs.forEach(Launcher::killTree);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            for (Thread t : pumps) t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            return code;
        } finally {
            procs.forEach(Launcher::killTree);
            try {
                Runtime.getRuntime().removeShutdownHook(reaper);
            } catch (IllegalStateException ignored) {
                // the JVM is already shutting down: the hook runs
            }
        }
    }

    private int await(List<Process> procs, Consumer<String> out) throws InterruptedException {
        // in the order they end: the rank that failed first is the one to name (the others often fail because of it)
        java.util.concurrent.BlockingQueue<Process> ended = new java.util.concurrent.LinkedBlockingQueue<>();
        for (Process p : procs) p.onExit().thenAccept(ended::add);
        List<Process> running = new ArrayList<>(procs);
        while (!running.isEmpty()) {
            Process p = ended.take();
            running.remove(p);
            if (p.exitValue() == 0) continue;
            int rank = nodeRank * nprocPerNode + procs.indexOf(p);
            say(out, "kiln launch: rank " + rank + " exited with code " + p.exitValue() + "; stopping the other ranks");
            long deadline = System.nanoTime() + grace.toNanos();
            for (Process q : running) q.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            for (Process q : running) {
                if (q.isAlive()) {
                    say(out, "kiln launch: rank " + (nodeRank * nprocPerNode + procs.indexOf(q)) + " did not end within "
                            + grace.toSeconds() + " s; killed");
                    killTree(q);
                    q.waitFor();
                }
            }
            return p.exitValue();
        }
        return 0;
    }

    private static void killTree(Process p) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
    }

    private static void say(Consumer<String> out, String line) {
        synchronized (out) {
            out.accept(line);
        }
    }

    private static Thread pump(InputStream in, String prefix, Consumer<String> out) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    say(out, prefix + line);
                }
            } catch (IOException ignored) {
                // the process ended
            }
        }, "kiln-launch-output");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
