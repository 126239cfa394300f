package dev.kiln.io;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Fuzzes {@link Safetensors#read}: a valid file, damaged at random (bytes, the header length, the JSON header's
 * numbers and dtypes), must read or fail with {@link Safetensors.FormatException} naming the file, nothing else.
 * Tries: {@code jqwik.tries.default} (300 in CI; the long run sets it on the command line).
 */
class SafetensorsFuzzTest {
    private static Path dir, file;
    private static byte[] valid;

    @BeforeContainer static void writeAValidFile() throws IOException {
        dir = Files.createTempDirectory("kiln-fuzz-safetensors");
        Path original = dir.resolve("original.safetensors");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("w", Tensor.fromHost(new float[]{1, 2, 3, 4, 5, 6}, DType.FLOAT32, new int[]{2, 3}, Device.CPU));
        tensors.put("steps", Tensor.fromHost(new long[]{7, 8}, DType.INT64, new int[]{2}, Device.CPU));
        tensors.put("mask", Tensor.fromHost(new byte[]{1, 0, 1}, DType.UINT8, new int[]{3}, Device.CPU));
        tensors.put("h", Tensor.fromHost(new short[]{0x3f80, 0x4000}, DType.BFLOAT16, new int[]{1, 2}, Device.CPU));
        tensors.put("empty", Tensor.zeros(0, 4));   // zero data bytes: what a shape overflowing to 0 would match
        Safetensors.write(original, tensors, Map.of("epoch", "3"));
        valid = Files.readAllBytes(original);
        file = dir.resolve("fuzzed.safetensors");
    }

    @AfterContainer static void removeTheFiles() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Property void aDamagedFileReadsOrIsAFormatErrorNamingIt(@ForAll long seed) throws IOException {
        Files.write(file, Mutations.mutateSafetensors(valid, seed));
        try {
            var contents = Safetensors.read(file);
            for (var e : contents.tensors().entrySet()) {
                // what was read is consistent: the shape's exact element count is what the tensor holds
                java.math.BigInteger numel = java.math.BigInteger.ONE;
                for (int d : e.getValue().shape()) numel = numel.multiply(java.math.BigInteger.valueOf(d));
                if (!numel.equals(java.math.BigInteger.valueOf(e.getValue().numel())) || numel.bitLength() > 31) {
                    throw new AssertionError("seed " + seed + ": tensor '" + e.getKey() + "' read with shape " + java.util.Arrays.toString(e.getValue().shape()));
                }
            }
            Statistics.collect("read");
        } catch (Safetensors.FormatException e) {
            if (!e.getMessage().contains(file.toString())) throw new AssertionError("seed " + seed + ": the message does not name the file: " + e.getMessage(), e);
            Statistics.collect("format error");
        } catch (AssertionError a) {
            throw a;
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": Safetensors.read threw " + t, t);
        }
    }
}
