package dev.kiln.data;

import dev.kiln.text.TextFile;
import dev.kiln.text.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Function;

/**
 * A text for language-model training: read from a UTF-8 file, tokenized once into a stream of ids, and split into a
 * training part and a validation part, the last {@code validationFraction} of the tokens (10% by default), as
 * nanoGPT splits Shakespeare. {@link #trainChunks} and {@link #validationChunks} cut the two parts into batches.
 *
 * <pre>{@code
 * TextCorpus corpus = TextCorpus.read(Path.of("input.txt"), CharTokenizer::fit, 0.1);
 * try (DataLoader train = DataLoader.builder(corpus.trainChunks(256, 42)).batchSize(64).build()) { ... }
 * }</pre>
 */
public final class TextCorpus {
    /** The share of tokens held out for validation unless told otherwise. */
    public static final double DEFAULT_VALIDATION_FRACTION = 0.1;

    private final String source;
    private final Tokenizer tokenizer;
    private final int[] train, validation;

    private TextCorpus(String source, Tokenizer tokenizer, int[] train, int[] validation) {
        this.source = source;
        this.tokenizer = tokenizer;
        this.train = train;
        this.validation = validation;
    }

    /**
     * The text of a UTF-8 file, which must not be empty.
     *
     * @throws IOException a missing file, an empty one, or bytes that are not UTF-8 (the message gives the byte
     *     offset); the message names the file
     */
    public static String readText(Path file) throws IOException {
        String text = TextFile.read(file);
        if (text.isEmpty()) throw new IOException(file + ": the file is empty; a corpus needs some text");
        return text;
    }

    /** The file's text, tokenized by {@code tokenizer}, with the default validation split. */
    public static TextCorpus read(Path file, Tokenizer tokenizer) throws IOException {
        return read(file, text -> tokenizer, DEFAULT_VALIDATION_FRACTION);
    }

    /**
     * The file's text, tokenized by the tokenizer that {@code tokenizerFor} makes from it ({@code CharTokenizer::fit}
     * learns the characters of the whole text, both parts), its last {@code validationFraction} held out.
     */
    public static TextCorpus read(Path file, Function<String, ? extends Tokenizer> tokenizerFor, double validationFraction) throws IOException {
        String text = readText(file);
        return of(file.toString(), text, tokenizerFor.apply(text), validationFraction);
    }

    /**
     * {@code text}, tokenized, its last {@code validationFraction} (in [0, 1)) held out; {@code source} names it in
     * messages. Text the tokenizer cannot encode is an {@link IllegalArgumentException} naming the source.
     */
    public static TextCorpus of(String source, String text, Tokenizer tokenizer, double validationFraction) {
        if (!(validationFraction >= 0 && validationFraction < 1)) {
            throw new IllegalArgumentException(source + ": the validation fraction must be in [0, 1), got " + validationFraction);
        }
        int[] ids;
        try {
            ids = tokenizer.encode(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
        int held = (int) Math.round(ids.length * validationFraction);
        return new TextCorpus(source, tokenizer, Arrays.copyOfRange(ids, 0, ids.length - held), Arrays.copyOfRange(ids, ids.length - held, ids.length));
    }

    /** Where the text came from (the file, or the name given to {@link #of}). */
    public String source() { return source; }

    public Tokenizer tokenizer() { return tokenizer; }

    /** The training tokens (a copy). */
    public int[] train() { return train.clone(); }

    /** The validation tokens (a copy). */
    public int[] validation() { return validation.clone(); }

    /** Tokens in the training part. */
    public int trainSize() { return train.length; }

    /** Tokens in the validation part. */
    public int validationSize() { return validation.length; }

    /** The training part as chunks of {@code context} inputs, a new offset and order each epoch ({@link TokenChunks#shuffled}). */
    public TokenChunks trainChunks(int context, long seed) {
        try {
            return TokenChunks.shuffled(train, context, seed);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + " (training part): " + e.getMessage(), e);
        }
    }

    /** The validation part as chunks of {@code context} inputs, in order ({@link TokenChunks#inOrder}): for a validation loss. */
    public TokenChunks validationChunks(int context) {
        try {
            return TokenChunks.inOrder(validation, context);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + " (validation part): " + e.getMessage(), e);
        }
    }
}
