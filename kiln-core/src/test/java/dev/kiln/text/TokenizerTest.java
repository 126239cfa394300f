package dev.kiln.text;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The character and byte tokenizers, the stream decoder they share with GPT-2's, and the JSON of every kind. */
class TokenizerTest {
    static final String UNICODE = "naïve café, 世界 👩\u200d👩\u200d👧 e\u0301 🇫🇷 𝔘𝔫𝔦 \u0000\t\r\n";

    @Test void charVocabularyIsTheSortedDistinctCodePoints() {
        CharTokenizer t = CharTokenizer.fit("hello world");
        assertEquals(8, t.vocabSize());
        assertArrayEquals(" dehlorw".codePoints().toArray(), t.codePoints());
        assertArrayEquals(new int[]{3, 2, 4, 4, 5}, t.encode("hello"));
        assertEquals("world hello", t.decode(t.encode("world hello")));
    }

    @Test void charTokensAreCodePointsNotJavaChars() {
        CharTokenizer t = CharTokenizer.fit(UNICODE);
        assertEquals(UNICODE.codePoints().distinct().count(), t.vocabSize());
        int[] ids = t.encode(UNICODE);
        assertEquals(UNICODE.codePointCount(0, UNICODE.length()), ids.length, "an emoji is one token, not two surrogates");
        assertEquals(UNICODE, t.decode(ids));
        StringBuilder streamed = new StringBuilder();
        Tokenizer.StreamDecoder d = t.decoder();
        for (int id : ids) streamed.append(d.push(id));
        assertEquals(UNICODE, streamed.append(d.flush()).toString());
    }

    @Test void aCharacterOutsideTheVocabularyIsNamedWithItsPosition() {
        CharTokenizer t = CharTokenizer.fit("abc");
        var e = assertThrows(IllegalArgumentException.class, () -> t.encode("abxc"));
        assertEquals("CharTokenizer: character 'x' (U+0078) at index 2 is not in the vocabulary of 3 characters", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> t.encode("ab\nc"));
        assertTrue(e.getMessage().contains("'\\n' (U+000A) at index 2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> t.encode("a😀"));
        assertTrue(e.getMessage().contains("'😀' (U+1F600) at index 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> t.encode("a\u200Bb"));
        assertTrue(e.getMessage().contains("character U+200B at index 1"), "an invisible character shows only its code: " + e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> t.decode(new int[]{0, 3}));
        assertTrue(e.getMessage().contains("id 3 is outside the vocabulary (0..2)"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CharTokenizer.fit(""));
    }

    @Test void bytesAreUtf8() {
        ByteTokenizer t = new ByteTokenizer();
        assertEquals(256, t.vocabSize());
        assertArrayEquals(new int[]{'a', 0xC3, 0xA9}, t.encode("aé"));
        int[] ids = t.encode(UNICODE);
        assertEquals(UNICODE.getBytes(StandardCharsets.UTF_8).length, ids.length);
        assertEquals(UNICODE, t.decode(ids));
        var e = assertThrows(IllegalArgumentException.class, () -> t.encode("a\uD800b"));
        assertTrue(e.getMessage().contains("unpaired surrogate U+D800 at index 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> t.decode(new int[]{256}));
    }

    @Test void theStreamDecoderHoldsASplitCharacterUntilItIsComplete() {
        Tokenizer.StreamDecoder d = new ByteTokenizer().decoder();
        assertEquals("a", d.push('a'));
        assertEquals("", d.push(0xF0));
        assertEquals("", d.push(0x9F));
        assertEquals("", d.push(0x98));
        assertEquals("😀", d.push(0x80));
        assertEquals("", d.push(0xC3));
        assertEquals("\uFFFD", d.flush(), "an unfinished character at the end");
        assertEquals("b", d.push('b'), "the decoder starts again after flush");
        assertEquals("\uFFFD(", d.push(0xC3) + d.push('('), "a byte that cannot continue the character");
    }

    @Test void streamingGivesWhatDecodingAllAtOnceGives() {
        ByteTokenizer t = new ByteTokenizer();
        SplittableRandom rng = new SplittableRandom(1);
        for (int trial = 0; trial < 200; trial++) {
            int[] ids = new int[rng.nextInt(1, 40)];
            for (int i = 0; i < ids.length; i++) ids[i] = rng.nextInt(4) == 0 ? rng.nextInt(256) : 0x80 + rng.nextInt(0x75); // mostly multi-byte parts
            Tokenizer.StreamDecoder d = t.decoder();
            StringBuilder sb = new StringBuilder();
            for (int id : ids) sb.append(d.push(id));
            assertEquals(t.decode(ids), sb.append(d.flush()).toString(), "ids " + java.util.Arrays.toString(ids));
        }
    }

    @Test void jsonRebuildsEachKind() {
        CharTokenizer c = CharTokenizer.fit(UNICODE);
        assertEquals(c, Tokenizer.fromJson(c.toJson()));
        assertArrayEquals(c.encode(UNICODE), Tokenizer.fromJson(c.toJson()).encode(UNICODE));
        assertInstanceOf(ByteTokenizer.class, Tokenizer.fromJson(new ByteTokenizer().toJson()));
        assertEquals("{\"type\":\"char\",\"codePoints\":[97,98]}", CharTokenizer.fit("ba").toJson());
    }

    @Test void jsonThatIsNotATokenizerSaysWhy() {
        assertMessage("{\"type\":\"wordpiece\"}", "unknown type \"wordpiece\"");
        assertMessage("{\"codePoints\":[1]}", "no \"type\" field");
        assertMessage("[1, 2]", "not a JSON object");
        assertMessage("{\"type\":\"char\"", "not valid JSON");
        assertMessage("{\"type\":\"char\",\"codePoints\":[98,97]}", "increasing order");
        assertMessage("{\"type\":\"char\",\"codePoints\":\"ab\"}", "\"codePoints\" is not an array of integers");
        assertMessage("{\"type\":\"gpt2\",\"vocab\":{\"a\":0},\"merges\":[]}", "tokenizer JSON: no token for byte 0x00");
    }

    private static void assertMessage(String json, String expected) {
        var e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.fromJson(json));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }
}
