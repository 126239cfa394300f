package dev.kiln.text;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class Gpt2TokenizerTest {
    /**
     * GPT-2's bytes_to_unicode, written from its definition: the bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' are their own
     * character; the other 68, in byte order, become U+0100, U+0101, ...
     */
    static char[] byteChars() {
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) bs.add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.add(b);
        char[] out = new char[256];
        for (int b : bs) out[b] = (char) b;
        int n = 0;
        for (int b = 0; b < 256; b++) if (!bs.contains(b)) out[b] = (char) (256 + n++);
        return out;
    }

    static final char[] BYTE = byteChars();
    /** Merged tokens get ids 256, 257, ... in this order; the ranks are the merges' order. */
    static final List<String> MERGES = List.of("h e", "Ġ t", "Ġt he", "l l", "e ll", "e l", "ll ll");

    /** A small vocabulary: byte b has id b, then one token per merge. */
    static Map<String, Integer> vocab() {
        Map<String, Integer> v = new LinkedHashMap<>();
        for (int b = 0; b < 256; b++) v.put(String.valueOf(BYTE[b]), b);
        for (String m : MERGES) v.put(m.replace(" ", ""), v.size());
        return v;
    }

    static Gpt2Tokenizer small() { return Gpt2Tokenizer.of(vocab(), MERGES); }

    @Test void theByteTableIsGpt2s() {
        // anchors known from GPT-2's vocab.json: a space is 'Ġ', a newline 'Ċ'
        assertEquals('Ġ', BYTE[' ']);
        assertEquals('Ċ', BYTE['\n']);
        assertEquals('Ā', BYTE[0]);
        assertEquals('ġ', BYTE[0x7F]);
        assertEquals('Ń', BYTE[0xAD]);
        assertEquals('a', BYTE['a']);
        // the tokenizer uses the same table: each single byte encodes to its own id in a vocabulary without merges
        Gpt2Tokenizer bytesOnly = Gpt2Tokenizer.of(vocab(), List.of());
        assertArrayEquals(new int[]{32, 10, 0xC3, 0xA9, 0xC2, 0xAD, 0x7F}, bytesOnly.encode(" \né\u00AD\u007F"));
    }

    @Test void mergesApplyLowestRankFirst() {
        Gpt2Tokenizer t = small();
        assertEquals(256 + MERGES.size(), t.vocabSize());
        assertArrayEquals(new int[]{258}, t.encode(" the"), "Ġ t h e -> Ġ t he -> Ġt he -> Ġthe");
        assertArrayEquals(new int[]{116, 256}, t.encode("the"), "t h e -> t he: no 't he' merge");
        assertArrayEquals(new int[]{32, 256, 259, 'o'}, t.encode(" hello"), "'h e' (rank 0) before 'l l' (3); 'e ll' never sees an 'e'");
        assertArrayEquals(new int[]{260}, t.encode("ell"), "'l l' (3) beats the leftmost pair 'e l' (5), then 'e ll'");
        assertArrayEquals(new int[]{259, 'l'}, t.encode("lll"), "a pair merges left to right");
        assertArrayEquals(new int[]{262}, t.encode("llll"), "both 'l l' pairs merge in one pass, then 'll ll'");
        assertArrayEquals(new int[]{116, 256, 32, 256, 259}, t.encode("the hell"));
        assertEquals("the hell", t.decode(new int[]{116, 256, 32, 256, 259}));
        assertArrayEquals(t.encode(" hello"), t.encode(" hello"), "a cached word gives the same ids");
    }

    @Test void wordsAreCutAsGpt2sRegexCutsThem() {
        String text = "Hello world!  It's 42nd\t\n\n  don'T   café 😀👩\u200d👩\u200d👧 日本語 e\u0301 ١٢٣ x\u00a0y \u3000z\u001c...";
        // expected: Python's `regex` module (what GPT-2's encoder.py uses), pattern.findall(text), printed as JSON
        List<String> python = List.of("Hello", " world", "!", " ", " It", "'s", " 42", "nd", "\t\n\n ", " don", "'", "T", "  ",
                " café", " 😀👩\u200d👩\u200d👧", " 日本語", " e", "\u0301", " ١٢٣", " x", "\u00a0", "y", " ", "\u3000", "z", "\u001c...");
        assertEquals(python, Gpt2Tokenizer.words(text));
    }

    static final String UNICODE = "Hello, 世界! 👩\u200d👩\u200d👧 e\u0301 ñ ١٢٣ 🇫🇷 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u0000\t\r\n  \u3000x the hello\u00AD";

    @Test void anyTextRoundTrips() {
        Gpt2Tokenizer t = small();
        int[] ids = t.encode(UNICODE);
        assertEquals(UNICODE, t.decode(ids));
        assertTrue(ids.length < UNICODE.getBytes(StandardCharsets.UTF_8).length, "some merges applied");
        assertArrayEquals(new int[]{0xF0, 0x9F, 0x98, 0x80}, t.encode("😀"), "an emoji without merges is its four bytes");
    }

    @Test void theStreamDecoderNeverEmitsHalfACharacter() {
        Gpt2Tokenizer t = small();
        Tokenizer.StreamDecoder d = t.decoder();
        StringBuilder sb = new StringBuilder();
        for (int id : t.encode(UNICODE)) {
            String piece = d.push(id);
            assertFalse(piece.contains("\uFFFD"), "no replacement character for a split character");
            assertFalse(!piece.isEmpty() && Character.isHighSurrogate(piece.charAt(piece.length() - 1)), "no half surrogate pair");
            sb.append(piece);
        }
        sb.append(d.flush());
        assertEquals(UNICODE, sb.toString());
    }

    @Test void jsonRebuildsTheSameTokenizer() {
        Gpt2Tokenizer t = small();
        Tokenizer back = Tokenizer.fromJson(t.toJson());
        assertInstanceOf(Gpt2Tokenizer.class, back);
        assertEquals(t.vocabSize(), back.vocabSize());
        assertArrayEquals(t.encode(UNICODE), back.encode(UNICODE));
        assertArrayEquals(new int[]{260}, back.encode("ell"), "the merge ranks survive");
    }

    // ------------------------------------------------------------------ files

    static String vocabJson(Map<String, Integer> v) {
        StringBuilder sb = new StringBuilder("{");
        for (var e : v.entrySet()) sb.append(sb.length() > 1 ? "," : "").append(dev.kiln.io.Json.quote(e.getKey())).append(':').append(e.getValue());
        return sb.append('}').toString();
    }

    @Test void loadsVocabJsonAndMergesTxt(@TempDir Path dir) throws IOException {
        Path vocab = Files.writeString(dir.resolve("vocab.json"), vocabJson(vocab()));
        Path merges = Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n" + String.join("\n", MERGES) + "\n");
        Gpt2Tokenizer t = Gpt2Tokenizer.load(vocab, merges);
        assertEquals(small().vocabSize(), t.vocabSize());
        assertArrayEquals(small().encode(UNICODE), t.encode(UNICODE));
    }

    @Test void badFilesAreNamedInTheError(@TempDir Path dir) throws IOException {
        Path vocab = Files.writeString(dir.resolve("vocab.json"), vocabJson(vocab()));
        Path merges = Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\n" + String.join("\n", MERGES) + "\n");
        Path missing = dir.resolve("nope.json");
        var e = assertThrows(NoSuchFileException.class, () -> Gpt2Tokenizer.load(missing, merges));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());

        assertLoadError(Files.writeString(dir.resolve("cut.json"), "{\"a\": 0, "), merges, "cut.json: not valid JSON");
        Map<String, Integer> noNewline = vocab();
        noNewline.remove("Ċ");
        noNewline.put("ab", 10); // keeps the ids dense
        assertLoadError(Files.writeString(dir.resolve("v0.json"), vocabJson(noNewline)), merges, "v0.json: no token for byte 0x0A ('Ċ')");
        noNewline.remove("ab");
        noNewline.put("a€", 10);
        assertLoadError(Files.writeString(dir.resolve("v1.json"), vocabJson(noNewline)), merges, "v1.json: token \"a€\" (id 10) holds '€' (U+20AC)");
        Map<String, Integer> gap = vocab();
        gap.put("ll", 999);
        assertLoadError(Files.writeString(dir.resolve("v2.json"), vocabJson(gap)), merges, "v2.json: the id of \"ll\" is 999");
        Map<String, Integer> twice = vocab();
        twice.put("ll", 5);
        assertLoadError(Files.writeString(dir.resolve("v3.json"), vocabJson(twice)), merges, "v3.json: id 5 is given to both");

        assertLoadError(vocab, Files.writeString(dir.resolve("m1.txt"), "#version: 0.2\nh e\nhe\n"), "m1.txt: line 3: \"he\" is not two tokens");
        assertLoadError(vocab, Files.writeString(dir.resolve("m2.txt"), "h e\nt h\n"), "m2.txt: line 2: \"th\" is not in the vocabulary");
        assertLoadError(vocab, Files.writeString(dir.resolve("m3.txt"), "h e\nl l\nh e\n"), "m3.txt: line 3: repeats the merge of line 1");
        Path notUtf8 = Files.write(dir.resolve("m4.txt"), new byte[]{'h', ' ', 'e', '\n', (byte) 0xC3, '(', '\n'});
        assertLoadError(vocab, notUtf8, "m4.txt: not valid UTF-8 at byte offset 4 (line 2, byte 0xC3)");
    }

    private static void assertLoadError(Path vocab, Path merges, String expected) {
        var e = assertThrows(IOException.class, () -> Gpt2Tokenizer.load(vocab, merges));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }

    @Test void idsOutsideTheVocabularyAreRefused() {
        var e = assertThrows(IllegalArgumentException.class, () -> small().decode(new int[]{1, 263}));
        assertTrue(e.getMessage().contains("id 263 is outside the vocabulary (0..262)"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> small().decoder().push(-1));
    }
}
