package dev.kiln.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static dev.kiln.cli.MainTest.kiln;
import static org.junit.jupiter.api.Assertions.*;

/** kiln bench --compare: a device that cannot run is named with its reason; the others' figures fill the report. */
class BenchCompareCliTest {
    @TempDir Path dir;

    @Test void theReportHasTheCpuFigureAndSaysWhyADeviceIsMissing() throws Exception {
        Path report = dir.resolve("report");
        MainTest.Run r = kiln("bench", "--compare", "cpu,cuda:7", "--only", "mlp_b128_fp32", "--report", report.toString());
        assertEquals(0, r.code(), r.toString());
        String md = Files.readString(report.resolve("report.md"));
        assertTrue(md.contains("- cpu: ") && md.contains("cores, Vector API"), md);
        assertTrue(md.contains("- cuda:7: not available ("), "the missing device and why:\n" + md);
        assertTrue(md.matches("(?s).*\\| mlp_b128_fp32 \\| [0-9,]+ \\| - \\| - \\|.*"), "the CPU's figure, none for the missing device:\n" + md);
        assertEquals(md, r.out().substring(0, md.length()), "the same table printed");
    }
}
