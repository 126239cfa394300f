package dev.kiln.train;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/**
 * {@link CrashResumeTest} on the GPU: the tiny run in bf16 with its step captured as a CUDA graph, in deterministic
 * mode, killed with SIGKILL at 12 random moments and resumed each time, ends with an uninterrupted run's parameters and
 * optimizer state bit for bit (a replay draws the dropout masks an eager step would, so the eager warm-up steps of a
 * resumed run continue the same random stream).
 */
class CrashResumeGpuTest {
    @TempDir Path tmp;

    @BeforeAll static void requireGpu() { dev.kiln.cuda.GpuTests.requireGpu(CrashResumeGpuTest.class); }

    @Test void aGraphedBf16RunKilledAtRandomAndResumedEndsBitIdentical() throws Exception { CrashResumeTest.crashAndResume(tmp, true); }
}
