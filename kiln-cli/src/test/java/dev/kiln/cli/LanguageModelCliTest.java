package dev.kiln.cli;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.models.Sampling;
import dev.kiln.text.CharTokenizer;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.TextGeneration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.kiln.cli.MainTest.assertOneLineError;
import static dev.kiln.cli.MainTest.kiln;
import static org.junit.jupiter.api.Assertions.*;

/** kiln train --model gpt|lstm, kiln generate and kiln eval on tiny models and a tiny text, on the CPU. */
class LanguageModelCliTest {
    /** After an 'a' the next character depends on the one before it: below (3/6)·ln 3 ≈ 0.55 the model uses its context. */
    static final String TEXT = "abacad".repeat(400);

    @TempDir static Path dir;
    static Path text, gptRun, lstmRun;
    static MainTest.Run gptTrain, lstmTrain;

    @BeforeAll static void train() throws IOException {
        text = Files.writeString(dir.resolve("abac.txt"), TEXT);
        gptRun = dir.resolve("gpt");
        lstmRun = dir.resolve("lstm");
        gptTrain = kiln("train", "--model", "gpt", "--data", text.toString(), "--layers", "1", "--heads", "4", "--dim", "64", "--context", "16",
                "--dropout", "0", "--batch", "16", "--lr", "3e-3", "--epochs", "7", "--steps", "10", "--device", "cpu", "--out", gptRun.toString(), "--json");
        lstmTrain = kiln("train", "--model", "lstm", "--data", text.toString(), "--layers", "1", "--dim", "32", "--context", "16",
                "--batch-size", "16", "--lr", "2e-2", "--epochs", "3", "--device", "cpu", "--out", lstmRun.toString(), "--json",
                "--tensorboard", dir.resolve("tb").toString(), "--tensorboard-histograms", "2");
    }

