package dev.kiln;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SettingsTest {
    private static Settings read(Map<String, String> props, Map<String, String> env) { return Settings.read(props::get, env); }

    @Test void defaultsWhenNothingIsSet() {
        Settings s = read(Map.of(), Map.of());
        assertFalse(s.debug());
        assertTrue(s.cudnn());
        assertTrue(s.convTf32());
        assertFalse(s.cudnnBenchmark());
        assertEquals(Settings.SmallConv.ON, s.smallConv());
        assertEquals(List.of(), s.cudaLibPath());
        assertTrue(s.cacheDir().endsWith(Path.of(".cache", "kiln")));
    }

    @Test void zeroMeansOffAndOneMeansOn() {
        // KILN_DEBUG=0 used to turn debugging on: any value did
        assertFalse(read(Map.of(), Map.of("KILN_DEBUG", "0")).debug());
        assertTrue(read(Map.of(), Map.of("KILN_DEBUG", "1")).debug());
        assertFalse(read(Map.of(), Map.of("KILN_CUDNN", "off")).cudnn());
        assertEquals(Settings.SmallConv.ALL, read(Map.of(), Map.of("KILN_SMALL_CONV", "all")).smallConv());
    }

    @Test void aSystemPropertyWinsOverTheEnvironment() {
        Settings s = read(Map.of("kiln.log.level", "debug", "kiln.cache.dir", "/tmp/k"), Map.of("KILN_LOG_LEVEL", "error", "KILN_CACHE_DIR", "/x"));
        assertEquals(System.Logger.Level.DEBUG, s.logLevel());
        assertEquals(Path.of("/tmp/k"), s.cacheDir());
        assertEquals(List.of(Path.of("/a"), Path.of("/b")), read(Map.of(), Map.of("KILN_CUDA_LIB_PATH", "/a::/b")).cudaLibPath());
    }

    /** README's table is the documentation of record: every property Settings reads is in it, with its variable. */
    @Test void everySettingIsInTheReadmeTable() throws java.io.IOException {
        String source = java.nio.file.Files.readString(Path.of("src/main/java/dev/kiln/Settings.java"));
        String readme = java.nio.file.Files.readString(Path.of("../README.md"));
        var m = java.util.regex.Pattern.compile("\"(kiln\\.[a-z.]+[a-z])\"").matcher(source);
        int n = 0;
        while (m.find()) {
            String property = m.group(1);
            if (property.equals("kiln.lib")) continue;   // the per-library prefix, documented as kiln.lib.<name>
            n++;
            assertTrue(readme.contains("| `" + property + "` | `" + Settings.envName(property) + "` |"), property + " is missing from README's table");
        }
        assertTrue(n >= 10, "found only " + n + " properties in Settings.java");
    }

    @Test void aValueThatDoesNotParseNamesTheVariable() {
        var e = assertThrows(IllegalArgumentException.class, () -> read(Map.of(), Map.of("KILN_CONV_TF32", "maybe")));
        assertEquals("kiln.conv.tf32 / KILN_CONV_TF32 is 'maybe'; expected 1/on/true or 0/off/false", e.getMessage());
        assertEquals("KILN_CUDNN_ALGO_CACHE", Settings.envName("kiln.cudnn.algo.cache"));
    }
}
