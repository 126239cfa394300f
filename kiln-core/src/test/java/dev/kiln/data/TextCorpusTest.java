package dev.kiln.data;

import dev.kiln.text.ByteTokenizer;
import dev.kiln.text.CharTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class TextCorpusTest {
    @TempDir Path dir;

    /** 100 characters: "abcdefghij" ten times. */
    static final String TEXT = "abcdefghij".repeat(10);

    @Test void theLastTenthIsHeldOutForValidation() throws IOException {
        Path f = Files.writeString(dir.resolve("t.txt"), TEXT);
        TextCorpus c = TextCorpus.read(f, CharTokenizer::fit, TextCorpus.DEFAULT_VALIDATION_FRACTION);
        assertEquals(10, c.tokenizer().vocabSize());
        assertEquals(90, c.trainSize());
        assertEquals(10, c.validationSize());
        assertEquals(TEXT.substring(0, 90), c.tokenizer().decode(c.train()));
        assertEquals(TEXT.substring(90), c.tokenizer().decode(c.validation()));
        assertEquals(f.toString(), c.source());

        TextCorpus quarter = TextCorpus.of("text", TEXT, c.tokenizer(), 0.25);
        assertEquals(75, quarter.trainSize());
        assertEquals(25, quarter.validationSize());
        assertEquals(0, TextCorpus.of("text", TEXT, c.tokenizer(), 0).validationSize());
        var e = assertThrows(IllegalArgumentException.class, () -> TextCorpus.of("text", TEXT, c.tokenizer(), 1));
        assertTrue(e.getMessage().contains("[0, 1), got 1.0"), e.getMessage());
    }

    @Test void anyUtf8TextReadsWithTheByteTokenizer() throws IOException {
        String text = "naïve café 世界 👩\u200d👩\u200d👧\n".repeat(20);
        Path f = Files.writeString(dir.resolve("u.txt"), "\uFEFF" + text); // a byte order mark is not text
        TextCorpus c = TextCorpus.read(f, new ByteTokenizer());
        int[] all = IntStream.concat(IntStream.of(c.train()), IntStream.of(c.validation())).toArray();
        assertEquals(text, c.tokenizer().decode(all));
        assertEquals(Math.round(all.length * 0.1), c.validationSize());
    }

    @Test void anEmptyFileIsRefusedByName() throws IOException {
        Path f = Files.writeString(dir.resolve("empty.txt"), "");
        var e = assertThrows(IOException.class, () -> TextCorpus.read(f, new ByteTokenizer()));
        assertEquals(f + ": the file is empty; a corpus needs some text", e.getMessage());
    }

    @Test void bytesThatAreNotUtf8AreLocated() throws IOException {
        Path f = Files.write(dir.resolve("latin1.txt"), new byte[]{'a', 'b', '\n', 'c', (byte) 0xE9, 't', 'e'});
        var e = assertThrows(IOException.class, () -> TextCorpus.read(f, new ByteTokenizer()));
        assertEquals(f + ": not valid UTF-8 at byte offset 4 (line 2, byte 0xE9)", e.getMessage());
        Path cut = Files.write(dir.resolve("cut.txt"), new byte[]{'o', 'k', (byte) 0xF0, (byte) 0x9F});
        e = assertThrows(IOException.class, () -> TextCorpus.readText(cut));
        assertTrue(e.getMessage().contains("cut.txt: not valid UTF-8 at byte offset 2"), "a character cut off at the end: " + e.getMessage());
    }

    @Test void aMissingFileOrAFolderIsNamed() {
        Path missing = dir.resolve("missing.txt");
        var e = assertThrows(NoSuchFileException.class, () -> TextCorpus.read(missing, new ByteTokenizer()));
        assertEquals(missing + ": no such file", e.getMessage());
        var f = assertThrows(IOException.class, () -> TextCorpus.readText(dir));
        assertEquals(dir + ": is a folder, not a text file", f.getMessage());
    }

    @Test void textTheTokenizerCannotEncodeNamesTheSource() throws IOException {
        Path f = Files.writeString(dir.resolve("other.txt"), "abc\nxyz");
        var e = assertThrows(IllegalArgumentException.class, () -> TextCorpus.read(f, CharTokenizer.fit("abc")));
        assertEquals(f + ": CharTokenizer: character '\\n' (U+000A) at index 3 is not in the vocabulary of 3 characters", e.getMessage());
    }

    @Test void chunksOfAPartTooShortSayWhichPart() {
        TextCorpus c = TextCorpus.of("tiny", TEXT, CharTokenizer.fit(TEXT), 0.1);
        assertEquals((90 - 7 - 9) / 9 + 1, c.trainChunks(8, 1).size());
        assertEquals(1, c.validationChunks(9).size());
        var e = assertThrows(IllegalArgumentException.class, () -> c.validationChunks(10));
        assertEquals("tiny (validation part): TokenChunks: the text has 10 tokens; one chunk of context 10 needs 11 (10 inputs and the token after them)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> c.trainChunks(90, 1));
        assertTrue(e.getMessage().startsWith("tiny (training part): TokenChunks: the text has 90 tokens;"), e.getMessage());
    }
}
