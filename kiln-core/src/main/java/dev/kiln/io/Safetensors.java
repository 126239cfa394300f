package dev.kiln.io;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The safetensors format (what Hugging Face and PyTorch users share weights in): an 8-byte little-endian header
 * length, a JSON header mapping each name to {dtype, shape, data_offsets} plus an optional string map
 * {@code __metadata__}, then the tensors' bytes, little-endian, back to back. Files are written atomically:
 * a crash leaves the previous file in place, never half of a new one.
 */
public final class Safetensors {
    private Safetensors() {}

    /**
     * What a file holds: tensors on the CPU in file order, the metadata strings, and the I8 and F8_E4M3 entries
     * (quantized weights; Kiln tensors have no 8-bit signed or float type, so they come as arrays of codes).
     */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata, Map<String, Codes> codes) {
        /** Contents without 8-bit entries. */
        public Contents(Map<String, Tensor> tensors, Map<String, String> metadata) { this(tensors, metadata, Map.of()); }
    }

    /** An 8-bit entry: I8 (int8 codes) or F8_E4M3 (FP8 codes), one byte each, row-major, of the given shape. */
    public record Codes(QuantFormat format, byte[] values, int[] shape) {
        public Codes {
            java.util.Objects.requireNonNull(format, "format");
            if (values.length != Shape.numel(shape)) throw new IllegalArgumentException("Codes: " + values.length + " values for shape " + Shape.str(shape));
        }
    }

    /** A file that is not valid safetensors; the message names the file and what is wrong with it. */
    public static final class FormatException extends IOException {
        /** The error for {@code file}, saying what {@code problem} it has. */
        public FormatException(Path file, String problem) { super(file + ": not a valid safetensors file: " + problem); }
    }

    private static final String METADATA = "__metadata__";
    private static final long MAX_HEADER = 100L << 20; // the reference implementation's limit
    private static final long MAX_TENSOR_BYTES = Integer.MAX_VALUE - 8; // one tensor's bytes are read into one array

    /** The dtype names of the format. */
    static String code(DType t) {
        return switch (t) {
            case FLOAT32 -> "F32";
            case FLOAT64 -> "F64";
            case BFLOAT16 -> "BF16";
            case FLOAT16 -> "F16";
            case INT64 -> "I64";
            case INT32 -> "I32";
            case UINT8 -> "U8";
            case BOOL -> "BOOL";
        };
    }

    static DType dtypeOf(String code) {
        for (DType t : DType.values()) if (code(t).equals(code)) return t;
        return null;
    }

    // ------------------------------------------------------------------ writing

    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        write(file, tensors, Map.of(), metadata, UnaryOperator.identity());
    }

    /** Writes the tensors, then the 8-bit entries (quantized weights), and the metadata. */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, Codes> codes, Map<String, String> metadata) throws IOException {
        write(file, tensors, codes, metadata, UnaryOperator.identity());
    }

    /** {@code wrap} lets a test put a failing channel between the writer and the file (a simulated crash). */
    static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata,
                      UnaryOperator<WritableByteChannel> wrap) throws IOException {
        write(file, tensors, Map.of(), metadata, wrap);
    }

    private static void write(Path file, Map<String, Tensor> tensors, Map<String, Codes> codes, Map<String, String> metadata,
                              UnaryOperator<WritableByteChannel> wrap) throws IOException {
        byte[] header = header(tensors, codes, metadata);
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + file.getFileName() + ".", ".tmp");
        boolean done = false;
        try {
            readableByAll(tmp);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                WritableByteChannel out = wrap.apply(ch);
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
                writeFully(out, len);
                writeFully(out, ByteBuffer.wrap(header));
                for (Tensor t : tensors.values()) writeFully(out, bytes(t));
                for (Codes a : codes.values()) writeFully(out, ByteBuffer.wrap(a.values()));
                ch.force(true); // the data is on disk before the name points at it
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            done = true;
            syncDirectory(dir);
        } finally {
            if (!done) Files.deleteIfExists(tmp);
        }
    }

    /** A temporary file is made owner-only (0600); a checkpoint gets the usual 0644, like any file the user writes. */
    private static void readableByAll(Path file) throws IOException {
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException notPosix) {
            // no POSIX permissions on this file system: the file keeps its default access
        }
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) out.write(b);
    }

    /** Makes the rename itself durable; some file systems refuse to open a folder, which only weakens that. */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException ignored) {
            // the file's contents are already synced; only the rename's durability depends on this
        }
    }

    private static byte[] header(Map<String, Tensor> tensors, Map<String, Codes> codes, Map<String, String> metadata) {
        StringBuilder sb = new StringBuilder("{");
        if (metadata != null && !metadata.isEmpty()) {
            sb.append(Json.quote(METADATA)).append(":{");
            String sep = "";
            for (var e : metadata.entrySet()) {
                sb.append(sep).append(Json.quote(e.getKey())).append(':').append(Json.quote(e.getValue()));
                sep = ",";
            }
            sb.append('}');
        }
        long offset = 0;
        for (var e : tensors.entrySet()) {
            Tensor t = e.getValue();
            offset = entryHeader(sb, e.getKey(), code(t.dtype()), t.shape(), offset, t.numel() * t.dtype().byteSize());
        }
        for (var e : codes.entrySet()) {
            if (tensors.containsKey(e.getKey())) throw new IllegalArgumentException("safetensors: '" + e.getKey() + "' is both a tensor and an 8-bit entry");
            offset = entryHeader(sb, e.getKey(), codeOf(e.getValue().format()), e.getValue().shape(), offset, e.getValue().values().length);
        }
        sb.append('}');
        // pad with spaces so the data starts 8-byte aligned, as the reference writer does
        while ((sb.toString().getBytes(StandardCharsets.UTF_8).length) % 8 != 0) sb.append(' ');
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** Appends one entry's header; returns the offset after its bytes. */
    private static long entryHeader(StringBuilder sb, String name, String code, int[] shape, long offset, long bytes) {
        if (name.equals(METADATA)) throw new IllegalArgumentException("safetensors: '__metadata__' cannot name a tensor");
        if (sb.length() > 1) sb.append(',');
        sb.append(Json.quote(name)).append(":{\"dtype\":\"").append(code).append("\",\"shape\":[");
        for (int i = 0; i < shape.length; i++) sb.append(i > 0 ? "," : "").append(shape[i]);
        sb.append("],\"data_offsets\":[").append(offset).append(',').append(offset + bytes).append("]}");
        return offset + bytes;
    }

    /** The tensor's elements, row-major and little-endian. */
    private static ByteBuffer bytes(Tensor t) {
        Object a = t.toHostArray();
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(t.numel() * t.dtype().byteSize())).order(ByteOrder.LITTLE_ENDIAN);
        switch (a) {
            case float[] f -> b.asFloatBuffer().put(f);
            case double[] d -> b.asDoubleBuffer().put(d);
            case long[] l -> b.asLongBuffer().put(l);
            case int[] i -> b.asIntBuffer().put(i);
            case short[] s -> b.asShortBuffer().put(s);
            case byte[] y -> b.put(0, y);
            default -> throw new IllegalStateException("unexpected host array " + a.getClass());
        }
        return b;
    }

    // ------------------------------------------------------------------ reading

    /**
     * Reads a safetensors file. A crafted or damaged file fails with {@link FormatException} and nothing else: the
     * header length is checked against the file's size before it is read, the JSON's nesting is bounded, every
     * tensor's shape, dtype and data offsets are checked (the data covered exactly, no overlaps, no holes, no shape
     * whose element count overflows or exceeds the data) before any tensor's bytes are allocated.
     *
     * @throws FormatException the file is not valid safetensors; the message names the file and the problem
     * @throws IOException the file cannot be read
     */
    public static Contents read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new FormatException(file, "only " + size + " bytes");
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0, file);
            long headerLen = len.getLong(0);
            if (headerLen < 2 || headerLen > MAX_HEADER || headerLen > size - 8) {
                throw new FormatException(file, "header length " + headerLen + " does not fit a file of " + size + " bytes");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            readFully(ch, hb, 8, file);
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            long dataLen = size - 8 - headerLen;
            parseHeader(file, new String(hb.array(), StandardCharsets.UTF_8), dataLen, entries, metadata);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            Map<String, Codes> codes = new LinkedHashMap<>();
            for (var e : entries.entrySet()) {
                Entry en = e.getValue();
                ByteBuffer data = ByteBuffer.allocate((int) (en.end - en.begin)).order(ByteOrder.LITTLE_ENDIAN);
                readFully(ch, data, 8 + headerLen + en.begin, file);
                if (en.dtype == null) codes.put(e.getKey(), new Codes(en.quant, data.array(), en.shape));
                else tensors.put(e.getKey(), tensor(data, en.dtype, en.shape));
            }
            return new Contents(tensors, metadata, codes);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long position, Path file) throws IOException {
        long p = position;
        while (b.hasRemaining()) {
            int n = ch.read(b, p);
            if (n < 0) throw new FormatException(file, "truncated");
            p += n;
        }
        b.flip();
    }

    /** One header entry; dtype null: 8-bit codes of {@code quant}. */
    private record Entry(DType dtype, QuantFormat quant, int[] shape, long begin, long end) {}

    /** The format's codes for signed bytes and FP8 E4M3, which Kiln reads into {@link Codes}. */
    private static final String I8 = "I8", F8_E4M3 = "F8_E4M3";

    private static String codeOf(QuantFormat f) { return f == QuantFormat.INT8 ? I8 : F8_E4M3; }

    private static void parseHeader(Path file, String json, long dataLen, Map<String, Entry> entries, Map<String, String> metadata)
            throws FormatException {
        Object root;
        try {
            root = Json.parse(json);
        } catch (Json.ParseException e) {
            throw new FormatException(file, "header is not JSON (" + e.getMessage() + ")");
        }
        if (!(root instanceof Map<?, ?> map)) throw new FormatException(file, "header is not a JSON object");
        for (var e : map.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals(METADATA)) {
                if (!(e.getValue() instanceof Map<?, ?> meta)) throw new FormatException(file, "__metadata__ is not an object");
                for (var m : meta.entrySet()) {
                    if (!(m.getValue() instanceof String v)) throw new FormatException(file, "__metadata__ value for '" + m.getKey() + "' is not a string");
                    metadata.put((String) m.getKey(), v);
                }
                continue;
            }
            entries.put(name, entry(file, name, e.getValue(), dataLen));
        }
        // the data must be covered exactly: no holes, no overlaps
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin));
        long at = 0;
        for (Entry en : sorted) {
            if (en.begin != at) throw new FormatException(file, "tensor data " + (en.begin < at ? "overlaps" : "has a hole") + " at byte " + Math.min(at, en.begin));
            at = en.end;
        }
        if (at != dataLen) throw new FormatException(file, "the header describes " + at + " data bytes but the file has " + dataLen + " (truncated or padded?)");
    }

    private static Entry entry(Path file, String name, Object v, long dataLen) throws FormatException {
        if (!(v instanceof Map<?, ?> m)) throw new FormatException(file, "entry '" + name + "' is not an object");
        if (!(m.get("dtype") instanceof String code)) throw new FormatException(file, "entry '" + name + "' has no dtype");
        DType dtype = dtypeOf(code);
        QuantFormat quant = code.equals(I8) ? QuantFormat.INT8 : code.equals(F8_E4M3) ? QuantFormat.FP8_E4M3 : null;
        if (dtype == null && quant == null) throw new FormatException(file, "entry '" + name + "' has dtype " + code + ", which Kiln does not support");
        if (!(m.get("shape") instanceof List<?> shapeList)) throw new FormatException(file, "entry '" + name + "' has no shape");
        int[] shape = new int[shapeList.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!(shapeList.get(i) instanceof Long d) || d < 0 || d > Integer.MAX_VALUE) {
                throw new FormatException(file, "entry '" + name + "' has a bad shape " + shapeList);
            }
            shape[i] = (int) (long) d;
        }
        // bytes the shape needs, checked step by step: [2^21, 2^21, 2^22] would overflow a long to 0
        long bytes = Arrays.stream(shape).anyMatch(d -> d == 0) ? 0 : dtype == null ? 1 : dtype.byteSize();
        boolean beyondTheData = false;
        for (int d : shape) {
            if (bytes == 0) break;
            if (bytes > dataLen / d) { beyondTheData = true; break; }
            bytes *= d;
        }
        if (!(m.get("data_offsets") instanceof List<?> off) || off.size() != 2
                || !(off.get(0) instanceof Long begin) || !(off.get(1) instanceof Long end)) {
            throw new FormatException(file, "entry '" + name + "' has no data_offsets [begin, end]");
        }
        if (begin < 0 || end < begin || end > dataLen) {
            throw new FormatException(file, "entry '" + name + "' data_offsets " + off + " lie outside the " + dataLen + " data bytes the file holds (truncated?)");
        }
        if (beyondTheData || end - begin != bytes) {
            throw new FormatException(file, "entry '" + name + "' has " + (end - begin) + " bytes for shape " + Shape.str(shape) + " of " + code);
        }
        if (bytes > MAX_TENSOR_BYTES) throw new FormatException(file, "entry '" + name + "' has " + bytes + " bytes, more than one Java array holds");
        return new Entry(dtype, quant, shape, begin, end);
    }

    private static Tensor tensor(ByteBuffer b, DType dtype, int[] shape) {
        int n = (int) Shape.numel(shape);
        Object a = switch (dtype) {
            case FLOAT32 -> { float[] f = new float[n]; b.asFloatBuffer().get(f); yield f; }
            case FLOAT64 -> { double[] d = new double[n]; b.asDoubleBuffer().get(d); yield d; }
            case INT64 -> { long[] l = new long[n]; b.asLongBuffer().get(l); yield l; }
            case INT32 -> { int[] i = new int[n]; b.asIntBuffer().get(i); yield i; }
            case BFLOAT16, FLOAT16 -> { short[] s = new short[n]; b.asShortBuffer().get(s); yield s; }
            case UINT8, BOOL -> { byte[] y = new byte[n]; b.get(y); yield y; }
        };
        return Tensor.fromHost(a, dtype, shape, Device.CPU);
    }
}
