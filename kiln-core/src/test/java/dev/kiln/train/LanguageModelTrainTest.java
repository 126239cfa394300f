package dev.kiln.train;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.data.TokenChunks;
import dev.kiln.io.Safetensors;
import dev.kiln.models.CharLSTM;
import dev.kiln.models.GPT;
import dev.kiln.models.Sampling;
import dev.kiln.text.ByteTokenizer;
import dev.kiln.text.CharTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Language-model runs on the CPU with tiny models: training lowers the validation loss below what the current
 * character alone allows, the checkpoint rebuilds model and tokenizer, and generation continues what was learnt,
 * one small step per token, streaming whole characters.
 */
class LanguageModelTrainTest {
    /**
     * "abacad" repeated: after an 'a' the next character depends on the one before the 'a', so a model of the current
     * character alone cannot go below (3/6)·ln 3 ≈ 0.55 nats per token: a loss well below that shows the model uses
     * its context.
     */
    static final String TEXT = "abacad".repeat(400);
    static final double BIGRAM_FLOOR = 0.5 * Math.log(3);

    @TempDir static Path dir;
    static Path text;
    static LanguageModelRun.Summary gpt, lstm;
    static String gptLog;

    @BeforeAll static void train() throws IOException {
        text = Files.writeString(dir.resolve("abac.txt"), TEXT);
        StringWriter log = new StringWriter();
        gpt = LanguageModelRun.run(TextTrainConfig.defaults(LanguageModel.Kind.GPT, text, dir.resolve("gpt")).withSizes(16, 1, 4, 64, 0)
                .withTraining(8, 0, 16, 3e-3), new PrintWriter(log), TrainListener.NONE, null);
        gptLog = log.toString();
        lstm = LanguageModelRun.run(TextTrainConfig.defaults(LanguageModel.Kind.LSTM, text, dir.resolve("lstm")).withSizes(16, 1, 0, 32, 0)
                .withTraining(3, 0, 16, 2e-2), new PrintWriter(new StringWriter()), TrainListener.NONE, null);
    }

    @Test void bothModelsLearnMoreThanTheCurrentCharacterTells() throws IOException {
        for (LanguageModelRun.Summary s : List.of(gpt, lstm)) {
            assertTrue(s.validationLoss() < 0.25 && s.validationLoss() < BIGRAM_FLOOR / 2, s.model() + ": " + s.history());
            assertTrue(s.history().getFirst().trainLoss() > s.history().getLast().trainLoss(), s.model() + ": " + s.history());
            assertTrue(s.trainTokensPerSecond() > 0, s.json());
            List<String> csv = Files.readAllLines(s.metrics());
            assertEquals(LanguageModelRun.CSV_HEADER, csv.getFirst());
            assertEquals(s.history().size() + 1, csv.size());
            assertTrue(s.json().matches("\\{\"model\":\"" + s.model() + "\",\"device\":\"cpu\",\"precision\":\"fp32\",\"epochs\":\\d+,\"val_loss\":[0-9.]+,"
                    + "\"val_ppl\":[0-9.]+,\"val_acc\":[0-9.]+,\"train_tokens_per_s\":[0-9.]+,\"seconds\":[0-9.]+}"), s.json());
        }
        // 2,160 training tokens are 127 chunks of 16 + 1: 8 batches of 16
        assertTrue(gptLog.contains("char tokenizer (4 tokens), 2,160 training and 240 validation tokens, batches of 16 x 16 tokens, 8 steps per epoch"), gptLog);
        assertTrue(gptLog.contains("epoch 8/8  train loss"), gptLog);
    }

    /** The file alone gives back the model, its sizes, the tokenizer, the context and the text: its validation loss is the run's. */
    @Test void theCheckpointRebuildsModelAndTokenizer() throws IOException {
        LanguageModelRun.Loaded g = LanguageModelRun.loadCheckpoint(gpt.checkpoint());
        assertEquals(LanguageModel.Gpt.of(4, 16, 1, 4, 64, 0), g.architecture());
        assertInstanceOf(GPT.class, g.model());
        assertEquals(CharTokenizer.fit(TEXT), g.tokenizer());
        assertEquals(16, g.context());
        assertEquals(text.toAbsolutePath().normalize(), g.text());
        assertEquals(gpt.validationLoss(), LanguageModelRun.evaluate(g, text, Device.CPU, 16, 0).loss(), 1e-4);

        LanguageModelRun.Loaded l = LanguageModelRun.loadCheckpoint(lstm.checkpoint());
        assertEquals(new LanguageModel.Lstm(4, LanguageModel.Lstm.DEFAULT_EMBED, 32, 1), l.architecture());
        assertInstanceOf(CharLSTM.class, l.model());
        assertEquals(lstm.validationLoss(), LanguageModelRun.evaluate(l, text, Device.CPU, 7, 0).loss(), 1e-4);
        assertEquals(l.architecture(), LanguageModel.fromMetadata(Safetensors.read(lstm.checkpoint()).metadata(), "x"));
    }

