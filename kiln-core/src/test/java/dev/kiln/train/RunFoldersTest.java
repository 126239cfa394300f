package dev.kiln.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;

import static org.junit.jupiter.api.Assertions.*;

class RunFoldersTest {
    @TempDir Path root;

    @Test void eachRunGetsItsOwnFolderAndLatestFollowsTheNewest() throws IOException {
        LocalDateTime t = LocalDateTime.of(2026, 11, 30, 16, 50, 7);
        Path a = RunFolders.newRun(root, "cnn", t), b = RunFolders.newRun(root, "cnn", t);
        assertEquals("20261130-165007-cnn", a.getFileName().toString());
        assertEquals("20261130-165007-cnn-2", b.getFileName().toString(), "the same second: a suffix, not the same folder");
        assertEquals(b.getFileName(), Files.readSymbolicLink(root.resolve("latest")));
        assertEquals(b.toRealPath(), root.resolve("latest").toRealPath());
    }

    @Test void aResumedRunBecomesTheLatestAgain() throws IOException {
        Path a = RunFolders.newRun(root, "cnn", LocalDateTime.of(2026, 1, 1, 0, 0));
        Path b = RunFolders.newRun(root, "cnn", LocalDateTime.of(2026, 1, 2, 0, 0));
        RunFolders.markResumed(a);
        assertEquals(a.toRealPath(), root.resolve("latest").toRealPath());
        Path elsewhere = Files.createDirectories(root.resolve("mine"));
        RunFolders.markResumed(elsewhere.resolve("sub"));   // no latest link beside it: nothing changes
        assertEquals(a.toRealPath(), root.resolve("latest").toRealPath());
        assertTrue(Files.exists(b));
    }

    @Test void aFailedStartLeavesNoTrace() throws IOException {
        Path a = RunFolders.newRun(root, "mlp", LocalDateTime.of(2026, 1, 1, 0, 0));
        Files.writeString(a.resolve("metrics.csv"), "epoch\n");
        Path previous = RunFolders.latest(root);
        Path b = RunFolders.newRun(root, "mlp", LocalDateTime.of(2026, 1, 2, 0, 0));
        RunFolders.discardIfEmpty(root, b, previous);
        assertFalse(Files.exists(b));
        assertEquals(a.getFileName(), Files.readSymbolicLink(root.resolve("latest")));
        RunFolders.discardIfEmpty(root, a, null);
        assertTrue(Files.exists(a.resolve("metrics.csv")), "a folder with files is kept");
    }

    @Test void anExplicitFolderHoldingARunIsRefusedUnlessOverwriting() throws IOException {
        Path out = Files.createDirectories(root.resolve("mine"));
        RunFolders.requireFresh(out, false);   // empty: fine
        Files.writeString(out.resolve("model.safetensors"), "x");
        var e = assertThrows(FileAlreadyExistsException.class, () -> RunFolders.requireFresh(out, false));
        assertTrue(e.getMessage().contains(out + ": holds an earlier run (model.safetensors); pass --overwrite"), e.getMessage());
        RunFolders.requireFresh(out, true);
    }
}
