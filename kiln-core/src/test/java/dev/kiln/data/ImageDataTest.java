package dev.kiln.data;

import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** CIFAR-10's binary batches, ImageFolder and the random resized crop, on small data made here. */
class ImageDataTest {

    /** A CIFAR-10 record file of {@code n} images: image k has label k % 10 and every pixel of channel c = (k + c) % 256. */
    private static void writeCifar(Path file, int n) throws IOException {
        byte[] b = new byte[n * Cifar10.RECORD];
        for (int k = 0; k < n; k++) {
            b[k * Cifar10.RECORD] = (byte) (k % 10);
            for (int c = 0; c < 3; c++) java.util.Arrays.fill(b, k * Cifar10.RECORD + 1 + c * 1024, k * Cifar10.RECORD + 1 + (c + 1) * 1024, (byte) (k + c));
        }
        Files.write(file, b);
    }

    @Test void cifar10ReadsRecordsAndNormalisesPerChannel(@TempDir Path dir) throws IOException {
        Path bin = Files.createDirectories(dir.resolve("cifar-10-batches-bin"));
        writeCifar(bin.resolve("data_batch_1.bin"), 7);
        writeCifar(bin.resolve("data_batch_2.bin"), 5);
        writeCifar(bin.resolve("test_batch.bin"), 3);
        assertTrue(Cifar10.isCifar10(dir));
        TensorDataset train = Cifar10.load(dir, true), test = Cifar10.load(dir, false);
        assertEquals(12, train.size());
        assertEquals(3, test.size());
        Batch b = train.batch(new int[]{8});   // record 1 of the second file: label 1, channel c = 1 + c
        assertArrayEquals(new int[]{1, 3, 32, 32}, b.inputs().shape());
        assertEquals(1, b.targets().toLongArray()[0]);
        float[] x = b.inputs().toFloatArray();
        for (int c = 0; c < 3; c++) {
            float want = ((1 + c) / 255f - Cifar10.MEAN[c]) / Cifar10.STD[c];
            assertEquals(want, x[c * 1024 + 517], 1e-6);
        }
    }

    @Test void cifar10RefusesATornFileAndABadLabelNamingTheFile(@TempDir Path dir) throws IOException {
        writeCifar(dir.resolve("test_batch.bin"), 2);
        Files.write(dir.resolve("test_batch.bin"), new byte[Cifar10.RECORD + 5]);
        IOException e = assertThrows(IOException.class, () -> Cifar10.load(dir, false));
        assertTrue(e.getMessage().contains("test_batch.bin") && e.getMessage().contains("whole number"), e.getMessage());
        byte[] bad = new byte[Cifar10.RECORD];
        bad[0] = 10;
        Files.write(dir.resolve("test_batch.bin"), bad);
        e = assertThrows(IOException.class, () -> Cifar10.load(dir, false));
        assertTrue(e.getMessage().contains("label 10"), e.getMessage());
        assertThrows(java.nio.file.NoSuchFileException.class, () -> Cifar10.load(dir, true));
    }

