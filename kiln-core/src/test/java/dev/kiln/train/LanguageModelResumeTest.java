package dev.kiln.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** A language-model run (the GPT with dropout, fixed --steps epochs that read on through the text) resumes bit for bit. */
class LanguageModelResumeTest {
    @TempDir Path tmp;

    @Test void aGptRunResumedMidEpochAndAtAnEpochsEndEndsBitIdentical() throws IOException {
        Path text = Files.writeString(tmp.resolve("t.txt"), "the quick brown fox jumps over the lazy dog. ".repeat(40));
        TextTrainConfig cfg = TextTrainConfig.defaults(LanguageModel.Kind.GPT, text, tmp.resolve("straight")).withSizes(16, 1, 2, 32, 0.2)
                .withTraining(2, 4, 8, 3e-3);
        LanguageModelRun.run(cfg, new PrintWriter(new StringWriter()), TrainListener.NONE, null, new TrainRun.Checkpointing(1, 100, OnNan.STOP), null);
        List<Path> all = TrainCheckpoint.checkpoints(tmp.resolve("straight").resolve(TrainCheckpoint.DIR));
        assertEquals(8, all.size(), all.toString());
        for (int k : new int[]{2, 4, 5}) {
            Path resumed = tmp.resolve("resumed-" + k);
            Files.createDirectories(resumed.resolve(TrainCheckpoint.DIR));
            Files.copy(all.get(k - 1), resumed.resolve(TrainCheckpoint.DIR).resolve(all.get(k - 1).getFileName()));
            TrainCheckpoint.Found found = TrainCheckpoint.find(resumed);
            TextTrainConfig again = TrainCheckpoint.textConfig(found.contents().metadata(), resumed, null, null, null, false);
            StringWriter log = new StringWriter();
            LanguageModelRun.run(again, new PrintWriter(log, true), TrainListener.NONE, null, TrainRun.Checkpointing.DEFAULT, found);
            assertTrue(log.toString().contains("resuming from"), log.toString());
            TinyRuns.assertSameTensors(all.getLast(), TinyRuns.newest(resumed));
            TinyRuns.assertSameTensors(tmp.resolve("straight").resolve("model.safetensors"), resumed.resolve("model.safetensors"));
        }
    }
}
