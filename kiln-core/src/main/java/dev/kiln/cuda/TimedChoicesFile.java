package dev.kiln.cuda;


import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Timed choices kept in a text file, one {@code key<TAB>a<TAB>b} line each, so a search runs once per machine rather
 * than once per process: cuDNN's convolution algorithms (a: the algorithm, b: its math type) and cuBLASLt's products
 * (a: the kept candidate's place in the heuristic's list, b: the list's length) and {@link TimedPick}'s (a: 1 for
 * the first way, 0 the second). The file is named after the library,
 * its version and the device (a new library or GPU starts afresh). A line that does not parse is skipped; a file that cannot be
 * written only costs the search next time: the cache is an optimisation, never a reason to fail.
 */
final class TimedChoicesFile implements TimedChoices {
    private final Path file;
    private final Map<String, int[]> entries = new ConcurrentHashMap<>();

    TimedChoicesFile(Path file) {
        this.file = file;
        try {
            if (Files.isRegularFile(file)) {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    String[] f = line.split("\t");
                    if (f.length != 3) continue;
                    try {
                        entries.put(f[0], new int[]{Integer.parseInt(f[1]), Integer.parseInt(f[2])});
                    } catch (NumberFormatException ignored) {
                        // a torn or foreign line: searched again when needed
                    }
                }
            }
        } catch (IOException ignored) {
            // unreadable: start empty
        }
    }

    /** The cache file of a library ({@code cudnn}, {@code cublaslt}) at a version, for a device, under {@code dir}. */
    static Path fileFor(Path dir, String library, String version, String deviceName) {
        return dir.resolve(library + "-" + version + "-" + deviceName.replaceAll("[^A-Za-z0-9._-]+", "_") + ".tsv");
    }

    @Override public int[] get(String key) {
        int[] v = entries.get(key);
        return v == null ? null : v.clone();
    }

    @Override public synchronized void put(String key, int a, int b) {
        if (key.indexOf('\t') >= 0 || key.indexOf('\n') >= 0) return;
        entries.put(key, new int[]{a, b});
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, key + "\t" + a + "\t" + b + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException ignored) {
            // read-only or full disk: the choice still holds for this process
        }
    }
}
