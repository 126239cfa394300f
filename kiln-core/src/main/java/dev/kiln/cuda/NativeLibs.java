package dev.kiln.cuda;

import dev.kiln.Settings;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds the NVIDIA libraries at run time; nothing CUDA is bundled. Order: an explicit path from the system property
 * {@code kiln.lib.<name>} or the environment variable {@code KILN_LIB_<NAME>} (a file or a folder), then the folders
 * in {@code KILN_CUDA_LIB_PATH}, {@code CUDA_HOME}/{@code CUDA_PATH}, the usual install places and the dynamic
 * loader's own path (ldconfig). Each library is tried under its versioned sonames, newest first.
 */
public final class NativeLibs {
    private NativeLibs() {}

    /** Libraries load once for the life of the process, like the CUDA context they serve. */
    private static final Arena GLOBAL = Arena.global();

    /**
     * Loads {@code name} (e.g. "cuda", "nvrtc", "cublas", "cublasLt", "cudnn", "nccl", "nvidia-ml").
     *
     * @param sonames file names to try in order, e.g. {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}
     * @throws CudaException.LibraryNotFound naming every place that was searched
     */
    public static SymbolLookup load(String name, String... sonames) {
        List<String> tried = new ArrayList<>();
        String key = name.replace('-', '_').toUpperCase();
        String explicit = Settings.libraryPath(name).orElse(null);
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit);
            if (Files.isRegularFile(p)) return SymbolLookup.libraryLookup(p, GLOBAL);
            if (Files.isDirectory(p)) {
                for (String so : sonames) {
                    Path f = p.resolve(so);
                    if (Files.isRegularFile(f)) return SymbolLookup.libraryLookup(f, GLOBAL);
                }
            }
            throw new CudaException.LibraryNotFound(name, List.of(explicit + " (from kiln.lib." + name + " / KILN_LIB_" + key + ")"));
        }
        for (Path dir : searchDirs()) {
            for (String so : sonames) {
                Path f = dir.resolve(so);
                tried.add(f.toString());
                if (Files.isRegularFile(f)) {
                    try {
                        return SymbolLookup.libraryLookup(f, GLOBAL);
                    } catch (IllegalArgumentException e) {
                        tried.add(f + " (failed to load: " + e.getMessage() + ")");
                    }
                }
            }
        }
        // last, the dynamic loader's own search (ldconfig cache, LD_LIBRARY_PATH)
        for (String so : sonames) {
            try {
                return SymbolLookup.libraryLookup(so, GLOBAL);
            } catch (IllegalArgumentException e) {
                tried.add(so + " (dynamic loader)");
            }
        }
        throw new CudaException.LibraryNotFound(name, tried);
    }

    /** Whether {@code load} would find the library, without throwing. */
    public static boolean available(String name, String... sonames) {
        try {
            load(name, sonames);
            return true;
        } catch (CudaException.LibraryNotFound e) {
            return false;
        }
    }

    static List<Path> searchDirs() {
        Set<String> dirs = new LinkedHashSet<>();
        for (Path d : Settings.get().cudaLibPath()) dirs.add(d.toString());
        for (String env : new String[]{"CUDA_HOME", "CUDA_PATH"}) {
            String h = System.getenv(env);
            if (h != null) {
                dirs.add(h + "/lib64");
                dirs.add(h + "/targets/x86_64-linux/lib");
                dirs.add(h + "/lib");
            }
        }
        String ld = System.getenv("LD_LIBRARY_PATH");
        if (ld != null) for (String d : ld.split(":")) if (!d.isBlank()) dirs.add(d);
        dirs.add("/usr/local/nvidia/lib64");
        dirs.add("/usr/local/cuda/targets/x86_64-linux/lib");
        dirs.add("/usr/local/cuda/lib64");
        for (String v : new String[]{"13.0", "13", "12.9", "12.8", "12.6", "12.4", "12"}) {
            dirs.add("/usr/local/cuda-" + v + "/targets/x86_64-linux/lib");
        }
        dirs.add("/usr/lib/x86_64-linux-gnu");
        dirs.add("/usr/lib64");
        dirs.add("/lib/x86_64-linux-gnu");
        dirs.add("/lib64");
        dirs.add("/lib");
        // pip wheels (nvidia-cublas-cu12, nvidia-cudnn-cu13, ...) put libraries under site-packages/nvidia/*/lib
        for (String py : new String[]{"/usr/lib/python3/dist-packages", "/usr/local/lib/python3.12/dist-packages",
                "/opt/torch/.venv/lib/python3.12/site-packages"}) {
            Path nv = Path.of(py, "nvidia");
            if (Files.isDirectory(nv)) {
                try (var s = Files.list(nv)) {
                    s.forEach(p -> dirs.add(p.resolve("lib").toString()));
                } catch (java.io.IOException ignored) {
                    // an unreadable folder is just not a place to search
                }
            }
        }
        List<Path> out = new ArrayList<>();
        for (String d : dirs) out.add(Path.of(d));
        return out;
    }
}
