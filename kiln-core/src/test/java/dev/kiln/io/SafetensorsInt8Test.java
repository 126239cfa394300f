package dev.kiln.io;

import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** I8 entries: a file as another writer lays it out reads back signed, and Kiln's own I8 files round-trip beside tensors. */
class SafetensorsInt8Test {
    @TempDir Path dir;

    @Test void aHandWrittenI8EntryReadsAsSignedBytes() throws Exception {
        String header = "{\"q\":{\"dtype\":\"I8\",\"shape\":[2,2],\"data_offsets\":[0,4]},\"s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        out.writeBytes(h);
        out.writeBytes(new byte[]{-1, 127, -127, 0});
        out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0.5f).array());
        Path file = Files.write(dir.resolve("h.safetensors"), out.toByteArray());
        Safetensors.Contents c = Safetensors.read(file);
        assertArrayEquals(new byte[]{-1, 127, -127, 0}, c.codes().get("q").values());
        assertArrayEquals(new int[]{2, 2}, c.codes().get("q").shape());
        assertEquals(0.5, c.tensors().get("s").item(), 0);
        assertFalse(c.tensors().containsKey("q"));
    }

    @Test void fp8EntriesRoundTripAsF8E4M3() throws Exception {
        Path file = dir.resolve("f.safetensors");
        byte[] codes = {0x7E, (byte) 0xFE, 0, 0x38, 1};   // 448, -448, 0, 1, the smallest subnormal
        Safetensors.write(file, Map.of(), Map.of("w", new Safetensors.Codes(QuantFormat.FP8_E4M3, codes, new int[]{5})), Map.of());
        String header = new String(Files.readAllBytes(file), 8, 60, StandardCharsets.UTF_8);
        assertTrue(header.contains("\"dtype\":\"F8_E4M3\""), header);
        Safetensors.Codes c = Safetensors.read(file).codes().get("w");
        assertEquals(QuantFormat.FP8_E4M3, c.format());
        assertArrayEquals(codes, c.values());
    }

    @Test void kilnsI8EntriesRoundTripAndAWrongSizeIsRefused() throws Exception {
        Path file = dir.resolve("k.safetensors");
        byte[] codes = {-127, -3, 0, 5, 127, 1};
        Safetensors.write(file, Map.of("b", Tensor.of(1f, 2f)), Map.of("w", new Safetensors.Codes(QuantFormat.INT8, codes, new int[]{2, 3})), Map.of("k", "v"));
        Safetensors.Contents c = Safetensors.read(file);
        assertArrayEquals(codes, c.codes().get("w").values());
        assertArrayEquals(new float[]{1, 2}, c.tensors().get("b").toFloatArray());
        assertEquals("v", c.metadata().get("k"));
        assertThrows(IllegalArgumentException.class, () -> new Safetensors.Codes(QuantFormat.INT8, codes, new int[]{4, 2}));
        assertThrows(IllegalArgumentException.class, () -> Safetensors.write(dir.resolve("x.safetensors"), Map.of("w", Tensor.of(1f)),
                Map.of("w", new Safetensors.Codes(QuantFormat.INT8, new byte[1], new int[]{1})), Map.of()));
    }
}
