package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.models.Sampling;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.TextGeneration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Continues a prompt with a language model trained by 'kiln train --model gpt|lstm': prints the prompt, then each "
                + "token as it is generated. The GPT steps over its key/value cache, the LSTM carries its state; a prompt longer "
                + "than the GPT's context is cropped to its last context tokens (as nanoGPT does), with a note on stderr.")
final class GenerateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "a model.safetensors file, or the folder kiln train wrote it to (runs/latest)")
    Path checkpoint;

    @Option(names = "--prompt", description = "the text to continue (default: a newline, as nanoGPT's sample.py)")
    String prompt = "\n";

    @Option(names = "--tokens", defaultValue = "500", description = "tokens to generate (default: ${DEFAULT-VALUE})")
    int tokens;

    @Option(names = "--temperature", defaultValue = "0.8", description = "logits are divided by it; 0 always takes the most likely token (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-k", defaultValue = "200", description = "sample among the K most likely tokens only; 0: all (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--seed", defaultValue = "0", description = "the sampling seed: the same seed, model and options give the same text (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Override public Integer call() throws Exception {
        Device dev;
        Sampling sampling;
        try {
            if (tokens < 1) throw new IllegalArgumentException("--tokens must be >= 1, got " + tokens);
            if (!(temperature >= 0) || Double.isInfinite(temperature)) {
                throw new IllegalArgumentException("--temperature must be a number >= 0 (0: always the most likely token), got " + temperature);
            }
            if (topK < 0) throw new IllegalArgumentException("--top-k must be >= 0 (0: all tokens), got " + topK);
            sampling = new Sampling(temperature, topK);
            dev = Devices.parse(device);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Path file = EvalCommand.checkpointFile(checkpoint);
        LanguageModelRun.Loaded lm = LanguageModelRun.loadCheckpoint(file);
        int[] ids;
        try {
            ids = TextGeneration.encodePrompt(lm.tokenizer(), prompt);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--" + e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        int limit = lm.architecture().contextLimit();
        if (ids.length > limit) {
            err.printf(Locale.ROOT, "kiln generate: the prompt's %d tokens exceed the model's context of %d; generating from its last %d%n",
                    ids.length, limit, limit);
            err.flush();
        }
        lm.model().to(dev);
        out.print(prompt);
        out.flush();
        TextGeneration.stream(lm, ids, tokens, sampling, new Generator(seed), piece -> {
            out.print(piece);
            out.flush();
        });
        out.println();
        out.flush();
        return 0;
    }
}
