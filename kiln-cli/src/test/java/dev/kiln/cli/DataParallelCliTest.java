package dev.kiln.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.kiln.cli.MainTest.assertOneLineError;
import static dev.kiln.cli.MainTest.kiln;
import static org.junit.jupiter.api.Assertions.*;

/**
 * kiln train as the ranks of a data-parallel job, on the CPU (the ranks meet over TCP where there is no GPU; the GPU
 * machine runs the NCCL path in DataParallelGpuTest): two launched ranks train one model and rank 0 alone writes it.
 */
class DataParallelCliTest {
    @TempDir Path dir;

    @Test void twoRanksTrainOneModelAndRankZeroWritesIt() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 64, 16), run = dir.resolve("run");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        MainTest.Run r = kiln("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(port), "--", "train", "--model", "mlp",
                "--batch-size", "8", "--epochs", "2", "--data", data.toString(), "--out", run.toString(), "--json");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("[rank 0] kiln: training mlp") && r.out().contains("2 ranks (CPU)") && r.out().contains("batch 16 (8 per rank)"), r.out());
        assertTrue(r.out().contains("[rank 0] epoch 2/2"), r.out());
        assertFalse(r.out().contains("[rank 1] epoch"), "rank 1 reports nothing:\n" + r.out());
        assertTrue(Files.isRegularFile(run.resolve("model.safetensors")), "rank 0 wrote the model");
        assertTrue(r.out().contains("[rank 0] {\"model\":\"mlp\""), "rank 0's --json summary:\n" + r.out());
    }

    @Test void aLanguageModelTrainsOnTwoRanks() throws Exception {
        Path text = Files.writeString(dir.resolve("t.txt"), "hello world, hello kiln. ".repeat(80)), run = dir.resolve("lm");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        MainTest.Run r = kiln("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(port), "--", "train", "--model", "lstm",
                "--data", text.toString(), "--context", "16", "--layers", "1", "--dim", "32", "--batch-size", "4", "--steps", "3", "--epochs", "1",
                "--out", run.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("on 2 ranks") && r.out().contains("3 steps per epoch"), r.out());
        assertTrue(Files.isRegularFile(run.resolve("model.safetensors")), "rank 0 wrote the model");
    }

    @Test void twoRanksResumeARunOfTwoRanks() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 64, 16), run = dir.resolve("run");
        String port = Integer.toString(freePort());
        MainTest.Run first = kiln("launch", "--nproc-per-node", "2", "--master-port", port, "--", "train", "--model", "mlp", "--batch-size", "8",
                "--epochs", "1", "--data", data.toString(), "--out", run.toString());
        assertEquals(0, first.code(), first.toString());
        MainTest.Run resumed = kiln("launch", "--nproc-per-node", "2", "--master-port", Integer.toString(freePort()), "--", "train", "--resume",
                run.toString(), "--epochs", "2");
        assertEquals(0, resumed.code(), resumed.toString());
        assertTrue(resumed.out().contains("[rank 0] kiln: resuming from") && resumed.out().contains("[rank 0] epoch 2/2"), resumed.out());
        MainTest.Run alone = kiln("train", "--resume", run.toString(), "--epochs", "3", "--device", "cpu");
        assertNotEquals(0, alone.code(), "a run of two ranks does not resume as one: its steps per epoch differ");
        assertTrue(alone.err().contains("batches per epoch"), alone.err());
    }

    private static int freePort() throws java.io.IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test void gpusLaunchesTheSameCommandPerRank() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 32, 16), run = dir.resolve("one");
        MainTest.Run r = kiln("train", "--gpus", "1", "--model", "mlp", "--batch-size", "8", "--epochs", "1", "--data", data.toString(),
                "--out", run.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("[rank 0] epoch 1/1"), r.out());
        assertTrue(Files.isRegularFile(run.resolve("model.safetensors")));
        assertOneLineError(kiln("train", "--gpus", "0"), "--gpus must be >= 1");
        assertOneLineError(kiln("train", "--gpus", "2", "--device", "cpu"), "leave out --device");
    }

    @Test void theLaunchedCommandLosesOnlyGpus() {
        assertEquals(List.of("--model", "mlp", "--epochs", "1"), Ranks.withoutOption(List.of("--gpus", "2", "--model", "mlp", "--gpus=3", "--epochs", "1"), "--gpus"));
    }
}
