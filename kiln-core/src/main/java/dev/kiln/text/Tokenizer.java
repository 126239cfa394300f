package dev.kiln.text;

import java.util.Map;

/**
 * Text to token ids and back. Three kinds: {@link CharTokenizer} (one id per character of a training text),
 * {@link ByteTokenizer} (one id per UTF-8 byte) and {@link Gpt2Tokenizer} (GPT-2's byte-level BPE). Each one writes
 * itself as JSON ({@link #toJson()}), small enough to travel in a checkpoint's metadata, and {@link #fromJson(String)}
 * makes it again, so a generator can rebuild the tokenizer a model was trained with.
 */
public sealed interface Tokenizer permits CharTokenizer, ByteTokenizer, Gpt2Tokenizer {

    /** The ids of {@code text}; text this tokenizer cannot represent is an {@link IllegalArgumentException} saying where. */
    int[] encode(String text);

    /** The text of {@code ids}; an id outside the vocabulary is an {@link IllegalArgumentException}. */
    String decode(int[] ids);

    /** Ids run from 0 to vocabSize() - 1: the size of a model's embedding and output layers. */
    int vocabSize();

    /** This tokenizer as a JSON object, {@code {"type": ..., ...}}, that {@link #fromJson(String)} reads back. */
    String toJson();

    /** A decoder for ids that arrive one at a time (generation). */
    StreamDecoder decoder();

    /**
     * Ids in, text out, as generation produces them. A token of a byte-level tokenizer can end inside a character
     * (an emoji is four bytes, maybe four tokens): its bytes are held until the character is complete, so
     * {@link #push} never returns half a character. Not thread-safe: one decoder per stream.
     */
    interface StreamDecoder {
        /** The text that {@code id} completes: possibly "", possibly several characters. */
        String push(int id);

        /** The bytes still held, as text (an unfinished character becomes U+FFFD); the decoder can then start again. */
        String flush();
    }

    /** The tokenizer that {@link #toJson()} wrote; JSON that is not one is an {@link IllegalArgumentException} saying why. */
    static Tokenizer fromJson(String json) {
        Map<String, Object> o = JsonFields.object(json);
        String type = JsonFields.string(o, "type");
        return switch (type) {
            case CharTokenizer.TYPE -> CharTokenizer.fromJson(o);
            case ByteTokenizer.TYPE -> new ByteTokenizer();
            case Gpt2Tokenizer.TYPE -> Gpt2Tokenizer.fromJson(o);
            default -> throw new IllegalArgumentException("tokenizer JSON: unknown type \"" + type + "\" (expected \""
                    + CharTokenizer.TYPE + "\", \"" + ByteTokenizer.TYPE + "\" or \"" + Gpt2Tokenizer.TYPE + "\")");
        };
    }
}
