package dev.kiln.cuda;

import dev.kiln.dist.LaunchChildren;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Data parallel over NCCL with two real processes (kiln launch's Launcher, one per GPU): two ranks with half the batch
 * end where one GPU with the whole batch does (float64, relative 1e-9 on a parameter checksum), and a rank that dies
 * makes the other abort and exit, the launcher naming it. Needs two GPUs and libnccl; skips otherwise.
 */
class DataParallelGpuTest {
    @BeforeAll static void requireTwoGpus() {
        GpuTests.requireGpu(DataParallelGpuTest.class);
        Assumptions.assumeTrue(Cuda.devices().size() >= 2, "needs 2 GPUs");
        Assumptions.assumeTrue(Nccl.available(), "libnccl not found");
    }

    @Test void twoGpusTrainAsOne() throws Exception {
        int[] code = new int[1];
        String two = LaunchChildren.run(2, "nccl-train", 60, code);
        assertEquals(0, code[0], two);
        String one = LaunchChildren.run(1, "nccl-train", 60, code);
        assertEquals(0, code[0], one);
        double a0 = LaunchChildren.checksum(two, 0), a1 = LaunchChildren.checksum(two, 1), b = LaunchChildren.checksum(one, 0);
        assertEquals(a0, a1, 0, "both ranks hold the same parameters:\n" + two);
        assertEquals(b, a0, 1e-9 * Math.abs(b), "two GPUs with half the batch end where one GPU with the whole batch does");
    }

    /** The check: 50 float32 Adam steps, eager and as one captured CUDA graph, within 1e-4 relative of one GPU (a sum of |parameter| weights). */
    @Test void fiftyAdamStepsOnTwoGpusMatchOneEagerAndGraphed() throws Exception {
        int[] code = new int[1];
        String one = LaunchChildren.run(1, "nccl-adam", 60, code);
        assertEquals(0, code[0], one);
        double b = LaunchChildren.checksum(one, 0);
        for (String mode : new String[]{"nccl-adam", "nccl-graphed"}) {
            String two = LaunchChildren.run(2, mode, 60, code);
            assertEquals(0, code[0], two);
            double a0 = LaunchChildren.checksum(two, 0), a1 = LaunchChildren.checksum(two, 1);
            assertEquals(a0, a1, 0, mode + ": both ranks hold the same parameters:\n" + two);
            System.out.printf("[dp] %s: two GPUs %.9g, one GPU %.9g, relative difference %.2e%n", mode, a0, b, Math.abs(a0 - b) / Math.abs(b));
            assertEquals(b, a0, 1e-4 * Math.abs(b), mode + ": two GPUs with half the batch end where one GPU with the whole batch does");
        }
    }

    /** Synchronised batch norm over NCCL: two ranks with half the batch = one GPU's plain batch norm on the whole (float64). */
    @Test void syncBatchNormOnTwoGpusIsBatchNormOnOne() throws Exception {
        int[] code = new int[1];
        String one = LaunchChildren.run(1, "nccl-syncbn", 60, code);
        assertEquals(0, code[0], one);
        String two = LaunchChildren.run(2, "nccl-syncbn", 60, code);
        assertEquals(0, code[0], two);
        double b = LaunchChildren.checksum(one, 0), a0 = LaunchChildren.checksum(two, 0), a1 = LaunchChildren.checksum(two, 1);
        assertEquals(a0, a1, 1e-12 * Math.abs(b), "both ranks hold the same parameters and running statistics");
        System.out.printf("[dp] nccl-syncbn: two GPUs %.12g, one GPU %.12g, relative difference %.2e%n", a0, b, Math.abs(a0 - b) / Math.abs(b));
        assertEquals(b, a0, 1e-9 * Math.abs(b));
    }

    /**
     * The same checks on every GPU the machine has, when it has more than two (the 4- and 8-GPU machines): float64 SGD
     * within 1e-9, 50 float32 Adam steps as one captured graph within 1e-4, synchronised batch norm within 1e-9.
     */
    @Test void everyGpuTrainsAsOne() throws Exception {
        int n = Cuda.devices().size();
        Assumptions.assumeTrue(n > 2, "needs more than 2 GPUs");
        int[] code = new int[1];
        for (String mode : new String[]{"nccl-train", "nccl-graphed", "nccl-syncbn"}) {
            String one = LaunchChildren.run(1, mode, 60, code);
            assertEquals(0, code[0], one);
            String all = LaunchChildren.run(n, mode, 60, code);
            assertEquals(0, code[0], all);
            double b = LaunchChildren.checksum(one, 0), a0 = LaunchChildren.checksum(all, 0);
            for (int r = 1; r < n; r++) assertEquals(a0, LaunchChildren.checksum(all, r), 1e-12 * Math.abs(b), mode + ": rank " + r + " holds rank 0's parameters");
            double tolerance = mode.equals("nccl-graphed") ? 1e-4 : 1e-9;
            System.out.printf("[dp] %s: %d GPUs %.12g, one GPU %.12g, relative difference %.2e%n", mode, n, a0, b, Math.abs(a0 - b) / Math.abs(b));
            assertEquals(b, a0, tolerance * Math.abs(b), mode + ": " + n + " GPUs with 1/" + n + " of the batch end where one GPU with the whole batch does");
        }
    }

    @Test void aHungRankIsNamedAndTheJobEnds() throws Exception {
        int[] code = new int[1];
        long t0 = System.nanoTime();
        String out = LaunchChildren.run(2, "nccl-hang", 5, code);
        assertNotEquals(0, code[0], out);
        assertTrue(out.contains("[rank 0] kiln: rank 0: rank 1 failed"), out);
        assertTrue(System.nanoTime() - t0 < 90_000_000_000L, "ended within the timeout, the exit delay and the grace");
    }

    @Test void aDeadRankEndsTheJob() throws Exception {
        int[] code = new int[1];
        long t0 = System.nanoTime();
        String out = LaunchChildren.run(2, "nccl-fail", 60, code);
        assertEquals(3, code[0], out);
        assertTrue(out.contains("rank 1 exited with code 3"), out);
        assertTrue(out.contains("[rank 0] kiln: rank 0: rank 1 failed"), out);
        assertTrue(System.nanoTime() - t0 < 60_000_000_000L, "ended within the timeout");
    }
}
