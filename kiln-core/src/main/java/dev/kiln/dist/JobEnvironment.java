package dev.kiln.dist;

import java.net.InetSocketAddress;
import java.util.Map;

/**
 * Where this process stands in a multi-process job, by torchrun's environment contract ({@code RANK},
 * {@code LOCAL_RANK}, {@code WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}), so any launcher that sets it works;
 * {@code KILN_JOB_TOKEN} (set by {@code kiln launch}) is the secret the rendezvous checks. Without {@code WORLD_SIZE}
 * the process is a job of one.
 */
public record JobEnvironment(int rank, int localRank, int worldSize, String masterAddr, int masterPort, String token) {
    /** The token a job runs with when its launcher set none (any local process could then join: set one). */
    public static final String DEFAULT_TOKEN = "kiln-unset-token";

    public JobEnvironment {
        if (worldSize < 1) throw new IllegalArgumentException("WORLD_SIZE must be >= 1, got " + worldSize);
        if (rank < 0 || rank >= worldSize) throw new IllegalArgumentException("RANK " + rank + " is outside 0.." + (worldSize - 1) + " (WORLD_SIZE " + worldSize + ")");
        if (localRank < 0) throw new IllegalArgumentException("LOCAL_RANK must be >= 0, got " + localRank);
        if (worldSize > 1 && (masterPort < 1 || masterPort > 65535)) throw new IllegalArgumentException("MASTER_PORT must be a port number (1-65535), got " + masterPort);
    }

    /** This process's job from the environment; one clear line naming a variable that is missing or wrong. */
    public static JobEnvironment from(Map<String, String> env) {
        if (env.get("WORLD_SIZE") == null) return new JobEnvironment(0, 0, 1, "127.0.0.1", 0, DEFAULT_TOKEN);
        int world = number(env, "WORLD_SIZE");
        int rank = number(env, "RANK");
        int local = env.get("LOCAL_RANK") == null ? rank : number(env, "LOCAL_RANK");
        String addr = env.getOrDefault("MASTER_ADDR", "127.0.0.1");
        int port = world > 1 ? number(env, "MASTER_PORT") : 0;
        String token = env.getOrDefault("KILN_JOB_TOKEN", DEFAULT_TOKEN);
        return new JobEnvironment(rank, local, world, addr, port, token);
    }

    private static int number(Map<String, String> env, String name) {
        String v = env.get(name);
        if (v == null) throw new IllegalArgumentException(name + " is not set (a multi-process job needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)");
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " is '" + v + "', not a whole number");
        }
    }

    /** Rank 0's rendezvous address. */
    public InetSocketAddress master() { return new InetSocketAddress(masterAddr, masterPort); }

    public boolean distributed() { return worldSize > 1; }
}
