package dev.kiln.dist;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;

/**
 * A rank of a launched test job: meets the others through the rendezvous, prints rank 0's payload, then per mode:
 * {@code ok} ends normally; {@code fail} (rank 1 exits 3; the others exit 5 when told, naming it); {@code hang} (rank 1
 * exits 3; the others ignore it and sleep, for the launcher to kill).
 */
public final class LaunchChild {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
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
}
