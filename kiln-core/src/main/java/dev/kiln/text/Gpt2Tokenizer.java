package dev.kiln.text;

import dev.kiln.io.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2's byte-level BPE, from the {@code vocab.json} and {@code merges.txt} that come with the model. Text is cut
 * into words by GPT-2's regular expression; each word's UTF-8 bytes become printable characters (GPT-2's
 * bytes-to-unicode table: a space is 'Ġ'); adjacent symbols are merged, lowest merge rank first, until no listed
 * pair is left; each symbol is a vocabulary entry. Any text encodes, and decoding gives it back. The words seen
 * are cached. {@code <|endoftext|>} in the text is encoded as plain text, not as its special id.
 */
public final class Gpt2Tokenizer implements Tokenizer {
    static final String TYPE = "gpt2";

    /**
     * GPT-2's pre-tokenization (Python's {@code regex} module). Its {@code \s} is Unicode white space, so Java's needs
     * UNICODE_CHARACTER_CLASS; {@code \p{L}}, {@code \p{N}} are the same in both.
     */
    private static final Pattern WORDS = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final char[] BYTE_CHAR = new char[256];
    private static final int[] CHAR_BYTE = new int[0x144]; // the table's characters end at U+0143
    private static final int CACHE_LIMIT = 100_000;        // words; cleared when full (a corpus has a long tail)

    static {
        // bytes that print as themselves keep their code point; the other 68 get U+0100, U+0101, ... in byte order
        Arrays.fill(CHAR_BYTE, -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_CHAR[b] = (char) (printable ? b : next++);
            CHAR_BYTE[BYTE_CHAR[b]] = b;
        }
    }

    private final String[] tokens;      // id -> token, in byte characters
    private final byte[][] tokenBytes;  // id -> the bytes it stands for
    private final Map<String, Integer> ids = new HashMap<>();
    private final List<String> merges;  // "left right", by rank
    private final Map<String, Integer> ranks = new HashMap<>();
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    private Gpt2Tokenizer(String[] tokens, List<String> merges) {
        this.tokens = tokens;
        this.tokenBytes = new byte[tokens.length][];
        for (int id = 0; id < tokens.length; id++) {
            ids.put(tokens[id], id);
            tokenBytes[id] = bytesOf(tokens[id]);
        }
        this.merges = List.copyOf(merges);
        for (int r = 0; r < merges.size(); r++) ranks.put(merges.get(r), r);
    }

