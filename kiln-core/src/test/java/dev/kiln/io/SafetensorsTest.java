package dev.kiln.io;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class SafetensorsTest {
    @TempDir Path dir;

    private static Map<String, Tensor> sample() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("0.weight", Tensor.of(new float[]{1.5f, -2, 3, 4, 5, 6}, 2, 3));
        m.put("0.bias", Tensor.of(new double[]{0.25, -1e300}, 2));
        m.put("bn.num_batches_tracked", Tensor.fromHost(new long[]{7}, DType.INT64, new int[0], Device.CPU));
        m.put("ids", Tensor.of(new int[]{-1, 2, 3}, 3));
        m.put("mask", Tensor.fromHost(new byte[]{1, 0}, DType.BOOL, new int[]{2}, Device.CPU));
        m.put("pixels", Tensor.fromHost(new byte[]{(byte) 255, 0, 9}, DType.UINT8, new int[]{3}, Device.CPU));
        m.put("half", Tensor.of(new float[]{1, -0.5f, 65504}, 3).to(DType.FLOAT16));
        m.put("brain", Tensor.of(new float[]{1, -0.5f, 3e38f}, 3).to(DType.BFLOAT16));
        m.put("empty", Tensor.zeros(0, 4));
        return m;
    }

    @Test void roundTripsEveryDtypeAndTheMetadata() throws IOException {
        Path f = dir.resolve("m.safetensors");
        Map<String, Tensor> in = sample();
        Safetensors.write(f, in, Map.of("model", "cnn", "note", "quotes \" and \\ survive"));
        Safetensors.Contents c = Safetensors.read(f);
        assertEquals(in.keySet().stream().toList(), c.tensors().keySet().stream().toList(), "names in order");
        for (var e : in.entrySet()) {
            Tensor t = c.tensors().get(e.getKey());
            assertEquals(e.getValue().dtype(), t.dtype(), e.getKey());
            assertArrayEquals(e.getValue().shape(), t.shape(), e.getKey());
            assertArrayEquals(e.getValue().toDoubleArray(), t.toDoubleArray(), e.getKey());
        }
        assertEquals("cnn", c.metadata().get("model"));
        assertEquals("quotes \" and \\ survive", c.metadata().get("note"));
    }

    /** Reads the file the way the format's specification describes it, without our reader. */
    @Test void aCheckpointIsReadableByAllLikeAnyFileTheUserWrites(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("model.safetensors");
        Safetensors.write(f, Map.of("w", Tensor.of(1f, 2f)), Map.of());
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
    }

    @Test void fileFollowsTheSpecification() throws IOException {
        Path f = dir.resolve("spec.safetensors");
        Safetensors.write(f, Map.of("w", Tensor.of(new float[]{1.5f, -2}, 2)), Map.of("format", "pt"));
        byte[] b = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + n) % 8, "data starts aligned");
        String header = new String(b, 8, (int) n, StandardCharsets.UTF_8).strip();
        assertEquals("{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", header);
        assertEquals(8 + n + 8, b.length);
        ByteBuffer data = ByteBuffer.wrap(b, (int) (8 + n), 8).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1.5f, data.getFloat());
        assertEquals(-2f, data.getFloat());
    }

    /** A file written by hand, the way another writer (with a different key order and no padding) might. */
    @Test void readsAForeignFile() throws IOException {
        String header = "{\"b\":{\"data_offsets\":[4,12],\"shape\":[1,2],\"dtype\":\"I32\"}, \"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + 12).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(new byte[]{1, 2, 3, 4}).putInt(-5).putInt(6);
        Path f = dir.resolve("foreign.safetensors");
        Files.write(f, b.array());
        Safetensors.Contents c = Safetensors.read(f);
        assertArrayEquals(new double[]{1, 2, 3, 4}, c.tensors().get("a").toDoubleArray());
        assertArrayEquals(new double[]{-5, 6}, c.tensors().get("b").toDoubleArray());
        assertArrayEquals(new int[]{1, 2}, c.tensors().get("b").shape());
    }

    @Test void corruptFilesAreReportedClearly() throws IOException {
        Path good = dir.resolve("good.safetensors");
        Safetensors.write(good, sample(), Map.of());
        byte[] b = Files.readAllBytes(good);

        assertFormatError(Arrays.copyOf(b, b.length - 3), "truncated");
        assertFormatError(Arrays.copyOf(b, 5), "only 5 bytes");
        byte[] hugeHeader = b.clone();
        hugeHeader[6] = 1;
        assertFormatError(hugeHeader, "header length");
        byte[] notJson = b.clone();
        notJson[8] = 'x';
        assertFormatError(notJson, "not JSON");
        String badDtype = "{\"w\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[0,1]}}";
        assertFormatError(file(badDtype, 1), "F8_E5M2");
        String wrongSize = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        assertFormatError(file(wrongSize, 8), "8 bytes for shape [3]");
        String outside = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertFormatError(file(outside, 4), "outside");
        String hole = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}";
        assertFormatError(file(hole, 4), "hole");
    }

    /** Hand-made hostile headers: each is the documented FormatException naming the file, never an allocation. */
    @Test void hostileHeadersAreFormatErrorsNotCrashes() throws IOException {
        // 2^40 elements, offsets to match: the data is not there, and nothing of that size is allocated
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,4398046511104]}}", 8), "outside the 8 data bytes");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],\"data_offsets\":[0,8]}}", 8), "8 bytes for shape [1048576, 1048576]");
        // a shape whose byte count overflows a long to exactly 0, beside offsets [0, 0]
        assertFormatError(file("{\"w\":{\"dtype\":\"U8\",\"shape\":[2097152,2097152,4194304],\"data_offsets\":[0,0]}}", 0), "0 bytes for shape [2097152, 2097152, 4194304]");
        // the same with F32: 2^62 elements of 4 bytes wrap to 0
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}", 4), "4 bytes for shape [2147483647, 2147483647, 2147483647]");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "bad shape");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648],\"data_offsets\":[0,4]}}", 4), "bad shape");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4), "bad shape");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 4), "not JSON");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4), "outside");
        assertFormatError(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4), "outside");
        assertFormatError(file("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4), "overlaps");
        assertFormatError(file("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2), "duplicate key");
        assertFormatError(file("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1), "no dtype");
        assertFormatError(file("{\"__metadata__\":{\"k\":[1]}}", 0), "not a string");
        assertFormatError(file("[1]", 0), "not a JSON object");
        // nesting a million deep would overflow a recursive parser's stack; the depth is bounded
        assertFormatError(file("{\"w\":" + "[".repeat(1_000_000) + "]".repeat(1_000_000) + "}", 0), "nesting too deep");
        // a header length that is negative, or larger than the file
        for (long len : new long[]{-1, Long.MIN_VALUE, 1L << 40, Long.MAX_VALUE}) {
            byte[] b = file("{}", 0);
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, len);
            assertFormatError(b, "header length " + len);
        }
    }

    private static byte[] file(String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).array();
    }

    private void assertFormatError(byte[] bytes, String expected) throws IOException {
        Path f = dir.resolve("bad.safetensors");
        Files.write(f, bytes);
        IOException e = assertThrows(Safetensors.FormatException.class, () -> Safetensors.read(f));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
        assertTrue(e.getMessage().contains("bad.safetensors"), "the message names the file");
    }

    /** A write that dies half-way (the disk fills, the process is killed) leaves the previous checkpoint intact. */
    @Test void aTornWriteLeavesTheOldFileInPlace() throws IOException {
        Path f = dir.resolve("model.safetensors");
        Safetensors.write(f, Map.of("w", Tensor.of(new float[]{1, 2, 3}, 3)), Map.of("epoch", "1"));
        byte[] before = Files.readAllBytes(f);

        Map<String, Tensor> bigger = Map.of("w", Tensor.zeros(1000));
        IOException crash = assertThrows(IOException.class, () -> Safetensors.write(f, bigger, Map.of("epoch", "2"), ch -> new WritableByteChannel() {
            long written;

            @Override public int write(ByteBuffer src) throws IOException {
                if (written > 500) throw new IOException("simulated crash after " + written + " bytes");
                int n = Math.min(src.remaining(), 100);
                ByteBuffer part = src.slice().limit(n);
                ch.write(part);
                src.position(src.position() + n);
                written += n;
                return n;
            }

            @Override public boolean isOpen() { return true; }

            @Override public void close() {}
        }));
        assertTrue(crash.getMessage().contains("simulated crash"));
        assertArrayEquals(before, Files.readAllBytes(f), "the old file is untouched");
        assertEquals("1", Safetensors.read(f).metadata().get("epoch"));
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file is left behind");
        }
    }
}