    /** Greedy generation continues the memorised text, past the GPT's context of 16 (where its window slides). */
    @Test void greedyGenerationContinuesThePattern() throws IOException {
        String expected = TEXT.substring(4, 4 + 40);   // what follows "abac"
        for (LanguageModelRun.Summary s : List.of(gpt, lstm)) {
            LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(s.checkpoint());
            StringBuilder out = new StringBuilder();
            int[] ids = TextGeneration.stream(lm, TextGeneration.encodePrompt(lm.tokenizer(), "abac"), 40, Sampling.greedy(), new Generator(0), out::append);
            assertEquals(expected, out.toString(), s.model());
            assertEquals(expected, lm.tokenizer().decode(ids), s.model());
        }
    }

    /** The cached steps give GPT.generate's tokens (a full pass per window there), sampling included, past the context. */
    @Test void gptStepsMatchItsOwnGenerate() throws IOException {
        GPT g = (GPT) LanguageModelRun.loadCheckpoint(gpt.checkpoint()).model();
        int[] prompt = IntStream.range(0, 20).map(i -> (i * 7) % 4).toArray();   // longer than the context: cropped
        Sampling sampling = new Sampling(1.5, 3);
        int[] ours = TextGeneration.generate(g, prompt, 30, sampling, new Generator(5), id -> { });
        Tensor theirs = g.generate(Tensor.of(Arrays.stream(prompt).asLongStream().toArray(), 1, 20), 30, sampling, new Generator(5));
        long[] tail = Arrays.copyOfRange(theirs.toLongArray(), 20, 50);
        assertArrayEquals(tail, Arrays.stream(ours).asLongStream().toArray());
    }

    /**
     * The LSTM carries its state: each step's token is the one a full pass over the whole sequence so far picks. Hidden
     * 6 takes the composed cell, 32 the fused steps, whose packed W_hh generation keeps from step to step.
     */
    @Test void lstmStepsMatchFullPasses() throws IOException {
        for (int hidden : new int[]{6, 32}) {
            CharLSTM m = new CharLSTM(5, 4, hidden, 2, new Generator(3));   // untrained: its picks are arbitrary, so they test the state
            int[] prompt = {1, 4, 2};
            int[] ours = TextGeneration.generate(m, prompt, 12, Sampling.greedy(), new Generator(0), id -> { });
            List<Long> seq = new ArrayList<>(Arrays.stream(prompt).mapToObj(i -> (long) i).toList());
            for (int i = 0; i < 12; i++) {
                Tensor logits = Tensor.noGrad(() -> m.forward(Tensor.of(seq.stream().mapToLong(Long::longValue).toArray(), 1, seq.size())));
                long next = Sampling.greedy().next(logits.select(0, 0).select(0, seq.size() - 1), null);
                assertEquals(next, ours[i], "hidden " + hidden + ", token " + i);
                seq.add(next);
            }
        }
    }

    /** The same seed gives the same text; the streamed pieces are the tokens' decode; the callback sees each id as it is picked. */
    @Test void samplingIsSeededAndStreamsEveryToken() throws IOException {
        LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(gpt.checkpoint());
        int[] prompt = TextGeneration.encodePrompt(lm.tokenizer(), "ab");
        List<String> pieces = new ArrayList<>();
        int[] a = TextGeneration.stream(lm, prompt, 25, new Sampling(2.0, 0), new Generator(7), pieces::add);
        int[] b = TextGeneration.stream(lm, prompt, 25, new Sampling(2.0, 0), new Generator(7), s -> { });
        assertArrayEquals(a, b);
        assertEquals(25, pieces.size(), "one character per token, each handed on at once");
        assertEquals(lm.tokenizer().decode(a), String.join("", pieces));
        List<Integer> seen = new ArrayList<>();
        int[] c = TextGeneration.generate(lm.model(), prompt, 25, new Sampling(2.0, 0), new Generator(7), seen::add);
        assertArrayEquals(a, c);
        assertEquals(Arrays.stream(a).boxed().toList(), seen);
    }

    /** A byte-level model emits the bytes of "é€😀" one token each; the stream holds them back until a character is whole. */
    @Test void streamingNeverSplitsACharacter() throws IOException {
        String chars = "é€😀ab";   // 2 + 3 + 4 + 1 + 1 bytes
        Path t = Files.writeString(dir.resolve("utf8.txt"), chars.repeat(300));
        TextTrainConfig cfg = TextTrainConfig.defaults(LanguageModel.Kind.LSTM, t, dir.resolve("bytes")).withSizes(24, 1, 0, 48, 0).withTraining(3, 0, 16, 2e-2);
        cfg = new TextTrainConfig(cfg.model(), cfg.context(), cfg.layers(), cfg.heads(), cfg.dim(), cfg.dropout(), TextTrainConfig.TokenizerKind.BYTE, null, null,
                t, cfg.epochs(), cfg.steps(), cfg.batchSize(), cfg.optimizer(), cfg.lr(), cfg.schedule(), cfg.seed(), cfg.device(), cfg.outDir(), 0,
                cfg.precision(), false);
        LanguageModelRun.Summary s = LanguageModelRun.run(cfg, new PrintWriter(new StringWriter()), TrainListener.NONE, null);
        LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(s.checkpoint());
        assertEquals(new ByteTokenizer(), lm.tokenizer());
        List<String> pieces = new ArrayList<>();
        int[] ids = TextGeneration.stream(lm, TextGeneration.encodePrompt(lm.tokenizer(), "ab"), 33, Sampling.greedy(), new Generator(0), pieces::add);
        assertEquals(chars.repeat(3), String.join("", pieces));          // 33 bytes: three periods
        assertEquals(lm.tokenizer().decode(ids), String.join("", pieces));
        assertEquals(List.of("é", "€", "😀", "a", "b"), pieces.subList(0, 5), "whole characters, as soon as each is complete");
    }

