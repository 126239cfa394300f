package dev.kiln.train;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;

/**
 * Where a training run's files go, so no run silently replaces another's: by default a new folder per run,
 * {@code runs/<yyyyMMdd-HHmmss>-<model>}, with {@code runs/latest} a symbolic link to the newest; an explicit folder
 * that already holds a run is refused unless the caller says to overwrite it.
 */
public final class RunFolders {
    private RunFolders() {}

    /** The files a run writes; a folder holding any of them holds a run. */
    static final List<String> RUN_FILES = List.of("model.safetensors", "metrics.csv", "chart.png", TrainCheckpoint.DIR);

    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss");

    /** Creates {@code root/<now>-<model>} (with a -2, -3, ... suffix if that second is taken) and points root/latest at it. */
    public static Path newRun(Path root, String model, LocalDateTime now) throws IOException {
        Files.createDirectories(root);
        String base = STAMP.format(now) + "-" + model;
        Path dir = root.resolve(base);
        for (int k = 2; ; k++) {
            try {
                Files.createDirectory(dir);
                break;
            } catch (FileAlreadyExistsException taken) {
                dir = root.resolve(base + "-" + k);
            }
        }
        pointLatestAt(root, dir);
        return dir;
    }

    /**
     * root/latest -> dir, replaced atomically (a new link beside it, then a rename), so a reader never finds it missing.
     * A real folder named latest (from an older Kiln) is left alone: the new run is then reachable by its own name only.
     */
    static void pointLatestAt(Path root, Path dir) throws IOException {
        Path latest = root.resolve("latest");
        if (Files.exists(latest, LinkOption.NOFOLLOW_LINKS) && !Files.isSymbolicLink(latest)) return;
        Path tmp = root.resolve(".latest." + ProcessHandle.current().pid() + ".tmp");
        Files.deleteIfExists(tmp);
        try {
            Files.createSymbolicLink(tmp, dir.getFileName());
            Files.move(tmp, latest, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (UnsupportedOperationException | IOException noLinks) {
            Files.deleteIfExists(tmp);   // a file system without symbolic links: the run folder's own name still works
        }
    }

    /**
     * A resumed run becomes the latest again: when {@code runDir}'s parent holds a {@code latest} link (a runs folder),
     * the link is pointed at {@code runDir}; an explicit --out folder elsewhere is left as it is.
     */
    public static void markResumed(Path runDir) throws IOException {
        Path root = runDir.toAbsolutePath().getParent();
        if (root != null && Files.isSymbolicLink(root.resolve("latest"))) pointLatestAt(root, runDir.toAbsolutePath());
    }

    /** Where root/latest points now (relative, as written), or null. */
    public static Path latest(Path root) {
        try {
            return Files.readSymbolicLink(root.resolve("latest"));
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
    }

    /**
     * After a run that failed before writing anything: removes its empty folder and points root/latest back at
     * {@code previous} (or removes the link when there was none), so a failed start leaves no trace.
     */
    public static void discardIfEmpty(Path root, Path dir, Path previous) throws IOException {
        try (var files = Files.list(dir)) {
            if (files.findAny().isPresent()) return;
        }
        Files.delete(dir);
        if (previous != null) pointLatestAt(root, root.resolve(previous));
        else if (Files.isSymbolicLink(root.resolve("latest"))) Files.delete(root.resolve("latest"));
    }

    /** Refuses an explicit folder that already holds a run's files, unless {@code overwrite}. */
    public static void requireFresh(Path out, boolean overwrite) throws IOException {
        if (overwrite || !Files.isDirectory(out)) return;
        for (String f : RUN_FILES) {
            if (Files.exists(out.resolve(f))) {
                throw new FileAlreadyExistsException(out.toString(), null,
                        "holds an earlier run (" + f + "); pass --overwrite to replace it, or choose another --out");
            }
        }
    }
}
