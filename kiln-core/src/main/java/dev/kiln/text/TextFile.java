package dev.kiln.text;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Reads a UTF-8 text file strictly: bytes that are not UTF-8 are an error giving their byte offset and line, where
 * {@link Files#readString} would say only "Input length = 1". A leading byte order mark is dropped.
 */
public final class TextFile {
    private TextFile() {}

    /** Java arrays stop just short of 2^31 elements. */
    private static final long MAX_BYTES = Integer.MAX_VALUE - 8;

    /**
     * The text of {@code file}.
     *
     * @throws NoSuchFileException when there is no such file
     * @throws IOException a folder, a file too large for one Java string, or bytes that are not UTF-8; the message
     *     names the file
     */
    public static String read(Path file) throws IOException {
        if (Files.isDirectory(file)) throw new IOException(file + ": is a folder, not a text file");
        if (!Files.exists(file)) throw new NoSuchFileException(file.toString(), null, "no such file");
        long size = Files.size(file);
        if (size > MAX_BYTES) throw new IOException(file + ": " + size + " bytes, more than one Java string holds");
        byte[] bytes = Files.readAllBytes(file);
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // never more chars than bytes
        CoderResult r = decoder.decode(in, out, true);
        if (r.isError()) throw notUtf8(file, bytes, in.position());
        decoder.flush(out);
        String text = out.flip().toString();
        return text.startsWith("\uFEFF") ? text.substring(1) : text;
    }

    private static IOException notUtf8(Path file, byte[] bytes, int at) {
        int line = 1;
        for (int i = 0; i < at; i++) if (bytes[i] == '\n') line++;
        return new IOException(String.format("%s: not valid UTF-8 at byte offset %d (line %d, byte 0x%02X)", file, at, line, bytes[at] & 0xFF));
    }
}
