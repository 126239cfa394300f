package dev.kiln.text;

import java.util.Arrays;
import java.util.Map;
import java.util.StringJoiner;

/**
 * Character-level tokens, as nanoGPT's Shakespeare: the vocabulary is the sorted distinct code points of a training
 * text (65 for tiny Shakespeare), and a character's id is its place in that order. Text with a character the
 * training text lacked cannot be encoded.
 */
public final class CharTokenizer implements Tokenizer {
    static final String TYPE = "char";

    private final int[] codePoints; // sorted and distinct: id -> code point; binary search the other way

    private CharTokenizer(int[] codePoints) { this.codePoints = codePoints; }

    /** The vocabulary of {@code text}: each distinct code point, in code point order. */
    public static CharTokenizer fit(String text) {
        if (text.isEmpty()) throw new IllegalArgumentException("CharTokenizer: cannot fit a vocabulary to empty text");
        return new CharTokenizer(text.codePoints().sorted().distinct().toArray());
    }

    /** The code point of each id, in id order (a copy). */
    public int[] codePoints() { return codePoints.clone(); }

    @Override public int vocabSize() { return codePoints.length; }

    @Override public int[] encode(String text) {
        int[] ids = new int[text.codePointCount(0, text.length())];
        for (int i = 0, n = 0; i < text.length(); n++) {
            int cp = text.codePointAt(i), id = Arrays.binarySearch(codePoints, cp);
            if (id < 0) {
                throw new IllegalArgumentException("CharTokenizer: character " + Utf8.describe(cp) + " at index " + i
                        + " is not in the vocabulary of " + codePoints.length + " characters");
            }
            ids[n] = id;
            i += Character.charCount(cp);
        }
        return ids;
    }

    @Override public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder(ids.length);
        for (int id : ids) sb.appendCodePoint(codePoint(id));
        return sb.toString();
    }

    /** Every id is a whole character, so each comes out as it arrives. */
    @Override public StreamDecoder decoder() {
        return new StreamDecoder() {
            @Override public String push(int id) { return Character.toString(codePoint(id)); }

            @Override public String flush() { return ""; }
        };
    }

    private int codePoint(int id) {
        if (id < 0 || id >= codePoints.length) {
            throw new IllegalArgumentException("CharTokenizer: id " + id + " is outside the vocabulary (0.." + (codePoints.length - 1) + ")");
        }
        return codePoints[id];
    }

    /** {@code {"type": "char", "codePoints": [...]}}: numbers, so any code point survives any transport. */
    @Override public String toJson() {
        StringJoiner cps = new StringJoiner(",", "[", "]");
        for (int cp : codePoints) cps.add(Integer.toString(cp));
        return "{\"type\":\"" + TYPE + "\",\"codePoints\":" + cps + "}";
    }

    static CharTokenizer fromJson(Map<String, Object> o) {
        int[] cps = JsonFields.ints(o, "codePoints");
        if (cps.length == 0) throw new IllegalArgumentException("tokenizer JSON: \"codePoints\" is empty");
        for (int i = 0; i < cps.length; i++) {
            if (!Character.isValidCodePoint(cps[i]) || (i > 0 && cps[i] <= cps[i - 1])) {
                throw new IllegalArgumentException("tokenizer JSON: \"codePoints\" must be valid code points in increasing order; entry " + i + " is " + cps[i]);
            }
        }
        return new CharTokenizer(cps);
    }

    @Override public boolean equals(Object o) { return o instanceof CharTokenizer c && Arrays.equals(codePoints, c.codePoints); }

    @Override public int hashCode() { return Arrays.hashCode(codePoints); }

    @Override public String toString() { return "CharTokenizer(" + codePoints.length + " characters)"; }
}
