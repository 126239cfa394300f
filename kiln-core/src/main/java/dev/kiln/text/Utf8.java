package dev.kiln.text;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.IntFunction;

/** UTF-8 both ways: strict where text goes in (no silent '?'), forgiving where model output comes out (U+FFFD). */
final class Utf8 {
    private Utf8() {}

    /** The UTF-8 bytes of {@code text}; an unpaired surrogate, which has no UTF-8 form, is an error naming its index. */
    static byte[] encode(String text) {
        requirePairedSurrogates(text);
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static void requirePairedSurrogates(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!Character.isSurrogate(c)) continue;
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else {
                throw new IllegalArgumentException(String.format(
                        "the text has an unpaired surrogate U+%04X at index %d, which UTF-8 cannot encode", (int) c, i));
            }
        }
    }

    /** Text of bytes that may not be valid UTF-8 (a model can emit any sequence): each bad sequence becomes U+FFFD. */
    static String decode(byte[] bytes) { return new String(bytes, StandardCharsets.UTF_8); }

    /** A character as a message shows it: {@code 'é' (U+00E9)}, {@code '\n' (U+000A)}, or only the code for the unprintable. */
    static String describe(int codePoint) {
        String code = String.format("U+%04X", codePoint);
        String shown = switch (codePoint) {
            case '\n' -> "\\n";
            case '\r' -> "\\r";
            case '\t' -> "\\t";
            default -> printable(codePoint) ? Character.toString(codePoint) : null;
        };
        return shown == null ? code : "'" + shown + "' (" + code + ")";
    }

    private static boolean printable(int cp) {
        return switch (Character.getType(cp)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.UNASSIGNED, Character.PRIVATE_USE,
                 Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> false;
            default -> true;
        };
    }

    /**
     * Turns the bytes of ids into text as they arrive. Java's decoder, told more input may follow, keeps the bytes of
     * an unfinished character for the next call, so a character split across tokens comes out whole, once.
     */
    static final class StreamDecoder implements Tokenizer.StreamDecoder {
        private final IntFunction<byte[]> bytesOf;
        private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        private byte[] held = new byte[0]; // the start of a character whose last bytes have not come yet

        StreamDecoder(IntFunction<byte[]> bytesOf) { this.bytesOf = bytesOf; }

        @Override public String push(int id) {
            byte[] next = bytesOf.apply(id);
            byte[] all = Arrays.copyOf(held, held.length + next.length);
            System.arraycopy(next, 0, all, held.length, next.length);
            return decode(ByteBuffer.wrap(all), false);
        }

        @Override public String flush() {
            String rest = decode(ByteBuffer.wrap(held), true);
            decoder.reset();
            return rest;
        }

        private String decode(ByteBuffer in, boolean last) {
            CharBuffer out = CharBuffer.allocate(in.remaining() + 1); // never more chars than bytes
            decoder.decode(in, out, last);
            if (last) decoder.flush(out);
            held = new byte[in.remaining()];
            in.get(held);
            return out.flip().toString();
        }
    }
}
