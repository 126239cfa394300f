package dev.kiln.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Random damage to a valid file, for the readers' fuzz properties: every mutation is a function of the seed, so a
 * failing seed reproduces the exact input.
 */
public final class Mutations {
    private Mutations() {}

    /** Values a crafted header would use: signs, powers of two at the int and long edges, and their neighbours. */
    static final long[] EXTREMES = {0, 1, -1, 2, 255, 256, 65535, 65536, Integer.MAX_VALUE, Integer.MAX_VALUE + 1L,
            Integer.MIN_VALUE, 0xFFFF_FFFFL, 1L << 32, 1L << 40, 1L << 62, Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - 7};

    /** One to four random mutations of {@code valid}: bit flips, extreme bytes and words, truncation, insertion, deletion. */
    public static byte[] mutate(byte[] valid, long seed) {
        Random r = new Random(seed);
        byte[] b = valid.clone();
        for (int m = 1 + r.nextInt(4); m > 0; m--) b = mutateOnce(b, r);
        return b;
    }

    private static byte[] mutateOnce(byte[] b, Random r) {
        int n = b.length;
        int at = n == 0 ? 0 : r.nextInt(n);
        switch (r.nextInt(8)) {
            case 0 -> { if (n > 0) b[at] ^= (byte) (1 << r.nextInt(8)); }
            case 1 -> { if (n > 0) b[at] = (byte) new int[]{0, 0xFF, 0x7F, 0x80, 1}[r.nextInt(5)]; }
            case 2 -> { return Arrays.copyOf(b, r.nextInt(n + 1)); }
            case 3 -> {
                byte[] extra = new byte[1 + r.nextInt(16)];
                r.nextBytes(extra);
                return splice(b, at, 0, extra);
            }
            case 4 -> { return splice(b, at, Math.min(n - at, 1 + r.nextInt(16)), new byte[0]); }
            case 5, 6 -> {
                // an extreme 4- or 8-byte word, either byte order: a length, a dimension, an offset
                int width = r.nextBoolean() ? 4 : 8;
                if (n < width) return b;
                int p = r.nextInt(n - width + 1);
                ByteBuffer w = ByteBuffer.wrap(b, p, width).order(r.nextBoolean() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
                long v = EXTREMES[r.nextInt(EXTREMES.length)];
                if (width == 4) w.putInt(p, (int) v); else w.putLong(p, v);
            }
            default -> { if (n > 0) b[at] = (byte) r.nextInt(256); }
        }
        return b;
    }

    /** {@code b} with {@code remove} bytes at {@code at} replaced by {@code insert}. */
    public static byte[] splice(byte[] b, int at, int remove, byte[] insert) {
        byte[] out = new byte[b.length - remove + insert.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(insert, 0, out, at, insert.length);
        System.arraycopy(b, at + remove, out, at + insert.length, b.length - at - remove);
        return out;
    }

    private static final Pattern NUMBER = Pattern.compile("-?\\d+");
    private static final String[] HOSTILE_NUMBERS = {"-1", "0", "2147483647", "2147483648", "4294967296", "1099511627776",
            "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e400", "1.5", "99999999999999999999"};

    /**
     * Damage aimed at a safetensors file: its 8-byte header length set to an extreme, numbers in the JSON header
     * (shapes, offsets) replaced by extreme ones, a dtype renamed, a value wrapped in deep nesting; or, half of the
     * time, the byte-level mutations of {@link #mutate}.
     */
    public static byte[] mutateSafetensors(byte[] valid, long seed) {
        Random r = new Random(seed);
        if (r.nextBoolean()) return mutate(valid, r.nextLong());
        long headerLen = ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(valid, 8, (int) headerLen, StandardCharsets.UTF_8);
        byte[] data = Arrays.copyOfRange(valid, 8 + (int) headerLen, valid.length);
        Long lengthField = null;
        for (int m = 1 + r.nextInt(3); m > 0; m--) {
            switch (r.nextInt(6)) {
                case 0 -> lengthField = r.nextBoolean() ? EXTREMES[r.nextInt(EXTREMES.length)] : headerLen + r.nextInt(17) - 8;
                case 1, 2 -> header = replaceNth(header, NUMBER, r, HOSTILE_NUMBERS[r.nextInt(HOSTILE_NUMBERS.length)]);
                case 4 -> header = replaceNth(header, SHAPE, r, "\"shape\":" + bigDims(r));
                case 3 -> header = replaceNth(header, Pattern.compile("\"(F32|I64|U8|BF16|F64)\""), r,
                        new String[]{"\"F8\"", "\"\"", "1", "null", "[]", "\"BOOL\"", "\"I32\""}[r.nextInt(7)]);
                default -> {
                    int depth = r.nextInt(2) == 0 ? 50 + r.nextInt(30) : 5000 + r.nextInt(100_000);
                    header = replaceNth(header, NUMBER, r, "[".repeat(depth) + "1" + "]".repeat(r.nextInt(depth + 1)));
                }
            }
        }
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(lengthField != null ? lengthField : h.length).put(h).put(data);
        return out.array();
    }

    private static final Pattern SHAPE = Pattern.compile("\"shape\":\\[[^\\]]*\\]");
    private static final long[] BIG_DIMS = {0, 1, 3, 1 << 16, 1 << 20, 1 << 21, 1 << 22, 1 << 30, Integer.MAX_VALUE};

    /**
     * One to five dimensions, most of them large powers of two: products that overflow an int, or a long to exactly
     * 0 (2^64), which a reader multiplying unchecked would take for an empty tensor.
     */
    public static String bigDims(Random r) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0, n = 1 + r.nextInt(5); i < n; i++) sb.append(i > 0 ? "," : "").append(BIG_DIMS[r.nextInt(BIG_DIMS.length)]);
        return sb.append(']').toString();
    }

    /**
     * An IDX header with 1 to 5 dimensions from {@link #bigDims} in place of {@code valid}'s, the data kept or (half
     * of the time) dropped: no data is what dims overflowing to 0 would match.
     */
    public static byte[] withBigIdxDims(byte[] valid, long seed) {
        Random r = new Random(seed);
        int rank = valid[3] & 0xFF;
        String[] dims = bigDims(r).replaceAll("[\\[\\]]", "").split(",");
        int dataBytes = r.nextBoolean() ? valid.length - 4 - 4 * rank : 0;
        ByteBuffer out = ByteBuffer.allocate(4 + 4 * dims.length + dataBytes);
        out.put(valid, 0, 3).put((byte) dims.length);
        for (String d : dims) out.putInt((int) Long.parseLong(d));
        out.put(valid, 4 + 4 * rank, dataBytes);
        return r.nextInt(4) == 0 ? mutate(out.array(), r.nextLong()) : out.array();
    }

    private static String replaceNth(String s, Pattern p, Random r, String replacement) {
        Matcher m = p.matcher(s);
        int count = 0;
        while (m.find()) count++;
        if (count == 0) return s;
        int pick = r.nextInt(count);
        m.reset();
        for (int i = 0; i <= pick; i++) m.find();
        return s.substring(0, m.start()) + replacement + s.substring(m.end());
    }
}
