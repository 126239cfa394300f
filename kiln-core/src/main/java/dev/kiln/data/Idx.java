package dev.kiln.data;

import java.io.BufferedInputStream;
import java.io.EOFException;
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
    /** The most data bytes one Java array holds. */
    private static final long MAX_DATA = Integer.MAX_VALUE - 8;

    /**
     * Reads an IDX file, gunzipping it when it starts with the gzip magic (1f 8b), whatever its name.
     *
     * @throws FormatException anything that is not a well-formed IDX file of unsigned bytes (bad magic, a header or
     *     data shorter or longer than the dimensions say, dimensions whose product overflows, corrupt or truncated
     *     gzip data); nothing is allocated before the header's sizes are checked against what the file holds
     * @throws NoSuchFileException no such file
     */
    public static Array read(Path file) throws IOException {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            in.mark(2);
            boolean gz = in.read() == 0x1f && in.read() == 0x8b;
            in.reset();
            if (!gz) return parse(file, in, Files.size(file));
            try (GZIPInputStream z = new GZIPInputStream(in, 1 << 16)) {
                return parse(file, z, -1);
            } catch (ZipException e) {
                throw new FormatException(file, "corrupt gzip data (" + e.getMessage() + ")");
            } catch (EOFException e) {
                throw new FormatException(file, "truncated gzip data");
            }
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "no such file");
        }
    }

    /**
     * The header, then exactly the data bytes it describes. {@code fileSize} is the raw file's size, or -1 for a gzip
     * stream, whose length is unknown until read: its data is read in chunks, so a crafted header never makes an
     * allocation larger than the bytes actually there.
     */
    private static Array parse(Path file, InputStream in, long fileSize) throws IOException {
        byte[] magic = in.readNBytes(4);
        if (magic.length < 4) throw new FormatException(file, "not an IDX file: only " + magic.length + " bytes");
        if (magic[0] != 0 || magic[1] != 0) {
            throw new FormatException(file, String.format("not an IDX file: bad magic number 0x%02x%02x%02x%02x", magic[0], magic[1], magic[2], magic[3]));
        }
        int type = magic[2] & 0xFF, rank = magic[3] & 0xFF;
        if (type != UBYTE) throw new FormatException(file, String.format("IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)", type));
        if (rank == 0) throw new FormatException(file, "IDX rank 0");
        int headerBytes = 4 + 4 * rank;
        byte[] dimBytes = in.readNBytes(4 * rank);
        if (dimBytes.length < 4 * rank) {
            throw new FormatException(file, "truncated in the header (" + (4 + dimBytes.length) + " bytes, the header needs " + headerBytes + ")");
        }
        int[] dims = new int[rank];
        boolean empty = false;
        for (int i = 0; i < rank; i++) {
            int o = 4 * i;
            dims[i] = (dimBytes[o] & 0xFF) << 24 | (dimBytes[o + 1] & 0xFF) << 16 | (dimBytes[o + 2] & 0xFF) << 8 | (dimBytes[o + 3] & 0xFF);
            if (dims[i] < 0) throw new FormatException(file, "negative dimension " + dims[i]);
            empty |= dims[i] == 0;
        }
        // the product is checked step by step: 4 dimensions of 65536 would overflow a long to 0
        long expected = empty ? 0 : 1;
        for (int d : dims) {
            if (expected == 0) break;
            if (expected > MAX_DATA / d) throw new FormatException(file, "dims " + Arrays.toString(dims) + " describe more than " + MAX_DATA + " bytes, more than one array holds");
            expected *= d;
        }
        if (fileSize >= 0 && fileSize - headerBytes < expected) {
            throw new FormatException(file, "truncated: dims " + Arrays.toString(dims) + " need " + expected + " data bytes, found " + (fileSize - headerBytes));
        }
        byte[] data = in.readNBytes((int) expected);
        if (data.length < expected) throw new FormatException(file, "truncated: dims " + Arrays.toString(dims) + " need " + expected + " data bytes, found " + data.length);
        long extra = fileSize >= 0 ? fileSize - headerBytes - expected : countUpTo(in, 1 << 20);
        if (extra > 0) throw new FormatException(file, (extra >= 1 << 20 && fileSize < 0 ? "at least " : "") + extra + " unexpected bytes after the data of dims " + Arrays.toString(dims));
        return new Array(dims, data);
    }

    /** How many bytes are left in {@code in}, counting at most {@code limit}: a gzip bomb is not read to its end. */
    private static long countUpTo(InputStream in, long limit) throws IOException {
        long n = 0;
        byte[] buf = new byte[8192];
        for (int r; n < limit && (r = in.read(buf, 0, (int) Math.min(buf.length, limit - n))) > 0; ) n += r;
        return n;
    }
}