    @Test void promptErrorsNameTheCharacter() throws IOException {
        LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(gpt.checkpoint());
        var e = assertThrows(IllegalArgumentException.class, () -> TextGeneration.encodePrompt(lm.tokenizer(), "abé"));
        assertTrue(e.getMessage().startsWith("prompt: ") && e.getMessage().contains("'é' (U+00E9) at index 2 is not in the vocabulary of 4 characters"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TextGeneration.encodePrompt(lm.tokenizer(), ""));
        assertEquals("prompt: it is empty; generation starts from at least one token", e.getMessage());
    }

    @Test void aCheckpointOfAnotherModelIsNamed() throws IOException {
        Path cnn = dir.resolve("cnn.safetensors");
        Safetensors.write(cnn, Map.of("0.weight", Tensor.zeros(2, 2)), Map.of(TrainRun.META_MODEL, "cnn"));
        var e = assertThrows(IllegalArgumentException.class, () -> LanguageModelRun.loadCheckpoint(cnn));
        assertEquals(cnn + " holds a cnn image classifier, not a language model; give a checkpoint of 'kiln train --model gpt|lstm'", e.getMessage());
        Path bare = dir.resolve("bare.safetensors");
        Safetensors.write(bare, Map.of("0.weight", Tensor.zeros(2, 2)), Map.of(TrainRun.META_MODEL, "gpt", "kiln.gpt.vocab", "4"));
        e = assertThrows(IllegalArgumentException.class, () -> LanguageModelRun.loadCheckpoint(bare));
        assertTrue(e.getMessage().startsWith(bare + ": metadata kiln.gpt.context is missing"), e.getMessage());
    }

    @Test void textErrorsSayWhatToChange() throws IOException {
        Path empty = Files.writeString(dir.resolve("empty.txt"), "");
        TextTrainConfig cfg = TextTrainConfig.defaults(LanguageModel.Kind.GPT, empty, dir.resolve("e"));
        var io = assertThrows(IOException.class, () -> LanguageModelRun.run(cfg, new PrintWriter(new StringWriter()), TrainListener.NONE, null));
        assertEquals(empty + ": the file is empty; a corpus needs some text", io.getMessage());
        Path shortText = Files.writeString(dir.resolve("short.txt"), "abcabcabc".repeat(20));
        var e = assertThrows(IllegalArgumentException.class, () -> LanguageModelRun.run(TextTrainConfig.defaults(LanguageModel.Kind.GPT, shortText,
                dir.resolve("s")), new PrintWriter(new StringWriter()), TrainListener.NONE, null));
        assertTrue(e.getMessage().startsWith(shortText + " (training part): ") && e.getMessage().endsWith("; give a longer text or a smaller --context"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TextTrainConfig.defaults(LanguageModel.Kind.GPT, shortText, dir).withSizes(16, 1, 5, 64, 0));
        assertEquals("--dim 64 must be a multiple of --heads 5", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new TextTrainConfig(LanguageModel.Kind.GPT, 16, 1, 1, 8, 0, TextTrainConfig.TokenizerKind.GPT2,
                null, null, shortText, 1, 0, 4, OptimizerKind.ADAMW, 1e-3, LrSchedule.CONSTANT, 0, Device.CPU, dir, 0, Precision.FP32, false));
        assertEquals("--tokenizer gpt2 needs --vocab FILE (GPT-2's vocab.json) and --merges FILE (its merges.txt)", e.getMessage());
    }

    /** --steps: epochs of a fixed number of chunks read on through the chunks' own passes, so none repeats before a pass ends. */
    @Test void fixedEpochsReadOnThroughThePasses() {
        TokenChunks chunks = TokenChunks.shuffled(IntStream.range(0, 100).toArray(), 4, 1);   // 19 chunks a pass
        int n = chunks.size(), size = 7;
        List<Long> stream = new ArrayList<>(), expected = new ArrayList<>();
        for (int e = 0; e < 6; e++) {
            var epoch = new LanguageModelRun.FixedEpochs(chunks, size, 0).forEpoch(e);
            assertEquals(size, epoch.size());
            for (long v : epoch.batch(IntStream.range(0, size).toArray()).inputs().toLongArray()) stream.add(v);
        }
        for (int pass = 0; expected.size() < stream.size(); pass++) {
            for (long v : chunks.forEpoch(pass).batch(IntStream.range(0, n).toArray()).inputs().toLongArray()) expected.add(v);
        }
        assertEquals(expected.subList(0, stream.size()), stream);
    }
}