    private static double jsonNumber(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":([0-9.]+)").matcher(json);
        assertTrue(m.find(), key + " in " + json);
        return Double.parseDouble(m.group(1));
    }

    @Test void trainingLowersTheValidationLossAndWritesTheRun() throws IOException {
        for (var r : List.of(gptTrain, lstmTrain)) {
            assertEquals(0, r.code(), r.toString());
            String last = r.out().strip().lines().reduce((a, b) -> b).orElseThrow();
            assertTrue(last.matches("\\{\"model\":\"(gpt|lstm)\",\"device\":\"cpu\",\"precision\":\"fp32\",\"epochs\":\\d,\"val_loss\":[0-9.]+,\"val_ppl\":[0-9.]+,"
                    + "\"val_acc\":[0-9.]+,\"train_tokens_per_s\":[0-9.]+,\"seconds\":[0-9.]+}"), last);
            assertTrue(jsonNumber(last, "val_loss") < 0.25, "below the 0.55 of the current character alone: " + r.out());
            assertTrue(r.out().contains("tokens/s"), r.out());
        }
        assertTrue(gptTrain.out().contains("batches of 16 x 16 tokens, 10 steps per epoch, adamw lr 0.003, fp32"), gptTrain.out());
        assertTrue(lstmTrain.out().contains("8 steps per epoch, adam lr 0.02"), lstmTrain.out());
        for (String f : new String[]{"model.safetensors", "metrics.csv", "chart.png"}) assertTrue(Files.size(gptRun.resolve(f)) > 0, f);
        List<String> csv = Files.readAllLines(gptRun.resolve("metrics.csv"));
        assertEquals(List.of(LanguageModelRun.CSV_HEADER), csv.subList(0, 1));
        assertEquals(8, csv.size(), "a header and 7 epochs");
        Map<String, String> meta = Safetensors.read(gptRun.resolve("model.safetensors")).metadata();
        assertEquals("gpt", meta.get("kiln.model"));
        assertEquals("64", meta.get("kiln.gpt.dim"));
        assertEquals(CharTokenizer.fit(TEXT).toJson(), meta.get("kiln.tokenizer"));
    }

    /** Greedy decoding reproduces the text it learnt, from a run folder, past the GPT's context of 16. */
    @Test void greedyGenerationContinuesThePattern() {
        for (Path run : List.of(gptRun, lstmRun)) {
            var r = kiln("generate", run.toString(), "--prompt", "abac", "--tokens", "40", "--temperature", "0", "--device", "cpu");
            assertEquals(0, r.code(), r.toString());
            assertEquals(TEXT.substring(0, 44) + "\n", r.out(), run.toString());
            assertEquals("", r.err());
        }
    }

    /** Flushes as it goes: the prompt, then each token's character at once; the whole is what the library generates. */
    @Test void generationStreamsAndMatchesTheLibrary() throws IOException {
        List<String> flushed = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        Writer recorder = new Writer() {
            @Override public void write(char[] c, int off, int len) { all.append(c, off, len); }

            @Override public void flush() { if (flushed.isEmpty() || !flushed.getLast().contentEquals(all)) flushed.add(all.toString()); }

            @Override public void close() { }
        };
        String[] args = {"generate", gptRun.resolve("model.safetensors").toString(), "--prompt", "ab", "--tokens", "30", "--temperature", "1.5", "--top-k", "3",
                "--seed", "9", "--device", "cpu"};
        assertEquals(0, Main.execute(args, new PrintWriter(recorder), new PrintWriter(new StringWriter())));
        assertEquals(32, flushed.size(), "the prompt, 30 characters and the newline, each flushed: " + flushed);
        for (int i = 1; i < flushed.size(); i++) assertEquals(flushed.get(i - 1).length() + 1, flushed.get(i).length(), flushed.toString());

        LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(gptRun.resolve("model.safetensors"));
        int[] ids = TextGeneration.generate(lm.model(), lm.tokenizer().encode("ab"), 30, new Sampling(1.5, 3), new Generator(9), id -> { });
        assertEquals("ab" + lm.tokenizer().decode(ids) + "\n", all.toString());
        assertEquals(all.toString(), kiln(args).out(), "the same seed, the same text");
    }

    @Test void aPromptLongerThanTheContextIsCroppedWithANote() {
        String prompt = TEXT.substring(0, 20);
        var r = kiln("generate", gptRun.toString(), "--prompt", prompt, "--tokens", "6", "--temperature", "0", "--device", "cpu");
        assertEquals(0, r.code(), r.toString());
        assertEquals("kiln generate: the prompt's 20 tokens exceed the model's context of 16; generating from its last 16", r.err().strip());
        assertEquals(TEXT.substring(0, 26) + "\n", r.out());
    }

    @Test void evalReportsTheValidationLoss() {
        var r = kiln("eval", gptRun.toString(), "--device", "cpu", "--json");
        assertEquals(0, r.code(), r.toString());
        String trained = gptTrain.out().strip().lines().reduce((a, b) -> b).orElseThrow();
        assertEquals(jsonNumber(trained, "val_loss"), jsonNumber(r.out(), "val_loss"), 1e-4, r.out());
        assertEquals(224, (int) jsonNumber(r.out(), "tokens"), "the 240 validation tokens in 14 chunks of 16 targets: " + r.out());
        var plain = kiln("eval", lstmRun.toString(), "--device", "cpu", "--data", text.toString());
        assertEquals(0, plain.code(), plain.toString());
        assertTrue(plain.out().contains("validation loss ") && plain.out().contains("next-token accuracy") && plain.out().contains("on 224 tokens of " + text),
                plain.out());
        assertOneLineError(kiln("eval", gptRun.toString(), "--model", "cnn", "--device", "cpu"), "holds a gpt language model, not cnn");
    }

    /** The --tokenizer gpt2 files travel into the checkpoint: generate needs neither afterwards. */
    @Test void gpt2TokenizerFromVocabAndMerges() throws IOException {
        StringBuilder vocab = new StringBuilder("{");
        for (int b = 0; b < 256; b++) vocab.append(b == 0 ? "" : ",").append(jsonString(gpt2Char(b))).append(':').append(b);
        vocab.append(',').append(jsonString("ab")).append(":256}");
        Path v = Files.writeString(dir.resolve("vocab.json"), vocab), m = Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\na b\n");
        Path out = dir.resolve("bpe");
        var r = kiln("train", "--model", "lstm", "--data", text.toString(), "--tokenizer", "gpt2", "--vocab", v.toString(), "--merges", m.toString(),
                "--layers", "1", "--dim", "16", "--context", "8", "--batch", "16", "--device", "cpu", "--out", out.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("gpt2 tokenizer (257 tokens)"), r.out());
        var g = kiln("generate", out.toString(), "--prompt", "ab", "--tokens", "5", "--device", "cpu");
        assertEquals(0, g.code(), g.toString());
        assertTrue(g.out().startsWith("ab"), g.out());
    }

    /** GPT-2's bytes_to_unicode: printable Latin-1 bytes are themselves, the other 68 become U+0100 onwards in byte order. */
    private static String gpt2Char(int b) {
        boolean self = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE;
        if (self) return String.valueOf((char) b);
        int n = 0;
        for (int x = 0; x < b; x++) if (!(x >= '!' && x <= '~' || x >= 0xA1 && x <= 0xAC || x >= 0xAE)) n++;
        return String.valueOf((char) (256 + n));
    }

    private static String jsonString(String s) { return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""; }

    @Test void trainErrorsAreOneLine() throws IOException {
        Path empty = Files.writeString(dir.resolve("empty.txt"), "");
        assertOneLineError(kiln("train", "--model", "gpt", "--data", empty.toString(), "--device", "cpu", "--out", dir.resolve("e").toString()),
                empty + ": the file is empty; a corpus needs some text");
        assertOneLineError(kiln("train", "--model", "gpt", "--device", "cpu"), "--model gpt needs --data FILE.txt, the UTF-8 text to learn");
        assertOneLineError(kiln("train", "--model", "lstm", "--data", text.toString(), "--heads", "2"), "--heads goes with --model gpt; the LSTM has neither");
        assertOneLineError(kiln("train", "--model", "gpt", "--data", text.toString(), "--limit", "5"), "--limit counts images; for gpt and lstm use --steps N");
        assertOneLineError(kiln("train", "--model", "gpt", "--data", text.toString(), "--tokenizer", "gpt2"), "--tokenizer gpt2 needs --vocab FILE");
        assertOneLineError(kiln("train", "--model", "gpt", "--data", text.toString(), "--tokenizer", "words"), "unknown tokenizer 'words' (choose char, byte, gpt2)");
        assertOneLineError(kiln("train", "--model", "gpt", "--data", text.toString(), "--dim", "10", "--heads", "4"), "--dim 10 must be a multiple of --heads 4");
        assertOneLineError(kiln("train", "--model", "cnn", "--context", "8"), "--context goes with --model gpt or lstm, not cnn");
        assertOneLineError(kiln("train", "--model", "gpt", "--data", text.toString(), "--device", "cpu", "--out", dir.resolve("long").toString()),
                "(validation part): TokenChunks: the text has 240 tokens; one chunk of context 256 needs 257");
    }

    @Test void generateErrorsAreOneLine() throws IOException {
        assertOneLineError(kiln("generate", gptRun.toString(), "--prompt", "abx", "--device", "cpu"),
                "--prompt: CharTokenizer: character 'x' (U+0078) at index 2 is not in the vocabulary of 4 characters");
        Path cnn = dir.resolve("cnn.safetensors");
        Safetensors.write(cnn, Map.of("0.weight", Tensor.zeros(2, 2)), Map.of("kiln.model", "cnn"));
        assertOneLineError(kiln("generate", cnn.toString(), "--device", "cpu"), cnn + " holds a cnn image classifier, not a language model");
        assertOneLineError(kiln("generate", dir.resolve("none.safetensors").toString(), "--device", "cpu"), "none.safetensors: no such file");
        assertOneLineError(kiln("generate", gptRun.toString(), "--tokens", "0"), "--tokens must be >= 1, got 0");
        assertOneLineError(kiln("generate", gptRun.toString(), "--temperature", "-1"), "--temperature must be a number >= 0");
        assertOneLineError(kiln("generate", gptRun.toString(), "--prompt", "", "--device", "cpu"), "--prompt: it is empty");
    }

    @Test void tensorboardEventsAreWritten() throws IOException {
        assertEquals(0, lstmTrain.code(), lstmTrain.toString());
        List<Path> files;
        try (var list = Files.list(dir.resolve("tb"))) {
            files = list.filter(f -> f.getFileName().toString().startsWith("events.out.tfevents.")).toList();
        }
        assertEquals(1, files.size(), files.toString());
        byte[] b = Files.readAllBytes(files.getFirst());
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int records = 0;
        while (buf.remaining() >= 12) {   // TFRecord framing: length, its crc, the data, its crc
            long len = buf.getLong();
            buf.position(buf.position() + 4 + (int) len + 4);
            records++;
        }
        assertEquals(0, buf.remaining(), "the file ends on a record boundary");
        assertTrue(records >= 1 + 3 * 4, "the version record and four scalars per epoch: " + records);
        String text = new String(b, java.nio.charset.StandardCharsets.ISO_8859_1);
        for (String tag : new String[]{"brain.Event:2", "train/loss", "eval/loss", "eval/accuracy", "train/samples_per_s", "train/lr",
                "_hparams_/session_start_info", "hparams", "weights/", "grads/"}) assertTrue(text.contains(tag), tag);
        assertTrue(text.contains("batchSize") && text.contains("lstm"), "the run's settings among the hyper-parameters");
    }
}
