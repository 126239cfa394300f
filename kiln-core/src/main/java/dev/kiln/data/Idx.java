package dev.kiln.data;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Reads IDX files (the format of MNIST and Fashion-MNIST), gzipped or raw: a magic number 0x0000TTRR (type TT,
 * rank RR), RR big-endian 32-bit dimensions, then the data. Only unsigned bytes (type 0x08) are supported, which
 * is what those data sets use. Every inconsistency is reported with the file's name.
 */
public final class Idx {
    private Idx() {}

    /** The contents of an IDX file of unsigned bytes. */
    public record Array(int[] dims, byte[] data) {
        public Array {
            long n = 1;
            for (int d : dims) n *= d;
            if (n != data.length) throw new IllegalArgumentException("IDX array: " + data.length + " bytes for dims " + Arrays.toString(dims));
        }

        /** The unsigned value at flat index i. */
        public int get(int i) { return data[i] & 0xFF; }
    }

    /** A file that is not a well-formed IDX file; the message says what is wrong and where. */
    public static final class FormatException extends IOException {
        public FormatException(Path file, String problem) { super(file + ": " + problem); }
    }

    private static final int UBYTE = 0x08;

    public static Array read(Path file) throws IOException {
        byte[] bytes;
        try {
            bytes = decompressIfGzipped(file);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "no such file");
        }
        if (bytes.length < 4) throw new FormatException(file, "not an IDX file: only " + bytes.length + " bytes");
        if (bytes[0] != 0 || bytes[1] != 0) {
            throw new FormatException(file, String.format("not an IDX file: bad magic number 0x%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3]));
        }
        int type = bytes[2] & 0xFF, rank = bytes[3] & 0xFF;
        if (type != UBYTE) throw new FormatException(file, String.format("IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)", type));
        if (rank == 0) throw new FormatException(file, "IDX rank 0");
        int headerBytes = 4 + 4 * rank;
        if (bytes.length < headerBytes) throw new FormatException(file, "truncated in the header (" + bytes.length + " bytes, the header needs " + headerBytes + ")");
        int[] dims = new int[rank];
        long expected = 1;
        for (int i = 0; i < rank; i++) {
            int o = 4 + 4 * i;
            dims[i] = (bytes[o] & 0xFF) << 24 | (bytes[o + 1] & 0xFF) << 16 | (bytes[o + 2] & 0xFF) << 8 | (bytes[o + 3] & 0xFF);
            if (dims[i] < 0) throw new FormatException(file, "negative dimension " + dims[i]);
            expected *= dims[i];
        }
        long actual = bytes.length - headerBytes;
        if (actual < expected) throw new FormatException(file, "truncated: dims " + Arrays.toString(dims) + " need " + expected + " data bytes, found " + actual);
        if (actual > expected) throw new FormatException(file, (actual - expected) + " unexpected bytes after the data of dims " + Arrays.toString(dims));
        return new Array(dims, Arrays.copyOfRange(bytes, headerBytes, bytes.length));
    }

    /** The file's bytes, gunzipped when it starts with the gzip magic (1f 8b), whatever its name. */
    private static byte[] decompressIfGzipped(Path file) throws IOException {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            in.mark(2);
            boolean gz = in.read() == 0x1f && in.read() == 0x8b;
            in.reset();
            if (!gz) return in.readAllBytes();
            try (GZIPInputStream z = new GZIPInputStream(in, 1 << 16)) {
                return z.readAllBytes();
            } catch (ZipException e) {
                throw new FormatException(file, "corrupt gzip data (" + e.getMessage() + ")");
            } catch (java.io.EOFException e) {
                throw new FormatException(file, "truncated gzip data");
            }
        }
    }
}
