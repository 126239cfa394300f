package dev.kiln.arch;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * README's library code is the example project's, verbatim: the example compiles and runs in CI, so the snippet a
 * reader copies does too.
 */
class ReadmeExampleTest {
    @Test void readmesJavaSnippetIsTheExamplesMarkedRegion() throws IOException {
        String readme = Files.readString(Path.of("../README.md"));
        String example = Files.readString(Path.of("../examples/resnet-consumer/src/main/java/dev/kiln/examples/ResNetExample.java"));
        int begin = example.indexOf("// README:begin\n"), end = example.indexOf("// README:end");
        assertTrue(begin >= 0 && end > begin, "the example marks its README region");
        String region = example.substring(begin + "// README:begin\n".length(), example.lastIndexOf('\n', end)).stripIndent() + "\n";
        int start = readme.indexOf("```java\n");
        assertTrue(start >= 0, "README has a java block");
        String snippet = readme.substring(start + "```java\n".length(), readme.indexOf("```", start + 7));
        assertEquals(region, snippet);
    }
}
