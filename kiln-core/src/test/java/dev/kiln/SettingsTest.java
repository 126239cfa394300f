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
        Settings s = read(Map.of("kiln.cudnn.log", "true", "kiln.cache.dir", "/tmp/k"), Map.of("KILN_CUDNN_LOG", "0", "KILN_CACHE_DIR", "/x"));
        assertTrue(s.cudnnLog());
        assertEquals(Path.of("/tmp/k"), s.cacheDir());
        assertEquals(List.of(Path.of("/a"), Path.of("/b")), read(Map.of(), Map.of("KILN_CUDA_LIB_PATH", "/a::/b")).cudaLibPath());
    }

    @Test void aValueThatDoesNotParseNamesTheVariable() {
        var e = assertThrows(IllegalArgumentException.class, () -> read(Map.of(), Map.of("KILN_CONV_TF32", "maybe")));
        assertEquals("kiln.conv.tf32 / KILN_CONV_TF32 is 'maybe'; expected 1/on/true or 0/off/false", e.getMessage());
        assertEquals("KILN_CUDNN_ALGO_CACHE", Settings.envName("kiln.cudnn.algo.cache"));
    }
}
