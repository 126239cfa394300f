package dev.kiln.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

class IdxTest {
    @TempDir Path dir;

    /** An IDX file of unsigned bytes: magic 0x00000803-style, big-endian dims, data. */
    static byte[] idx(int[] dims, byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[]{0, 0, 0x08, (byte) dims.length});
        for (int d : dims) out.writeBytes(new byte[]{(byte) (d >>> 24), (byte) (d >>> 16), (byte) (d >>> 8), (byte) d});
        out.writeBytes(data);
        return out.toByteArray();
    }

    static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(raw);
        }
        return out.toByteArray();
    }

    @Test void readsRawAndGzipped() throws IOException {
        byte[] data = {0, 1, 2, (byte) 200, (byte) 255, 7};
        byte[] raw = idx(new int[]{2, 3}, data);
        Files.write(dir.resolve("a"), raw);
        Files.write(dir.resolve("b.gz"), gzip(raw));
        for (String name : new String[]{"a", "b.gz"}) {
            Idx.Array a = Idx.read(dir.resolve(name));
            assertArrayEquals(new int[]{2, 3}, a.dims());
            assertArrayEquals(data, a.data());
            assertEquals(200, a.get(3), "bytes are unsigned");
            assertEquals(255, a.get(4));
        }
    }

    @Test void truncatedDataIsReported() throws IOException {
        byte[] raw = idx(new int[]{4, 3}, new byte[12]);
        Files.write(dir.resolve("t.gz"), gzip(Arrays.copyOf(raw, raw.length - 5)));
        IOException e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("t.gz")));
        assertTrue(e.getMessage().contains("truncated") && e.getMessage().contains("need 12 data bytes, found 7"), e.getMessage());
        assertTrue(e.getMessage().contains("t.gz"), "the message names the file");
    }

    @Test void truncatedHeaderIsReported() throws IOException {
        Files.write(dir.resolve("h"), Arrays.copyOf(idx(new int[]{4, 3}, new byte[12]), 9));
        IOException e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("h")));
        assertTrue(e.getMessage().contains("truncated in the header"), e.getMessage());
    }

    @Test void truncatedGzipStreamIsReported() throws IOException {
        byte[] gz = gzip(idx(new int[]{100}, new byte[100]));
        Files.write(dir.resolve("g.gz"), Arrays.copyOf(gz, gz.length / 2));
        IOException e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("g.gz")));
        assertTrue(e.getMessage().contains("gzip"), e.getMessage());
    }

    @Test void badMagicIsReported() throws IOException {
        Files.write(dir.resolve("m"), new byte[]{1, 2, 3, 4, 5, 6, 7, 8});
        IOException e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("m")));
        assertTrue(e.getMessage().contains("bad magic number 0x01020304"), e.getMessage());
        byte[] floats = idx(new int[]{1}, new byte[4]);
        floats[2] = 0x0D;
        Files.write(dir.resolve("f"), floats);
        e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("f")));
        assertTrue(e.getMessage().contains("0x0d is not supported"), e.getMessage());
    }

    @Test void extraBytesAreReported() throws IOException {
        Files.write(dir.resolve("x"), idx(new int[]{2}, new byte[3]));
        IOException e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("x")));
        assertTrue(e.getMessage().contains("1 unexpected bytes"), e.getMessage());
    }

    /** Hand-made hostile headers: each is an Idx.FormatException naming the file, before any large allocation. */
    @Test void hostileHeadersAreFormatErrorsNotAllocations() throws IOException {
        // four dims of 65536: the product 2^64 overflows a long to exactly 0, which the 0 data bytes would match
        assertHostile(idx(new int[]{65536, 65536, 65536, 65536}, new byte[0]), "more than");
        // 2^62 bytes claimed by a 30-byte file
        assertHostile(idx(new int[]{Integer.MAX_VALUE, Integer.MAX_VALUE}, new byte[10]), "more than");
        // 2^31 - 9 bytes claimed, 10 there: refused before the data is allocated, raw or gzipped
        assertHostile(idx(new int[]{Integer.MAX_VALUE - 8}, new byte[10]), "truncated");
        assertHostile(gzip(idx(new int[]{Integer.MAX_VALUE - 8}, new byte[10])), "truncated");
        assertHostile(idx(new int[]{-1}, new byte[10]), "negative dimension");
        // a gzip bomb: 64 MiB of zeros after a header that describes 4 bytes; the reader stops counting at 1 MiB
        assertHostile(gzip(idx(new int[]{4}, new byte[64 << 20])), "at least 1048576 unexpected bytes");
        byte[] gz = gzip(idx(new int[]{4}, new byte[4]));
        gz[gz.length - 12] ^= 0x55; // deflate data corrupted
        Files.write(dir.resolve("hostile.gz"), gz);
        IOException e = assertThrows(IOException.class, () -> Idx.read(dir.resolve("hostile.gz")));
        assertInstanceOf(Idx.FormatException.class, e);
        assertTrue(e.getMessage().contains("hostile.gz"), e.getMessage());
    }

    private void assertHostile(byte[] bytes, String expected) throws IOException {
        Path f = dir.resolve("hostile-idx");
        Files.write(f, bytes);
        Idx.FormatException e = assertThrows(Idx.FormatException.class, () -> Idx.read(f));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
        assertTrue(e.getMessage().contains("hostile-idx"), "the message names the file: " + e.getMessage());
    }

    @Test void missingFile() {
        assertThrows(NoSuchFileException.class, () -> Idx.read(dir.resolve("nope")));
    }

    @Test void fashionMnistFolderOfSmallFiles() throws IOException {
        byte[] pixels = new byte[3 * 28 * 28];
        pixels[0] = (byte) 255;
        Files.write(dir.resolve("t10k-images-idx3-ubyte.gz"), gzip(idx(new int[]{3, 28, 28}, pixels)));
        Files.write(dir.resolve("t10k-labels-idx1-ubyte"), idx(new int[]{3}, new byte[]{9, 0, 4}));
        TensorDataset ds = FashionMnist.load(dir, false);
        assertEquals(3, ds.size());
        Batch b = ds.batch(new int[]{0, 2});
        assertArrayEquals(new int[]{2, 1, 28, 28}, b.inputs().shape());
        assertArrayEquals(new long[]{9, 4}, b.targets().toLongArray());
        float[] x = b.inputs().toFloatArray();
        assertEquals((1 - FashionMnist.MEAN) / FashionMnist.STD, x[0], 1e-5);
        assertEquals(-FashionMnist.MEAN / FashionMnist.STD, x[1], 1e-5);

        Files.write(dir.resolve("t10k-labels-idx1-ubyte"), idx(new int[]{2}, new byte[]{9, 0}));
        IOException e = assertThrows(IOException.class, () -> FashionMnist.load(dir, false));
        assertTrue(e.getMessage().contains("3 t10k images but labels"), e.getMessage());
        NoSuchFileException missing = assertThrows(NoSuchFileException.class, () -> FashionMnist.load(dir, true));
        assertTrue(missing.getMessage().contains("train-images"), missing.getMessage());
    }
}
