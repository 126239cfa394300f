package dev.kiln.data;

import dev.kiln.io.Mutations;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

/**
 * Fuzzes the data readers: a valid IDX file (raw and gzipped), CIFAR-10 batch and image (PNG, JPEG, BMP, GIF),
 * damaged at random, must read or fail with the reader's documented error naming the file: {@link Idx.FormatException}
 * for IDX, an {@link IOException} for CIFAR-10 and images. Tries: {@code jqwik.tries.default}.
 */
class DataReadersFuzzTest {
    private static Path dir;
    private static byte[] idx, idxGz, cifar;
    private static List<byte[]> images;
    private static final List<String> FORMATS = List.of("png", "jpg", "bmp", "gif");

    @BeforeContainer static void writeValidFiles() throws IOException {
        dir = Files.createTempDirectory("kiln-fuzz-data");
        // IDX: 3 x 4 x 5 unsigned bytes
        idx = new byte[4 + 3 * 4 + 60];
        idx[2] = 0x08;
        idx[3] = 3;
        idx[7] = 3;
        idx[11] = 4;
        idx[15] = 5;
        for (int i = 0; i < 60; i++) idx[16 + i] = (byte) i;
        idxGz = gzip(idx);
        // CIFAR-10: two records
        cifar = new byte[2 * Cifar10.RECORD];
        new Random(1).nextBytes(cifar);
        cifar[0] = 3;
        cifar[Cifar10.RECORD] = 9;
        images = new java.util.ArrayList<>();
        BufferedImage img = new BufferedImage(9, 7, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 7; y++) for (int x = 0; x < 9; x++) img.setRGB(x, y, x * 28 << 16 | y * 36 << 8 | (x + y) * 15);
        for (String f : FORMATS) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            if (!ImageIO.write(img, f, out)) throw new IllegalStateException("no ImageIO writer for " + f);
            images.add(out.toByteArray());
        }
    }

    private static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) { z.write(b); }
        return out.toByteArray();
    }

    @AfterContainer static void removeTheFiles() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Property void idxReadsOrIsAFormatErrorNamingTheFile(@ForAll long seed) throws IOException {
        Path file = dir.resolve("fuzzed-idx3-ubyte");
                // a quarter each: raw damage, damage to the compressed bytes, damage under a valid gzip stream, large dims
        byte[] bytes = switch (Math.floorMod(seed, 4)) {
            case 0 -> Mutations.mutate(idx, seed);
            case 1 -> Mutations.mutate(idxGz, seed);
            case 2 -> gzip(Mutations.mutate(idx, seed));
            default -> Mutations.withBigIdxDims(idx, seed);
        };
        Files.write(file, bytes);
        try {
            Idx.Array a = Idx.read(file);
            // what was read is consistent: the dims' exact product is the number of bytes
            java.math.BigInteger n = java.math.BigInteger.ONE;
            for (int d : a.dims()) n = n.multiply(java.math.BigInteger.valueOf(d));
            if (!n.equals(java.math.BigInteger.valueOf(a.data().length))) throw new AssertionError("seed " + seed + ": read dims " + java.util.Arrays.toString(a.dims()) + " with " + a.data().length + " bytes");
            Statistics.collect("read");
        } catch (Idx.FormatException e) {
            namesTheFile(e, file, seed);
            Statistics.collect("format error");
        } catch (AssertionError e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": Idx.read threw " + t, t);
        }
    }

    @Property void cifar10LoadsOrIsAnIOExceptionNamingTheFile(@ForAll long seed) throws IOException {
        Path folder = Files.createDirectories(dir.resolve("cifar"));
        Path file = folder.resolve("test_batch.bin");
        Files.write(file, Mutations.mutate(cifar, seed));
        try {
            Cifar10.load(folder, false);
            Statistics.collect("read");
        } catch (IOException e) {
            namesTheFile(e, file, seed);
            Statistics.collect("IOException");
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": Cifar10.load threw " + t, t);
        }
    }

    @Property void anImageDecodesOrIsAnIOExceptionNamingTheFile(@ForAll long seed) throws IOException {
        int format = Math.floorMod(seed, FORMATS.size());
        Path file = dir.resolve("fuzzed." + FORMATS.get(format));
        Files.write(file, Mutations.mutate(images.get(format), seed));
        try {
            ImageFolder.decode(file);
            Statistics.collect(FORMATS.get(format), "decoded");
        } catch (IOException e) {
            namesTheFile(e, file, seed);
            Statistics.collect(FORMATS.get(format), "IOException");
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": ImageFolder.decode (" + FORMATS.get(format) + ") threw " + t, t);
        }
    }

    private static void namesTheFile(IOException e, Path file, long seed) {
        if (e.getMessage() == null || !e.getMessage().contains(file.toString())) {
            throw new AssertionError("seed " + seed + ": the message does not name the file: " + e.getMessage(), e);
        }
    }
}
