package dev.kiln.train;

import dev.kiln.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Stopping and resuming gives the uninterrupted run's parameters and optimizer state bit for bit, from any step
 * (mid-epoch and at an epoch's end); checkpoints every N steps keep the newest K; a non-finite loss stops or skips.
 */
class ResumeTest {
    @TempDir Path tmp;

    @Test void resumingFromAnyCheckpointEndsBitIdentical() throws IOException {
        resumesBitIdentical(OptimizerKind.ADAM, LrSchedule.COSINE);
        resumesBitIdentical(OptimizerKind.SGD, LrSchedule.COSINE);
    }

    /** The one-cycle rate moves every step: a resumed run must take up the rate of the step it resumes at. */
    @Test void aOneCycleRunResumesAtItsStepsRate() throws IOException {
        resumesBitIdentical(OptimizerKind.ADAM, LrSchedule.ONECYCLE);
    }

    private void resumesBitIdentical(OptimizerKind opt, LrSchedule schedule) throws IOException {
        Path data = TinyRuns.data(tmp.resolve("data"), 40, 10), straight = tmp.resolve("straight-" + opt + "-" + schedule);
        TinyRuns.run(TinyRuns.config(data, straight, opt, 2, opt.defaultLr(), schedule), new TrainRun.Checkpointing(1, 100, OnNan.STOP), null);
        List<Path> all = TrainCheckpoint.checkpoints(straight.resolve(TrainCheckpoint.DIR));
        assertEquals(10, all.size(), "5 steps an epoch, 2 epochs, one checkpoint a step: " + all);
        Path last = all.getLast();
        for (int k : new int[]{1, 4, 5, 7}) { // the first step, the last mid-epoch one, an epoch's end, mid-epoch 2
            Path resumed = tmp.resolve("resumed-" + opt + "-" + schedule + "-" + k);
            Files.createDirectories(resumed.resolve(TrainCheckpoint.DIR));
            Files.copy(all.get(k - 1), resumed.resolve(TrainCheckpoint.DIR).resolve(all.get(k - 1).getFileName()));
            TrainCheckpoint.Found found = TrainCheckpoint.find(resumed);
            java.io.StringWriter log = new java.io.StringWriter();
            TrainRun.Summary s = TinyRuns.run(TinyRuns.config(data, resumed, opt, 2, opt.defaultLr(), schedule), TrainRun.Checkpointing.DEFAULT, found, log);
            assertTrue(log.toString().contains("resuming from " + found.file() + ": epoch " + (k <= 5 ? 1 : 2) + ", step " + (k <= 5 ? k : k - 5) + " of 5"),
                    log.toString());
            TinyRuns.assertSameTensors(last, TinyRuns.newest(resumed));
            TinyRuns.assertSameTensors(straight.resolve("model.safetensors"), resumed.resolve("model.safetensors"));
            assertEquals(2, s.history().size());
        }
    }

    /** fp16 (autocast and loss scaling, on the CPU's general kernels): the scaler's scale and clean-step count come back too. */
    @Test void anFp16RunResumesWithItsLossScale() throws IOException {
        Path data = TinyRuns.data(tmp.resolve("data"), 40, 10), straight = tmp.resolve("straight");
        TrainConfig fp16 = new TrainConfig(ModelZoo.MLP, 1, 8, OptimizerKind.ADAM, 1e-3, 7, dev.kiln.Device.CPU, data, straight, 0, 0, Precision.FP16);
        TinyRuns.run(fp16, new TrainRun.Checkpointing(1, 100, OnNan.STOP), null);
        List<Path> all = TrainCheckpoint.checkpoints(straight.resolve(TrainCheckpoint.DIR));
        assertNotNull(Safetensors.read(all.get(2)).metadata().get("kiln.scaler.scale"));
        Path resumed = tmp.resolve("resumed");
        Files.createDirectories(resumed.resolve(TrainCheckpoint.DIR));
        Files.copy(all.get(2), resumed.resolve(TrainCheckpoint.DIR).resolve(all.get(2).getFileName()));
        TinyRuns.run(fp16.withOutDir(resumed), TrainRun.Checkpointing.DEFAULT, TrainCheckpoint.find(resumed));
        TinyRuns.assertSameTensors(all.getLast(), TinyRuns.newest(resumed));
        assertEquals(Safetensors.read(all.getLast()).metadata().get("kiln.scaler.scale"), Safetensors.read(TinyRuns.newest(resumed)).metadata().get("kiln.scaler.scale"));
    }

    /** The control: the same resume with the generator put back to its start draws other dropout masks, and ends elsewhere. */
    @Test void theGeneratorsStateMatters() throws IOException {
        Path data = TinyRuns.data(tmp.resolve("data"), 40, 10), straight = tmp.resolve("straight");
        TinyRuns.run(TinyRuns.config(data, straight, OptimizerKind.ADAM, 1, 1e-3), new TrainRun.Checkpointing(1, 100, OnNan.STOP), null);
        Path third = TrainCheckpoint.checkpoints(straight.resolve(TrainCheckpoint.DIR)).get(2), resumed = tmp.resolve("resumed");
        var c = Safetensors.read(third);
        var meta = new java.util.LinkedHashMap<>(c.metadata());
        meta.put("kiln.generator.counter", "0");
        Safetensors.write(resumed.resolve(TrainCheckpoint.DIR).resolve(third.getFileName()), c.tensors(), meta);
        TinyRuns.run(TinyRuns.config(data, resumed, OptimizerKind.ADAM, 1, 1e-3), TrainRun.Checkpointing.DEFAULT, TrainCheckpoint.find(resumed));
        assertThrows(AssertionError.class, () -> TinyRuns.assertSameTensors(TinyRuns.newest(straight), TinyRuns.newest(resumed)));
    }

    @Test void checkpointsHoldTheOptimizerStateAndTheNewestKAreKept() throws IOException {
        Path data = TinyRuns.data(tmp.resolve("data"), 40, 10), run = tmp.resolve("run");
        Files.createDirectories(run.resolve(TrainCheckpoint.DIR));
        Path torn = Files.writeString(run.resolve(TrainCheckpoint.DIR).resolve(".step-000000001.safetensors.123.tmp"), "half a file");
        TinyRuns.run(TinyRuns.config(data, run, OptimizerKind.ADAM, 1, 1e-3), new TrainRun.Checkpointing(2, 2, OnNan.STOP), null);
        assertFalse(Files.exists(torn), "a crashed write's temporary file is removed at the start");
        List<Path> kept = TrainCheckpoint.checkpoints(run.resolve(TrainCheckpoint.DIR));
        assertEquals(List.of("step-000000004.safetensors", "step-000000005.safetensors"), kept.stream().map(p -> p.getFileName().toString()).toList());
        var c = Safetensors.read(kept.getLast());
        assertTrue(c.tensors().containsKey("0.weight") || c.tensors().keySet().stream().anyMatch(k -> k.endsWith(".weight") && !k.startsWith("optimizer.")));
        assertTrue(c.tensors().keySet().stream().anyMatch(k -> k.startsWith("optimizer.") && k.endsWith(".exp_avg_sq")), c.tensors().keySet().toString());
        assertEquals("5", c.metadata().get("kiln.step"));
        assertEquals("5", c.metadata().get(c.metadata().keySet().stream().filter(k -> k.startsWith("optimizer.") && k.endsWith(".step")).findFirst().orElseThrow()));
        assertEquals("mlp", c.metadata().get("kiln.config.model"));
        assertNotNull(c.metadata().get("kiln.generator.counter"));
        // the model loads from it as from model.safetensors (the optimizer's tensors are left aside)
        assertEquals(ModelZoo.MLP, TrainRun.loadCheckpoint(kept.getLast(), null).kind());
    }

    @Test void aNonFiniteLossStopsNamingTheStepOrIsSkipped() throws IOException {
        Path data = TinyRuns.data(tmp.resolve("data"), 40, 10);
        TrainConfig diverging = TinyRuns.config(data, tmp.resolve("stop"), OptimizerKind.SGD, 1, 1e30);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TinyRuns.run(diverging, new TrainRun.Checkpointing(1, 3, OnNan.STOP), null));
        assertTrue(e.getMessage().matches("training stopped at step \\d+ of epoch 1 \\(global step \\d+\\): the (loss is (NaN|Infinity)|parameter \\S+ is not finite).*"),
                e.getMessage());
        for (Path f : TrainCheckpoint.checkpoints(tmp.resolve("stop").resolve(TrainCheckpoint.DIR))) {
            for (var t : Safetensors.read(f).tensors().values()) {
                for (float x : t.toFloatArray()) assertTrue(Float.isFinite(x), f + " is a good checkpoint");
            }
        }
        TrainRun.Summary s = TinyRuns.run(diverging.withOutDir(tmp.resolve("skip")), new TrainRun.Checkpointing(0, 3, OnNan.SKIP), null);
        assertFalse(s.json().contains("NaN") || s.json().contains("Infinity"), s.json());
    }

    /** --augment changes the result, so a resumed run keeps it; its transform crops and mirrors to the image's own size. */
    @Test void augmentationIsKeptByAResumeAndKeepsTheImageSize() {
        Path p = Path.of("data");
        TrainConfig cfg = new TrainConfig(ModelZoo.CNN, 2, 8, OptimizerKind.ADAM, 1e-3, 7, dev.kiln.Device.CPU, p, p, 0, 0, Precision.FP32,
                false, LrSchedule.CONSTANT, false, true);
        assertTrue(TrainCheckpoint.config(TrainCheckpoint.configMeta(cfg), p, null, null, null, false).augment());
        TrainConfig plain = new TrainConfig(ModelZoo.CNN, 2, 8, OptimizerKind.ADAM, 1e-3, 7, dev.kiln.Device.CPU, p, p, 0, 0);
        assertFalse(TrainCheckpoint.config(TrainCheckpoint.configMeta(plain), p, null, null, null, false).augment());
        dev.kiln.Tensor batch = dev.kiln.Tensor.randn(new dev.kiln.Generator(3), 4, 1, 28, 28);
        var t = TrainRun.augmentation(cfg, new int[]{1, 28, 28});
        assertArrayEquals(batch.shape(), t.apply(batch, new java.util.SplittableRandom(1)).shape());
        assertNull(TrainRun.augmentation(plain, new int[]{1, 28, 28}));
    }
}
