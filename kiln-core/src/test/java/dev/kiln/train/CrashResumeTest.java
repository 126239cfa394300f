package dev.kiln.train;

import dev.kiln.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Crash consistency: a tiny run in a child JVM, checkpointing every step, is killed with SIGKILL at random moments
 * (12 times; every other one while a checkpoint file is being written) and resumed each time. After every kill each checkpoint, model and
 * metrics file on disk under its final name reads whole; at the end the parameters and optimizer state equal an
 * uninterrupted run's bit for bit.
 */
class CrashResumeTest {
    static final TrainRun.Checkpointing CHECKPOINTING = new TrainRun.Checkpointing(1, Integer.getInteger("crash.keep", 3), OnNan.STOP);
    private static final int KILLS = 12;

    @TempDir Path tmp;

    /**
     * 3 epochs of 8 steps (64 images, batch 8), Adam, cosine schedule, the MLP with dropout: on the CPU in float32, or
     * on {@code cuda:0} in bf16 with the step captured as a CUDA graph (the GPU variant, deterministic mode).
     */
    static TrainConfig config(Path data, Path out, boolean gpu) {
        return new TrainConfig(ModelZoo.MLP, 3, 8, OptimizerKind.ADAM, 1e-3, 11, gpu ? dev.kiln.Device.cuda(0) : dev.kiln.Device.CPU, data, out, 0, 0,
                gpu ? Precision.BF16 : Precision.FP32, gpu, LrSchedule.COSINE);
    }

    @Test void killedAtRandomAndResumedEndsBitIdentical() throws Exception { crashAndResume(tmp, false); }

    /** The kill-and-resume loop of the CPU test and its GPU variant ({@code CrashResumeGpuTest}). */
    static void crashAndResume(Path tmp, boolean gpu) throws Exception {
        Path data = TinyRuns.data(tmp.resolve("data"), 64, 10), reference = tmp.resolve("reference"), crashed = tmp.resolve("crashed");
        assertEquals(0, child(data, reference, gpu).waitFor(), "the uninterrupted run");
        long seed = System.nanoTime();
        Random rng = new Random(seed);
        int killedAlive = 0, duringWrite = 0;
        for (int k = 0; k < KILLS; k++) {
            Process p = child(data, crashed, gpu);
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String first = out.readLine(); // "training" once it trains, or "done" when it had nothing left to do
            if (k % 2 == 0) Thread.sleep(rng.nextInt(120));
            else awaitWrite(crashed, p, rng.nextInt(3));   // every other kill inside a checkpoint write
            if (p.isAlive()) killedAlive++;
            p.destroyForcibly().waitFor();
            if (hasTemporaries(crashed)) duringWrite++;
            assertEverythingReads(crashed, "kill " + (k + 1) + " (seed " + seed + ", child said " + first + ")");
        }
        Process last = child(data, crashed, gpu);
        assertEquals(0, last.waitFor(), "the last resume finishes");
        assertTrue(killedAlive >= 10, "killed while running: " + killedAlive + " of " + KILLS + " (seed " + seed + ")");
        System.out.printf("CrashResumeTest" + (gpu ? " (cuda:0, bf16, graphed, deterministic)" : "") + ": %d kills while running, %d left a half-written temporary file (seed %d)%n", killedAlive, duringWrite, seed);
        TinyRuns.assertSameTensors(TinyRuns.newest(reference), TinyRuns.newest(crashed));
        TinyRuns.assertSameTensors(reference.resolve("model.safetensors"), crashed.resolve("model.safetensors"));
        assertEquals(Files.readAllLines(reference.resolve("metrics.csv")).size(), Files.readAllLines(crashed.resolve("metrics.csv")).size());
    }

    /** The child JVM: this one's java, class path and flags. */
    private static Process child(Path data, Path run, boolean gpu) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1",
                "-cp", System.getProperty("kiln.test.classpath", System.getProperty("java.class.path")), CrashChild.class.getName(),
                data.toString(), run.toString(), gpu ? "gpu" : "cpu"));
        return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    }

    /** Waits (at most 3 s) until the child is writing a file for the (skip+1)-th time seen, or has exited. */
    private static void awaitWrite(Path run, Process p, int skip) throws IOException, InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
        boolean wasWriting = false;
        while (p.isAlive() && System.nanoTime() < end) {
            boolean writing = hasTemporaries(run);
            if (writing && !wasWriting && skip-- == 0) return;
            wasWriting = writing;
            Thread.onSpinWait();
        }
    }

    private static boolean hasTemporaries(Path run) throws IOException {
        for (Path dir : List.of(run, run.resolve(TrainCheckpoint.DIR))) {
            if (!Files.isDirectory(dir)) continue;
            try (DirectoryStream<Path> tmp = Files.newDirectoryStream(dir, ".*.tmp")) {
                if (tmp.iterator().hasNext()) return true;
            }
        }
        return false;
    }

    /** Every file under its final name reads whole: the checkpoints, model.safetensors and metrics.csv. */
    private static void assertEverythingReads(Path run, String when) throws IOException {
        for (Path f : TrainCheckpoint.checkpoints(run.resolve(TrainCheckpoint.DIR))) {
            try {
                Safetensors.Contents c = Safetensors.read(f);
                assertNotNull(c.metadata().get("kiln.step"), f + " is a training checkpoint");
            } catch (IOException torn) {
                fail("after " + when + ": " + f + " does not read: " + torn.getMessage());
            }
        }
        Path model = run.resolve("model.safetensors");
        if (Files.exists(model)) assertDoesNotThrow(() -> Safetensors.read(model), "after " + when + ": " + model);
        Path metrics = run.resolve("metrics.csv");
        if (Files.exists(metrics)) {
            for (String line : Files.readAllLines(metrics).subList(1, Files.readAllLines(metrics).size())) {
                assertEquals(6, line.split(",").length, "after " + when + ": a whole line of " + metrics + ": " + line);
            }
        }
    }
}
