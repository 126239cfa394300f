package dev.kiln.text;

/** One token per UTF-8 byte: a vocabulary of 256 that can encode any text and needs no training. */
public final class ByteTokenizer implements Tokenizer {
    static final String TYPE = "byte";
    private static final byte[][] BYTES = new byte[256][];

    static {
        for (int b = 0; b < 256; b++) BYTES[b] = new byte[]{(byte) b};
    }

    @Override public int vocabSize() { return 256; }

    @Override public int[] encode(String text) {
        byte[] bytes = Utf8.encode(text);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) ids[i] = bytes[i] & 0xFF;
        return ids;
    }

    /** Ids that do not form valid UTF-8 (a model can emit any sequence) decode with U+FFFD in their place. */
    @Override public String decode(int[] ids) {
        byte[] bytes = new byte[ids.length];
        for (int i = 0; i < ids.length; i++) bytes[i] = bytes(ids[i])[0];
        return Utf8.decode(bytes);
    }

    @Override public StreamDecoder decoder() { return new Utf8.StreamDecoder(ByteTokenizer::bytes); }

    private static byte[] bytes(int id) {
        if (id < 0 || id > 255) throw new IllegalArgumentException("ByteTokenizer: id " + id + " is outside the vocabulary (0..255)");
        return BYTES[id];
    }

    @Override public String toJson() { return "{\"type\":\"" + TYPE + "\"}"; }

    @Override public boolean equals(Object o) { return o instanceof ByteTokenizer; }

    @Override public int hashCode() { return TYPE.hashCode(); }

    @Override public String toString() { return "ByteTokenizer"; }
}
