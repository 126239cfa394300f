package dev.kiln.arch;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every public type of kiln-core (top-level and nested) has a doc comment: the Javadoc jar is the library's manual.
 * (Javadoc's own lint runs in the build with every check but "missing", which would also demand one per member.)
 */
class DocCommentsTest {
    private static final Path SOURCES = Path.of("src/main/java");
    /** A public type declaration at the start of a line, after any annotations. */
    private static final Pattern PUBLIC_TYPE = Pattern.compile(
            "^[ \\t]*public\\s+(?:(?:abstract|final|sealed|non-sealed|static)\\s+)*(?:class|interface|enum|record|@interface)\\s+(\\w+)",
            Pattern.MULTILINE);

    static List<String> undocumented(String source, String file) {
        List<String> out = new ArrayList<>();
        Matcher m = PUBLIC_TYPE.matcher(source);
        while (m.find()) {
            String before = source.substring(0, m.start()).stripTrailing();
            // skip annotations between the comment and the declaration
            while (true) {
                String stripped = before.replaceFirst("@\\w+(\\.\\w+)*(\\([^()]*\\))?$", "").stripTrailing();
                if (stripped.equals(before)) break;
                before = stripped;
            }
            boolean docComment = before.endsWith("*/") && before.startsWith("/**", before.lastIndexOf("/*"));
            if (!docComment) {
                out.add(file + ": " + m.group(1));
            }
        }
        return out;
    }

    @Test void theCheckSeesAMissingComment() {
        assertEquals(List.of("X.java: Y"), undocumented("package a;\n/** ok */\npublic final class X {\n    public record Y(int a) {}\n}\n", "X.java"));
        assertEquals(List.of(), undocumented("package a;\n/** ok */\n@Deprecated\npublic final class X {}\n", "X.java"));
    }

    @Test void everyPublicTypeHasADocComment() throws IOException {
        assertTrue(Files.isDirectory(SOURCES), "run from the kiln-core module folder");
        List<String> missing = new ArrayList<>();
        try (Stream<Path> files = Files.walk(SOURCES)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java") && !p.endsWith("package-info.java")).sorted().toList()) {
                missing.addAll(undocumented(Files.readString(f), SOURCES.relativize(f).toString()));
            }
        }
        assertEquals(List.of(), missing, "public types without a doc comment");
    }
}
