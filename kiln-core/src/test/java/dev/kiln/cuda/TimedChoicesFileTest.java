package dev.kiln.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The file that keeps cuDNN's benchmarked algorithms (and cuBLASLt's timed candidates): a round trip, torn lines skipped, a read-only place tolerated. */
class TimedChoicesFileTest {
    @Test void choicesSurviveANewProcessAndTornLinesAreSkipped(@TempDir Path dir) throws Exception {
        Path file = TimedChoicesFile.fileFor(dir, "cudnn", "91400", "NVIDIA H200 (x)");
        assertTrue(file.getFileName().toString().startsWith("cudnn-91400-NVIDIA_H200_x"), file.toString());
        TimedChoicesFile a = new TimedChoicesFile(file);
        assertNull(a.get("FORWARD float32 x (1, 1, 4, 4)"));
        a.put("FORWARD float32 x (1, 1, 4, 4)", 1, 2);
        a.put("BACKWARD_DATA bfloat16 x (2, 3, 4, 4)", 5, 1);
        Files.writeString(file, "BACKWARD_FILTER torn\t7\n", java.nio.file.StandardOpenOption.APPEND);
        TimedChoicesFile b = new TimedChoicesFile(file);
        assertArrayEquals(new int[]{1, 2}, b.get("FORWARD float32 x (1, 1, 4, 4)"));
        assertArrayEquals(new int[]{5, 1}, b.get("BACKWARD_DATA bfloat16 x (2, 3, 4, 4)"));
        assertNull(b.get("BACKWARD_FILTER torn"));
    }

    @Test void anUnwritablePlaceOnlyCostsTheSearch(@TempDir Path dir) throws Exception {
        Path blocker = dir.resolve("not-a-dir");
        Files.writeString(blocker, "x");
        TimedChoicesFile c = new TimedChoicesFile(blocker.resolve("cudnn.tsv"));
        c.put("FORWARD k", 3, 0); // the write fails; the choice holds in memory
        assertArrayEquals(new int[]{3, 0}, c.get("FORWARD k"));
    }
}
