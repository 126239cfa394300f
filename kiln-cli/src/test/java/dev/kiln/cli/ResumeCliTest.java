package dev.kiln.cli;

import dev.kiln.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static dev.kiln.cli.MainTest.assertOneLineError;
import static dev.kiln.cli.MainTest.kiln;
import static org.junit.jupiter.api.Assertions.*;

/** kiln train --resume, --checkpoint-every, --keep and --on-nan from the command line. */
class ResumeCliTest {
    @TempDir Path dir;

    @Test void aRunGoesOnFromItsFolder() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 48, 16), run = dir.resolve("run"), straight = dir.resolve("straight");
        String[] common = {"--model", "mlp", "--batch-size", "16", "--data", data.toString(), "--device", "cpu", "--checkpoint-every", "1", "--keep", "2"};
        MainTest.Run first = kiln(concat(new String[]{"train", "--epochs", "1", "--out", run.toString()}, common));
        assertEquals(0, first.code(), first.toString());
        try (var files = Files.list(run.resolve("checkpoints"))) {
            assertEquals(2, files.count(), "--keep 2");
        }
        MainTest.Run resumed = kiln("train", "--resume", run.toString(), "--epochs", "2", "--json");
        assertEquals(0, resumed.code(), resumed.toString());
        assertTrue(resumed.out().contains("resuming from"), resumed.out());
        assertFalse(resumed.out().strip().lines().toList().getLast().contains("NaN"), resumed.out());
        assertEquals(0, kiln(concat(new String[]{"train", "--epochs", "2", "--out", straight.toString()}, common)).code());
        assertArrayEquals(bits(straight.resolve("model.safetensors")), bits(run.resolve("model.safetensors")), "resumed = straight, bit for bit");

        assertOneLineError(kiln("train", "--resume", run.toString(), "--lr", "0.1"), "--lr cannot be given with --resume");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertOneLineError(kiln("train", "--resume", empty.toString()), "holds no readable training checkpoint");
        assertOneLineError(kiln("train", "--resume", run.resolve("model.safetensors").toString()), "holds model weights only");
        assertOneLineError(kiln("train", "--on-nan", "maybe", "--data", data.toString(), "--out", dir.resolve("x").toString()), "--on-nan takes stop or skip");
    }

    @Test void aLanguageModelRunGoesOnToo() throws Exception {
        Path text = Files.writeString(dir.resolve("t.txt"), "hello world, hello kiln. ".repeat(60)), run = dir.resolve("lm"), straight = dir.resolve("lm2");
        String[] common = {"--model", "lstm", "--data", text.toString(), "--context", "16", "--layers", "1", "--dim", "32", "--batch-size", "8",
                "--steps", "3", "--device", "cpu", "--checkpoint-every", "2"};
        assertEquals(0, kiln(concat(new String[]{"train", "--epochs", "1", "--out", run.toString()}, common)).code());
        MainTest.Run resumed = kiln("train", "--resume", run.toString(), "--epochs", "2", "--json");
        assertEquals(0, resumed.code(), resumed.toString());
        assertTrue(resumed.out().contains("resuming from"), resumed.out());
        assertEquals(0, kiln(concat(new String[]{"train", "--epochs", "2", "--out", straight.toString()}, common)).code());
        assertArrayEquals(bits(straight.resolve("model.safetensors")), bits(run.resolve("model.safetensors")), "resumed = straight, bit for bit");
        assertOneLineError(kiln("train", "--resume", run.toString(), "--dim", "64"), "--dim cannot be given with --resume");
    }

    @Test void aDivergingRunStopsNamingTheStepAndJsonHasNoNaN() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 48, 16);
        String[] diverging = {"train", "--model", "mlp", "--optimizer", "sgd", "--lr", "1e30", "--batch-size", "16", "--data", data.toString(),
                "--device", "cpu", "--json"};
        assertOneLineError(kiln(concat(diverging, new String[]{"--out", dir.resolve("stop").toString()})), "training stopped at step");
        MainTest.Run skip = kiln(concat(diverging, new String[]{"--out", dir.resolve("skip").toString(), "--on-nan", "skip"}));
        assertEquals(0, skip.code(), skip.toString());
        String json = skip.out().strip().lines().toList().getLast();
        assertTrue(json.startsWith("{") && !json.contains("NaN") && !json.contains("Infinity"), skip.out());
        assertTrue(skip.out().contains("steps skipped for a non-finite loss"), skip.out());
    }

    private static byte[] bits(Path file) throws Exception {
        var c = Safetensors.read(file);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (var t : c.tensors().values()) for (float f : t.toFloatArray()) out.writeBytes(new byte[]{(byte) Float.floatToRawIntBits(f), (byte) (Float.floatToRawIntBits(f) >> 8),
                (byte) (Float.floatToRawIntBits(f) >> 16), (byte) (Float.floatToRawIntBits(f) >> 24)});
        return out.toByteArray();
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
