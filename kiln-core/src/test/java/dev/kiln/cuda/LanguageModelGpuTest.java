package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.models.Sampling;
import dev.kiln.train.LanguageModel;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.Precision;
import dev.kiln.train.TextGeneration;
import dev.kiln.train.TextTrainConfig;
import dev.kiln.train.TrainListener;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kiln train --model gpt|lstm on the GPU (the GPT's steps replayed as a CUDA graph, the LSTM under bf16 autocast), then
 * generation there: the memorised text comes back, and the GPU's greedy tokens are the CPU's for the same checkpoint.
 */
class LanguageModelGpuTest {
    static final Device GPU = Device.cuda(0);
    /** After an 'a' the next character depends on the one before it: below (3/6)·ln 3 ≈ 0.55 the model uses its context. */
    static final String TEXT = "abacad".repeat(400);

    @TempDir Path dir;

    @BeforeEach void needsAGpu() {
        GpuTests.requireGpu(LanguageModelGpuTest.class);
    }

    private LanguageModelRun.Summary train(TextTrainConfig cfg, Precision precision, boolean graphs) throws IOException {
        TextTrainConfig c = new TextTrainConfig(cfg.model(), cfg.context(), cfg.layers(), cfg.heads(), cfg.dim(), cfg.dropout(), cfg.tokenizer(), null, null,
                cfg.text(), cfg.epochs(), cfg.steps(), cfg.batchSize(), cfg.optimizer(), cfg.lr(), cfg.schedule(), cfg.seed(), GPU, cfg.outDir(), 0,
                precision, graphs);
        return LanguageModelRun.run(c, new PrintWriter(new StringWriter()), TrainListener.NONE, null);
    }

    @Test void trainsAndGeneratesOnTheGpu() throws IOException {
        Path text = Files.writeString(dir.resolve("abac.txt"), TEXT);
        LanguageModelRun.Summary gpt = train(TextTrainConfig.defaults(LanguageModel.Kind.GPT, text, dir.resolve("gpt")).withSizes(16, 1, 4, 64, 0)
                .withTraining(8, 0, 16, 3e-3), Precision.FP32, true);
        LanguageModelRun.Summary lstm = train(TextTrainConfig.defaults(LanguageModel.Kind.LSTM, text, dir.resolve("lstm")).withSizes(16, 1, 0, 32, 0)
                .withTraining(3, 0, 16, 2e-2), Precision.BF16, false);
        String expected = TEXT.substring(4, 44);
        for (LanguageModelRun.Summary s : new LanguageModelRun.Summary[]{gpt, lstm}) {
            assertTrue(s.validationLoss() < 0.25, s.model() + ": " + s.history());
            LanguageModelRun.Loaded onCpu = LanguageModelRun.loadCheckpoint(s.checkpoint()), onGpu = LanguageModelRun.loadCheckpoint(s.checkpoint());
            onGpu.model().to(GPU);
            int[] prompt = TextGeneration.encodePrompt(onGpu.tokenizer(), "abac");
            StringBuilder out = new StringBuilder();
            int[] gpuIds = TextGeneration.stream(onGpu, prompt, 40, Sampling.greedy(), new Generator(0), out::append);
            assertEquals(expected, out.toString(), s.model());
            assertArrayEquals(TextGeneration.generate(onCpu.model(), prompt, 40, Sampling.greedy(), new Generator(0), id -> { }), gpuIds, s.model());
            // the run evaluated in its precision (the LSTM's in bf16), this in float32
            assertEquals(s.validationLoss(), LanguageModelRun.evaluate(onGpu, text, GPU, 16, 0).loss(), s == gpt ? 2e-3 : 0.02, s.model());
        }
    }
}