    /**
     * Loads GPT-2's files (or any vocabulary and merges of the same format).
     *
     * @throws IOException a missing file, bytes that are not UTF-8, JSON that is not a vocabulary of ids 0..n-1
     *     with a token for each byte, a merge line that is not two tokens, or a merge whose parts or result the
     *     vocabulary lacks; the message names the file (and the line of merges.txt)
     */
    public static Gpt2Tokenizer load(Path vocabJson, Path mergesTxt) throws IOException {
        String[] tokens;
        try {
            tokens = vocab(Json.parse(TextFile.read(vocabJson)));
        } catch (Json.ParseException e) {
            throw new IOException(vocabJson + ": not valid JSON: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IOException(vocabJson + ": " + e.getMessage(), e);
        }
        List<String> lines = TextFile.read(mergesTxt).lines().toList();
        boolean header = !lines.isEmpty() && lines.getFirst().startsWith("#version");
        try {
            return new Gpt2Tokenizer(tokens, merges(header ? lines.subList(1, lines.size()) : lines, header ? 2 : 1, tokens));
        } catch (IllegalArgumentException e) {
            throw new IOException(mergesTxt + ": " + e.getMessage(), e);
        }
    }

    /** A tokenizer of this vocabulary (token to id, ids 0..n-1) and these merges ("left right", by rank). */
    public static Gpt2Tokenizer of(Map<String, Integer> vocab, List<String> merges) {
        String[] tokens = vocab(vocab);
        return new Gpt2Tokenizer(tokens, merges(merges, 1, tokens));
    }

    /** The token of each id, checked: ids 0..n-1 each once, a token for every byte, only the table's characters. */
    private static String[] vocab(Object json) {
        if (!(json instanceof Map<?, ?> map) || map.isEmpty()) throw new IllegalArgumentException("not a JSON object of tokens to ids");
        String[] tokens = new String[map.size()];
        for (var e : map.entrySet()) {
            String token = (String) e.getKey();
            if (!(e.getValue() instanceof Number n) || n.longValue() != n.doubleValue() || n.longValue() < 0 || n.longValue() >= tokens.length) {
                throw new IllegalArgumentException("the id of \"" + token + "\" is " + e.getValue() + "; ids must run from 0 to " + (tokens.length - 1));
            }
            int id = n.intValue();
            if (tokens[id] != null) throw new IllegalArgumentException("id " + id + " is given to both \"" + tokens[id] + "\" and \"" + token + "\"");
            if (token.isEmpty()) throw new IllegalArgumentException("the token of id " + id + " is empty");
            for (int i = 0; i < token.length(); i++) {
                char c = token.charAt(i);
                if (c >= CHAR_BYTE.length || CHAR_BYTE[c] < 0) {
                    throw new IllegalArgumentException("token \"" + token + "\" (id " + id + ") holds " + Utf8.describe(c)
                            + ", which is not one of GPT-2's 256 byte characters");
                }
            }
            tokens[id] = token;
        }
        Set<String> all = new HashSet<>(Arrays.asList(tokens));
        for (int b = 0; b < 256; b++) {
            if (!all.contains(String.valueOf(BYTE_CHAR[b]))) {
                throw new IllegalArgumentException(String.format("no token for byte 0x%02X ('%c'); a GPT-2 vocabulary has one for each of the 256 bytes", b, BYTE_CHAR[b]));
            }
        }
        return tokens;
    }

    /** The merges of these lines (blank lines skipped), checked against the vocabulary. */
    private static List<String> merges(List<String> lines, int firstLine, String[] tokens) {
        Set<String> vocab = new HashSet<>(Arrays.asList(tokens));
        Map<String, Integer> seen = new HashMap<>();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i), where = "line " + (firstLine + i) + ": ";
            if (line.isBlank()) continue;
            String[] parts = line.split(" ", -1);
            if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
                throw new IllegalArgumentException(where + "\"" + line + "\" is not two tokens separated by one space");
            }
            for (String t : List.of(parts[0], parts[1], parts[0] + parts[1])) {
                if (!vocab.contains(t)) throw new IllegalArgumentException(where + "\"" + t + "\" is not in the vocabulary");
            }
            Integer before = seen.putIfAbsent(line, firstLine + i);
            if (before != null) throw new IllegalArgumentException(where + "repeats the merge of line " + before);
            out.add(line);
        }
        return out;
    }

    static Gpt2Tokenizer fromJson(Map<String, Object> o) {
        Map<String, Object> vocab = new LinkedHashMap<>();
        for (var e : JsonFields.map(o, "vocab").entrySet()) vocab.put((String) e.getKey(), e.getValue());
        List<String> merges = JsonFields.strings(o, "merges");
        try {
            String[] tokens = vocab(vocab);
            return new Gpt2Tokenizer(tokens, merges(merges, 1, tokens));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("tokenizer JSON: " + e.getMessage(), e);
        }
    }

    /** {@code {"type": "gpt2", "vocab": {token: id, ...}, "merges": ["left right", ...]}}: vocab.json and merges.txt in one. */
    @Override public String toJson() {
        StringJoiner vocab = new StringJoiner(",", "{", "}"), mergeList = new StringJoiner(",", "[", "]");
        for (int id = 0; id < tokens.length; id++) vocab.add(Json.quote(tokens[id]) + ":" + id);
        for (String m : merges) mergeList.add(Json.quote(m));
        return "{\"type\":\"" + TYPE + "\",\"vocab\":" + vocab + ",\"merges\":" + mergeList + "}";
    }

    @Override public int vocabSize() { return tokens.length; }

    @Override public int[] encode(String text) {
        Utf8.requirePairedSurrogates(text);
        int[] out = new int[Math.max(16, text.length() / 2)];
        int n = 0;
        Matcher m = WORDS.matcher(text);
        while (m.find()) {
            int[] word = wordIds(m.group());
            if (n + word.length > out.length) out = Arrays.copyOf(out, Math.max(2 * out.length, n + word.length));
            System.arraycopy(word, 0, out, n, word.length);
            n += word.length;
        }
        return Arrays.copyOf(out, n);
    }

    /** The words GPT-2 cuts {@code text} into before merging (for tests). */
    static List<String> words(String text) { return WORDS.matcher(text).results().map(r -> r.group()).toList(); }

    private int[] wordIds(String word) {
        int[] cached = cache.get(word);
        if (cached != null) return cached;
        int[] ids = bpe(word);
        if (cache.size() >= CACHE_LIMIT) cache.clear();
        cache.put(word, ids);
        return ids;
    }

    /** Merges the word's byte characters, lowest rank first, every occurrence of the pair left to right. */
    private int[] bpe(String word) {
        List<String> symbols = new ArrayList<>();
        for (byte b : word.getBytes(StandardCharsets.UTF_8)) symbols.add(String.valueOf(BYTE_CHAR[b & 0xFF]));
        while (symbols.size() > 1) {
            int bestRank = Integer.MAX_VALUE;
            String left = null, right = null;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer r = ranks.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    left = symbols.get(i);
                    right = symbols.get(i + 1);
                }
            }
            if (left == null) break;
            List<String> merged = new ArrayList<>(symbols.size());
            for (int i = 0; i < symbols.size(); i++) {
                if (i + 1 < symbols.size() && symbols.get(i).equals(left) && symbols.get(i + 1).equals(right)) {
                    merged.add(left + right);
                    i++;
                } else {
                    merged.add(symbols.get(i));
                }
            }
            symbols = merged;
        }
        int[] out = new int[symbols.size()];
        for (int i = 0; i < out.length; i++) out[i] = ids.get(symbols.get(i)); // the loader checked every merge is a token
        return out;
    }

    @Override public String decode(int[] idList) {
        int total = 0;
        for (int id : idList) total += bytes(id).length;
        byte[] all = new byte[total];
        int at = 0;
        for (int id : idList) {
            byte[] b = tokenBytes[id];
            System.arraycopy(b, 0, all, at, b.length);
            at += b.length;
        }
        return Utf8.decode(all);
    }

    @Override public StreamDecoder decoder() { return new Utf8.StreamDecoder(this::bytes); }

    private byte[] bytes(int id) {
        if (id < 0 || id >= tokens.length) throw new IllegalArgumentException("Gpt2Tokenizer: id " + id + " is outside the vocabulary (0.." + (tokens.length - 1) + ")");
        return tokenBytes[id];
    }

    private static byte[] bytesOf(String token) {
        byte[] b = new byte[token.length()];
        for (int i = 0; i < b.length; i++) b[i] = (byte) CHAR_BYTE[token.charAt(i)];
        return b;
    }

    @Override public String toString() { return "Gpt2Tokenizer(" + tokens.length + " tokens, " + merges.size() + " merges)"; }
}
