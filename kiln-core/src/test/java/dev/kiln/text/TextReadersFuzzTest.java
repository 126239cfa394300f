package dev.kiln.text;

import dev.kiln.data.TextCorpus;
import dev.kiln.io.Mutations;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Fuzzes the text readers of the language models: a UTF-8 corpus, GPT-2's vocab.json and merges.txt, and a
 * tokenizer's JSON (as a checkpoint's metadata holds it), damaged at random, must read or fail with the reader's
 * documented error: an {@link IOException} naming the file (corpus, vocabulary, merges), an
 * {@link IllegalArgumentException} for tokenizer JSON. Tries: {@code jqwik.tries.default}.
 */
class TextReadersFuzzTest {
    private static Path dir;
    private static byte[] text, vocab, merges, charJson, gpt2Json;

    @BeforeContainer static void writeValidFiles() throws IOException {
        dir = Files.createTempDirectory("kiln-fuzz-text");
        text = "Kiln lit the kiln. ¿Qué? 窯 — ünïcödé text, with 🔥 and newlines\nand more.\n".repeat(3).getBytes(StandardCharsets.UTF_8);
        vocab = Gpt2TokenizerTest.vocabJson(Gpt2TokenizerTest.vocab()).getBytes(StandardCharsets.UTF_8);
        merges = ("#version: 0.2\n" + String.join("\n", Gpt2TokenizerTest.MERGES) + "\n").getBytes(StandardCharsets.UTF_8);
        charJson = CharTokenizer.fit(new String(text, StandardCharsets.UTF_8)).toJson().getBytes(StandardCharsets.UTF_8);
        gpt2Json = Gpt2TokenizerTest.small().toJson().getBytes(StandardCharsets.UTF_8);
    }

    @AfterContainer static void removeTheFiles() throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Property void aCorpusReadsOrIsAnIOExceptionNamingTheFile(@ForAll long seed) throws IOException {
        Path file = dir.resolve("corpus.txt");
        Files.write(file, Mutations.mutate(text, seed));
        try {
            String t = TextCorpus.readText(file);
            CharTokenizer.fit(t).encode(t);
            Statistics.collect("read");
        } catch (IOException e) {
            namesTheFile(e, file, seed);
            Statistics.collect("IOException");
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": TextCorpus.readText threw " + t, t);
        }
    }

    @Property void gpt2FilesLoadOrAreAnIOExceptionNamingAFile(@ForAll long seed) throws IOException {
        Path v = dir.resolve("vocab.json"), m = dir.resolve("merges.txt");
        boolean damageVocab = Math.floorMod(seed, 2) == 0;
        Files.write(v, damageVocab ? Mutations.mutate(vocab, seed) : vocab);
        Files.write(m, damageVocab ? merges : Mutations.mutate(merges, seed));
        try {
            Gpt2Tokenizer tok = Gpt2Tokenizer.load(v, m);
            tok.decode(tok.encode("the hello well"));
            Statistics.collect("read");
        } catch (IOException e) {
            // a damaged vocabulary can still be one, lacking a token a merge needs: then merges.txt is named
            if (e.getMessage() == null || !e.getMessage().contains(v.toString()) && !e.getMessage().contains(m.toString())) {
                throw new AssertionError("seed " + seed + ": the error names neither file: " + e.getMessage(), e);
            }
            Statistics.collect("IOException");
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": Gpt2Tokenizer.load threw " + t, t);
        }
    }

    @Property void tokenizerJsonReadsOrIsAnIllegalArgumentException(@ForAll long seed) {
        byte[] json = Mutations.mutate(Math.floorMod(seed, 2) == 0 ? charJson : gpt2Json, seed);
        try {
            Tokenizer t = Tokenizer.fromJson(new String(json, StandardCharsets.UTF_8));
            t.decode(t.encode("the"));
            Statistics.collect("read");
        } catch (IllegalArgumentException e) {
            if (e.getMessage() == null || e.getMessage().isBlank()) throw new AssertionError("seed " + seed + ": an error without a message", e);
            Statistics.collect("IllegalArgumentException");
        } catch (Throwable t) {
            throw new AssertionError("seed " + seed + ": Tokenizer.fromJson threw " + t, t);
        }
    }

    private static void namesTheFile(Exception e, Path file, long seed) {
        if (e.getMessage() == null || !e.getMessage().contains(file.toString())) {
            throw new AssertionError("seed " + seed + ": the error does not name " + file + ": " + e.getMessage(), e);
        }
    }
}
