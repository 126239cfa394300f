package dev.kiln.cli;

import dev.kiln.io.Safetensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static dev.kiln.cli.MainTest.assertOneLineError;
import static dev.kiln.cli.MainTest.kiln;
import static org.junit.jupiter.api.Assertions.*;

/** kiln prune and kiln quantize (int8, FP8) on a tiny run, and kiln eval / kiln predict of their outputs. */
class CompressCliTest {
    @TempDir Path dir;

    @Test void pruneFineTuneQuantizeAndEvaluate() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 48, 32), run = dir.resolve("run");
        MainTest.Run trained = kiln("train", "--model", "mlp", "--batch-size", "16", "--epochs", "1", "--data", data.toString(), "--device", "cpu",
                "--out", run.toString());
        assertEquals(0, trained.code(), trained.toString());

        // 2:4 with one epoch of fine-tuning: the saved weights keep exactly 2 of every 4
        Path sparse = dir.resolve("sparse");
        MainTest.Run pruned = kiln("prune", run.toString(), "--amount", "0.5", "--structured", "2:4", "--finetune-epochs", "1", "--out", sparse.toString());
        assertEquals(0, pruned.code(), pruned.toString());
        Safetensors.Contents c = Safetensors.read(sparse.resolve("model.safetensors"));
        assertEquals("2:4", c.metadata().get("kiln.prune.method"));
        for (String name : new String[]{"1.weight", "4.weight", "7.weight"}) {
            float[] w = c.tensors().get(name).toFloatArray();
            for (int g = 0; g < w.length; g += 4) {
                int kept = 0;
                for (int i = g; i < g + 4; i++) if (w[i] != 0) kept++;
                assertEquals(2, kept, name + " group " + g);
            }
        }

        // one more epoch of the pruned run through kiln train --resume: its zeros stay zero (masks from the checkpoint)
        MainTest.Run more = kiln("train", "--resume", sparse.toString(), "--epochs", "2", "--device", "cpu");
        assertEquals(0, more.code(), more.toString());
        assertTrue(more.err().contains("zero weights stay zero") || more.out().contains("zero weights stay zero"), more.toString());
        Safetensors.Contents resumed = Safetensors.read(sparse.resolve("model.safetensors"));
        assertEquals("2", resumed.metadata().get("kiln.epoch"), "the resumed run trained its second epoch");
        for (String name : new String[]{"1.weight", "4.weight", "7.weight"}) {
            float[] w = resumed.tensors().get(name).toFloatArray(), before = c.tensors().get(name).toFloatArray();
            for (int i = 0; i < w.length; i++) if (before[i] == 0) assertTrue(w[i] == 0, name + " element " + i + " grew back: " + w[i]);
        }

        // global magnitude without fine-tuning: the amount exactly, over all weights together
        Path global = dir.resolve("global");
        assertEquals(0, kiln("prune", run.toString(), "--amount", "0.3", "--scope", "global", "--out", global.toString()).code());
        Safetensors.Contents g = Safetensors.read(global.resolve("model.safetensors"));
        long zeros = 0, total = 0;
        for (String name : new String[]{"1.weight", "4.weight", "7.weight"}) {
            for (float v : g.tensors().get(name).toFloatArray()) if (v == 0) zeros++;
            total += g.tensors().get(name).numel();
        }
        assertEquals(Math.round(0.3 * total), zeros);

        // int8 of the pruned run; kiln eval runs it
        MainTest.Run q = kiln("quantize", sparse.toString(), "--int8", "--calibrate", "2", "--data", data.toString());
        assertEquals(0, q.code(), q.toString());
        assertTrue(q.out().contains("int8"), q.out());
        Path int8 = sparse.resolve("model-int8.safetensors");
        assertTrue(Files.isRegularFile(int8));
        MainTest.Run ev = kiln("eval", int8.toString(), "--data", data.toString(), "--device", "cpu", "--json");
        assertEquals(0, ev.code(), ev.toString());
        assertTrue(ev.out().contains("\"test_acc\":"), ev.out());

        // FP8 of the trained run: F8_E4M3 entries; kiln eval and kiln predict run it
        MainTest.Run f = kiln("quantize", run.toString(), "--fp8", "--calibrate", "2", "--data", data.toString());
        assertEquals(0, f.code(), f.toString());
        assertTrue(f.out().contains("fp8"), f.out());
        Path fp8 = run.resolve("model-fp8.safetensors");
        Safetensors.Contents fc = Safetensors.read(fp8);
        assertEquals("fp8", fc.metadata().get("kiln.quant"));
        assertEquals(dev.kiln.backend.QuantFormat.FP8_E4M3, fc.codes().get("1.weight").format());
        MainTest.Run fev = kiln("eval", fp8.toString(), "--data", data.toString(), "--device", "cpu", "--json");
        assertEquals(0, fev.code(), fev.toString());
        assertTrue(fev.out().contains("\"test_acc\":"), fev.out());
        Path png = dir.resolve("digit.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(28, 28, java.awt.image.BufferedImage.TYPE_BYTE_GRAY), "png", png.toFile());
        MainTest.Run pr = kiln("predict", fp8.toString(), png.toString(), "--json", "--top", "3", "--device", "cpu");
        assertEquals(0, pr.code(), pr.toString());
        assertTrue(pr.out().contains("\"top\""), pr.out());

        assertOneLineError(kiln("quantize", run.toString(), "--int8", "--fp8", "--data", data.toString()), "mutually exclusive");
        assertOneLineError(kiln("prune", run.toString(), "--amount", "0.3", "--structured", "2:4"), "--structured 2:4 prunes exactly half");
        assertOneLineError(kiln("prune", run.toString(), "--amount", "0.5", "--rounds", "3"), "--rounds > 1 needs --finetune-epochs");
        assertOneLineError(kiln("quantize", int8.toString(), "--int8", "--data", data.toString()), "already quantized");
    }
    /** A ResNet's convolutions sit in its blocks: kiln prune, kiln quantize (int8, FP8), kiln eval and kiln predict take them all. */
    @Test void aResNetPrunesQuantizesAndEvaluates() throws Exception {
        Path data = MainTest.fakeFashionMnist(dir.resolve("data"), 32, 16), run = dir.resolve("resnet");
        MainTest.Run trained = kiln("train", "--model", "resnet-small", "--batch-size", "16", "--epochs", "1", "--data", data.toString(),
                "--device", "cpu", "--out", run.toString());
        assertEquals(0, trained.code(), trained.toString());

        Path sparse = dir.resolve("resnet-24");
        MainTest.Run pruned = kiln("prune", run.toString(), "--amount", "0.5", "--structured", "2:4", "--out", sparse.toString());
        assertEquals(0, pruned.code(), pruned.toString());
        Safetensors.Contents p = Safetensors.read(sparse.resolve("model.safetensors"));
        float[] shortcut = p.tensors().get("layer2.0.downsample.0.weight").toFloatArray();
        long zeros = 0;
        for (float v : shortcut) if (v == 0) zeros++;
        assertEquals(shortcut.length / 2, zeros, "the shortcut convolution is pruned 2:4 too");

        for (String format : new String[]{"int8", "fp8"}) {
            MainTest.Run q = kiln("quantize", sparse.toString(), "--" + format, "--calibrate", "2", "--batch-size", "8", "--data", data.toString());
            assertEquals(0, q.code(), q.toString());
            assertTrue(q.out().contains("test accuracy fp32"), q.out());
            Path file = sparse.resolve("model-" + format + ".safetensors");
            Safetensors.Contents c = Safetensors.read(file);
            assertEquals(format, c.metadata().get("kiln.quant"));
            assertEquals("resnet-small", c.metadata().get("kiln.model"));
            for (String name : new String[]{"conv1.weight", "layer1.0.conv1.weight", "layer3.0.downsample.0.weight", "fc.weight"}) {
                assertNotNull(c.codes().get(name), name + " is 8-bit");
            }
            byte[] sc = c.codes().get("layer2.0.downsample.0.weight").values();
            long zeroCodes = 0;
            for (byte b : sc) if ((format.equals("int8") ? b : dev.kiln.backend.Fp8E4M3.decode(b)) == 0) zeroCodes++;   // FP8 keeps -0 of w·0 as -0
            assertTrue(zeroCodes >= sc.length / 2, format + ": pruned weights stay exact zeros as codes (" + zeroCodes + " of " + sc.length + ")");
            MainTest.Run ev = kiln("eval", file.toString(), "--data", data.toString(), "--device", "cpu", "--json");
            assertEquals(0, ev.code(), ev.toString());
            assertTrue(ev.out().contains("\"test_acc\":"), ev.out());
        }
        Path png = dir.resolve("shirt.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(28, 28, java.awt.image.BufferedImage.TYPE_BYTE_GRAY), "png", png.toFile());
        MainTest.Run pr = kiln("predict", sparse.resolve("model-int8.safetensors").toString(), png.toString(), "--json", "--top", "3", "--device", "cpu");
        assertEquals(0, pr.code(), pr.toString());
        assertTrue(pr.out().contains("\"top\""), pr.out());
    }
}
