package dev.kiln.arch;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** No main source file of either module over 600 lines: a class that big holds more than one concept. */
class SourceSizeTest {
    static final int MAX_LINES = 600;

    @Test void noMainSourceFileIsOver600Lines() throws IOException {
        List<String> big;
        try (Stream<Path> files = Stream.concat(Files.walk(Path.of("src/main/java")), Files.walk(Path.of("../kiln-cli/src/main/java")))) {
            big = files.filter(p -> p.toString().endsWith(".java")).filter(p -> lines(p) > MAX_LINES).map(p -> p + " (" + lines(p) + " lines)").toList();
        }
        assertEquals(List.of(), big);
    }

    private static long lines(Path p) {
        try (Stream<String> s = Files.lines(p)) {
            return s.count();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