    private static void writeImage(Path file, int w, int h, int rgb, String format) throws IOException {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, rgb);
        Files.createDirectories(file.getParent());
        assertTrue(ImageIO.write(img, format, file.toFile()), "no writer for " + format);
    }

    @Test void imageFolderLabelsByFolderAndDecodesToTheAskedSize(@TempDir Path root) throws IOException {
        writeImage(root.resolve("cat/a.png"), 40, 30, 0xFF0000, "png");
        writeImage(root.resolve("cat/b.jpg"), 20, 50, 0x00FF00, "jpg");
        writeImage(root.resolve("dog/c.png"), 16, 16, 0x0000FF, "png");
        Files.writeString(root.resolve("dog/notes.txt"), "not an image");
        var opt = new ImageFolder.Options(8, 10, 3, new float[]{0.5f}, new float[]{0.5f}, false);
        ImageFolder f = ImageFolder.open(root, opt);
        assertEquals(List.of("cat", "dog"), f.classes());
        assertEquals(3, f.size());
        Batch b = f.batch(new int[]{2, 0});
        assertArrayEquals(new int[]{2, 3, 8, 8}, b.inputs().shape());
        assertArrayEquals(new long[]{1, 0}, b.targets().toLongArray());
        float[] x = b.inputs().toFloatArray();
        // blue image: R = G = -1, B = 1 after (v - 0.5) / 0.5; red image: R = 1
        assertEquals(-1, x[0], 1e-6);
        assertEquals(1, x[2 * 64 + 10], 1e-6);
        assertEquals(1, x[3 * 64 + 5], 1e-6);
        ImageFolder grey = ImageFolder.open(root, opt.withChannels(1));
        assertArrayEquals(new int[]{1, 1, 8, 8}, grey.batch(new int[]{1}).inputs().shape());
    }

    @Test void aCorruptImageNamesTheFileOrIsSkippedAndCounted(@TempDir Path root) throws IOException {
        writeImage(root.resolve("a/good.png"), 12, 12, 0x808080, "png");
        Path bad = root.resolve("a/bad.png");
        byte[] png = Files.readAllBytes(root.resolve("a/good.png"));
        Files.write(bad, java.util.Arrays.copyOf(png, 40));   // a PNG cut short
        Files.write(root.resolve("a/garbage.jpg"), new byte[]{1, 2, 3, 4, 5});
        var opt = new ImageFolder.Options(8, 8, 3, new float[]{0f}, new float[]{1f}, false);
        ImageFolder strict = ImageFolder.open(root, opt);
        for (int i = 0; i < strict.size(); i++) {
            if (strict.file(i).equals(root.resolve("a/good.png"))) continue;
            int k = i;
            UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> strict.batch(new int[]{k}));
            assertTrue(e.getMessage().contains(strict.file(i).toString()), e.getMessage());
        }
        ImageFolder lenient = ImageFolder.open(root, opt.skippingBadFiles(true));
        Batch b = lenient.batch(new int[]{0, 1, 2});
        assertEquals(1, b.size());
        assertEquals(2, lenient.skipped());
    }

    /** Hand-made hostile images: an IOException naming the file, refused before the decoder allocates pixels. */
    @Test void hostileImagesAreIOExceptionsNamingTheFile(@TempDir Path dir) throws IOException {
        Path png = dir.resolve("small.png"), bmp = dir.resolve("small.bmp"), gif = dir.resolve("small.gif");
        writeImage(png, 4, 3, 0x336699, "png");
        writeImage(bmp, 4, 3, 0x336699, "bmp");
        writeImage(gif, 4, 3, 0x336699, "gif");
        // PNG: IHDR (width at byte 16, height at 20, its CRC recomputed) claiming 65535 x 65535 pixels
        byte[] p = Files.readAllBytes(png);
        java.nio.ByteBuffer.wrap(p).putInt(16, 65535).putInt(20, 65535);
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(p, 12, 17);
        java.nio.ByteBuffer.wrap(p).putInt(29, (int) crc.getValue());
        assertHostileImage(dir, "huge.png", p, "refused");
        // PNG: a text chunk after IHDR whose length claims 2 GiB
        byte[] q = Files.readAllBytes(png);
        byte[] chunk = {0x7F, (byte) 0xFF, (byte) 0xFF, (byte) 0xF0, 't', 'E', 'X', 't', 'k', 0, 'v'};
        assertHostileImage(dir, "longchunk.png", dev.kiln.io.Mutations.splice(q, 33, 0, chunk), "");
        // BMP: width and height (bytes 18 and 22, little-endian) of 2^30 x 2^30
        byte[] b = Files.readAllBytes(bmp);
        java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(18, 1 << 30).putInt(22, 1 << 30);
        assertHostileImage(dir, "huge.bmp", b, ""); // the BMP reader refuses such a header itself
        // BMP: a negative width
        b = Files.readAllBytes(bmp);
        java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(18, -5);
        assertHostileImage(dir, "negative.bmp", b, "");
        // GIF: the image descriptor (0x2C, left 0, top 0, width 4, height 3) claiming 65535 x 65535
        byte[] g = Files.readAllBytes(gif);
        int descriptor = indexOf(g, new byte[]{0x2C, 0, 0, 0, 0, 4, 0, 3, 0});
        assertTrue(descriptor > 0, "the GIF writer's image descriptor");
        java.nio.ByteBuffer.wrap(g).order(java.nio.ByteOrder.LITTLE_ENDIAN).putShort(descriptor + 5, (short) -1).putShort(descriptor + 7, (short) -1);
        assertHostileImage(dir, "huge.gif", g, "refused");
        assertHostileImage(dir, "empty.png", new byte[0], "");
        assertHostileImage(dir, "header-only.png", java.util.Arrays.copyOf(p, 8), "");
    }

    private static int indexOf(byte[] b, byte[] part) {
        for (int i = 0; i + part.length <= b.length; i++) {
            if (java.util.Arrays.equals(b, i, i + part.length, part, 0, part.length)) return i;
        }
        return -1;
    }

    private static void assertHostileImage(Path dir, String name, byte[] bytes, String expected) throws IOException {
        Path f = dir.resolve(name);
        Files.write(f, bytes);
        IOException e = assertThrows(IOException.class, () -> ImageFolder.decode(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains(expected), e.getMessage());
    }

    @Test void cifar10RefusesHostileBatchesNamingTheFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("test_batch.bin");
        Files.write(f, new byte[0]);
        IOException e = assertThrows(IOException.class, () -> Cifar10.load(dir, false));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        byte[] b = new byte[3 * Cifar10.RECORD];
        b[2 * Cifar10.RECORD] = (byte) 0xFF;   // the last record's label
        Files.write(f, b);
        e = assertThrows(IOException.class, () -> Cifar10.load(dir, false));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("label 255 of record 2"), e.getMessage());
    }

    @Test void imageFolderRefusesAFolderWithoutClasses(@TempDir Path root) throws IOException {
        IOException e = assertThrows(IOException.class, () -> ImageFolder.open(root, ImageFolder.Options.rgb(32)));
        assertTrue(e.getMessage().contains("no class folders"), e.getMessage());
        Files.createDirectories(root.resolve("empty"));
        e = assertThrows(IOException.class, () -> ImageFolder.open(root, ImageFolder.Options.rgb(32)));
        assertTrue(e.getMessage().contains("no image files"), e.getMessage());
    }

    @Test void randomResizedCropKeepsAConstantImageConstantAndIsSeeded() {
        float[] v = new float[2 * 3 * 20 * 30];
        for (int i = 0; i < v.length; i++) v[i] = i < v.length / 2 ? 0.25f : -2f;
        Tensor x = Tensor.of(v, 2, 3, 20, 30);
        Transform t = Transforms.randomResizedCrop(12, 0.08, 1.0);
        Tensor y = t.apply(x, new SplittableRandom(7));
        assertArrayEquals(new int[]{2, 3, 12, 12}, y.shape());
        float[] out = y.toFloatArray();
        for (int i = 0; i < out.length; i++) assertEquals(i < out.length / 2 ? 0.25f : -2f, out[i], 1e-6);
        assertArrayEquals(out, t.apply(x, new SplittableRandom(7)).toFloatArray());
        // a ramp stays within its range and is resampled, not copied
        float[] ramp = new float[16 * 16];
        for (int i = 0; i < ramp.length; i++) ramp[i] = i % 16;
        float[] r = Transforms.randomResizedCrop(16, 0.25, 0.5).apply(Tensor.of(ramp, 1, 1, 16, 16), new SplittableRandom(1)).toFloatArray();
        for (float f : r) assertTrue(f >= 0 && f <= 15, "value " + f);
        assertTrue(r[15] - r[0] < 15, "a crop of a quarter to a half of the area spans less than the whole ramp");
    }

    @Test void trainingDataRecognisesEachLayoutAndNamesWhatItExpected(@TempDir Path dir) throws IOException {
        writeCifar(dir.resolve("data_batch_1.bin"), 4);
        writeCifar(dir.resolve("test_batch.bin"), 2);
        TrainingData cifar = TrainingData.open(dir, 32);
        assertEquals("cifar10", cifar.name());
        assertEquals(4, cifar.train().size());
        assertArrayEquals(new int[]{3, 32, 32}, cifar.inputShape());

        Path tree = dir.resolve("tree");
        writeImage(tree.resolve("train/a/1.png"), 10, 10, 0x101010, "png");
        writeImage(tree.resolve("train/b/2.png"), 10, 10, 0x202020, "png");
        writeImage(tree.resolve("val/a/3.png"), 10, 10, 0x303030, "png");
        writeImage(tree.resolve("val/b/4.png"), 10, 10, 0x404040, "png");
        TrainingData images = TrainingData.open(tree, 8);
        assertEquals("image-folder", images.name());
        assertEquals(List.of("a", "b"), images.classes());
        assertEquals(1, TrainingData.head(images.train(), 1).size());

        IOException e = assertThrows(IOException.class, () -> TrainingData.open(tree.resolve("train"), 8));
        assertTrue(e.getMessage().contains("not a data folder"), e.getMessage());
    }
}
