package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.cpu.WeightCache;
import dev.kiln.models.CharLSTM;
import dev.kiln.models.GPT;
import dev.kiln.models.Sampling;
import dev.kiln.nn.KvCache;
import dev.kiln.nn.Model;
import dev.kiln.nn.RnnOutput;
import dev.kiln.nn.RnnState;
import dev.kiln.text.Tokenizer;

import java.util.Arrays;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * Text from a trained language model, a token at a time, each handed on as soon as it is picked ({@code kiln
 * generate}). The prompt runs through the model once; after that every token costs one small step: the GPT appends
 * one position to its key/value cache, the LSTM carries its state. A GPT looks at no more than its context: a longer
 * prompt is cropped to its last {@code context} tokens, as nanoGPT does, and once the sequence outgrows the context each
 * step runs over the last {@code context} tokens without the cache (the window moves every position, so nothing cached
 * stays valid), which gives exactly nanoGPT's tokens.
 *
 * <pre>{@code
 * var lm = LanguageModelRun.loadCheckpoint(Path.of("runs/latest/model.safetensors"));
 * int[] prompt = TextGeneration.encodePrompt(lm.tokenizer(), "To be");
 * TextGeneration.stream(lm, prompt, 200, new Sampling(0.8, 200), new Generator(0), System.out::print);
 * }</pre>
 */
public final class TextGeneration {
    private TextGeneration() {}

    /**
     * The ids of a prompt; an empty prompt, or a character the tokenizer does not have (a character tokenizer knows only
     * those of its training text), is an {@link IllegalArgumentException} naming it: "prompt: ...".
     */
    public static int[] encodePrompt(Tokenizer tokenizer, String prompt) {
        if (prompt.isEmpty()) throw new IllegalArgumentException("prompt: it is empty; generation starts from at least one token");
        try {
            return tokenizer.encode(prompt);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("prompt: " + e.getMessage(), e);
        }
    }

    /**
     * Generates {@code n} tokens after {@code prompt}, decodes them with the tokenizer's stream decoder (so no character
     * is ever split) and hands each piece of text to {@code text} as soon as it is complete; returns the new ids. The
     * model runs on the device its parameters are on.
     */
    public static int[] stream(LanguageModelRun.Loaded lm, int[] prompt, int n, Sampling sampling, Generator g, Consumer<String> text) {
        Tokenizer.StreamDecoder decoder = lm.tokenizer().decoder();
        int[] ids = generate(lm.model(), prompt, n, sampling, g, id -> {
            String piece = decoder.push(id);
            if (!piece.isEmpty()) text.accept(piece);
        });
        String rest = decoder.flush();
        if (!rest.isEmpty()) text.accept(rest);
        return ids;
    }

    /**
     * Generates {@code n} tokens after {@code prompt} with a {@link GPT} or {@link CharLSTM}, each picked by
     * {@code sampling} from the logits of the last position and passed to {@code onToken} at once; returns them.
     * Runs in evaluation mode without gradients; each step's tensors go back to the pool when the step ends. On the CPU
     * the kernels keep their packed weights from step to step ({@link WeightCache}): the model must not change meanwhile
     * (from {@code onToken}, say).
     */
    public static int[] generate(Model model, int[] prompt, int n, Sampling sampling, Generator g, IntConsumer onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty: generation starts from at least one token");
        if (n < 0) throw new IllegalArgumentException("the number of tokens to generate must be >= 0, got " + n);
        if (deviceOf(model).isCuda()) return generateSteps(model, prompt, n, sampling, g, onToken);
        return new WeightCache().around(() -> generateSteps(model, prompt, n, sampling, g, onToken));
    }

    private static int[] generateSteps(Model model, int[] prompt, int n, Sampling sampling, Generator g, IntConsumer onToken) {
        boolean training = model.isTraining();
        model.eval();
        int[] out = new int[n];
        try (GradMode ignored = GradMode.disabled(); Steps steps = steps(model)) {
            int next;
            try (MemoryScope step = MemoryScope.open()) {
                next = (int) sampling.next(steps.start(prompt), g);
            }
            for (int i = 0; i < n; i++) {
                out[i] = next;
                onToken.accept(next);
                if (i + 1 == n) break;
                try (MemoryScope step = MemoryScope.open()) {
                    next = (int) sampling.next(steps.next(next), g);
                }
            }
        } finally {
            model.train(training);
        }
        return out;
    }

    /** The model's logits one position at a time, with whatever it carries between steps. */
    private sealed interface Steps extends AutoCloseable permits GptSteps, LstmSteps {
        /** Logits (V) of the prompt's last position. */
        Tensor start(int[] prompt);

        /** Logits (V) after one more token. */
        Tensor next(int id);

        @Override void close();
    }

    private static Steps steps(Model model) {
        return switch (model) {
            case GPT gpt -> new GptSteps(gpt);
            case CharLSTM lstm -> new LstmSteps(lstm);
            default -> throw new IllegalArgumentException("text generation takes a GPT or a CharLSTM, got " + model.getClass().getSimpleName());
        };
    }

    private static Device deviceOf(Model model) { return model.parameters().getFirst().device(); }

    private static Tensor ids(long[] ids, Device device) { return Tensor.fromHost(ids, DType.INT64, new int[]{1, ids.length}, device); }

    /** (1, T, V) logits to those of the last position, (V). */
    private static Tensor last(Tensor logits) { return logits.select(0, 0).select(0, logits.size(1) - 1); }

    /** A GPT over its key/value cache; past the context, the last {@code context} tokens without it. */
    private static final class GptSteps implements Steps {
        private final GPT gpt;
        private final KvCache cache;
        private final Device device;
        private final long[] recent; // the last tokens, at most a context of them
        private int held;

        GptSteps(GPT gpt) {
            this.gpt = gpt;
            this.cache = gpt.newCache();
            this.device = deviceOf(gpt);
            this.recent = new long[gpt.config().context()];
        }

        @Override public Tensor start(int[] prompt) {
            for (int i = Math.max(0, prompt.length - recent.length); i < prompt.length; i++) recent[held++] = prompt[i];
            return last(gpt.forward(ids(Arrays.copyOf(recent, held), device), cache));
        }

        @Override public Tensor next(int id) {
            if (held == recent.length) {
                System.arraycopy(recent, 1, recent, 0, held - 1);
                held--;
            }
            recent[held++] = id;
            if (cache.length() < recent.length) return last(gpt.forward(ids(new long[]{id}, device), cache));
            return last(gpt.forward(ids(recent, device), null)); // the window moved: every position changed
        }

        @Override public void close() { cache.close(); }
    }

    /** A CharLSTM carrying its state from step to step. */
    private static final class LstmSteps implements Steps {
        private final CharLSTM lstm;
        private final Device device;
        private RnnState state; // kept out of the steps' memory scopes; released when replaced

        LstmSteps(CharLSTM lstm) {
            this.lstm = lstm;
            this.device = deviceOf(lstm);
        }

        @Override public Tensor start(int[] prompt) { return step(Arrays.stream(prompt).asLongStream().toArray()); }

        @Override public Tensor next(int id) { return step(new long[]{id}); }

        private Tensor step(long[] tokens) {
            RnnOutput r = lstm.forward(ids(tokens, device), state);
            close();
            state = new RnnState(r.state().h().contiguousCopy().keep(), r.state().c().contiguousCopy().keep());
            return last(r.output());
        }

        @Override public void close() {
            if (state == null) return;
            state.h().close();
            state.c().close();
            state = null;
        }
    }
}
