package dev.kiln.cuda;

import dev.kiln.Settings;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Loads the kernel files under {@code /dev/kiln/cuda/kernels/} as modules: built into the jar for the common
 * architectures when it was packaged with nvcc ({@link PrebuiltKernels}), else compiled with NVRTC for the device's own
 * architecture. CUBINs are cached in memory (one module per file and device) and on disk
 * ({@code KILN_CACHE_DIR}, else {@code ~/.cache/kiln/kernels}), keyed by a hash of the source, the headers, the
 * options, the NVRTC version and the architecture, so a second process skips the compiler.
 */
final class KernelCache {
    private KernelCache() {}

    static final String RESOURCE_DIR = "/dev/kiln/cuda/kernels/";
    /** Kernels built with nvcc when the jar was ({@code mvn -Pprebuilt-kernels package}), one folder per architecture. */
    static final String PREBUILT_DIR = "/dev/kiln/cuda/cubins/";
    /** The headers kept as files; {@link OpCodes#HEADER_NAME} is generated and added by {@link #headers()}. */
    static final List<String> HEADERS = List.of("common.cuh", "pool.cuh", "random.cuh");
    /** Every kernel file, one per op family (the offline compile test checks this list against the folder). */
    static final List<String> FILES = List.of("attention.cu", "convolution.cu", "dropout.cu", "elementwise.cu", "graph.cu", "indexing.cu", "losses.cu",
            "matmul.cu", "normalization.cu", "optim.cu", "pooling.cu", "quantized.cu", "random.cu", "recurrent.cu", "reductions.cu", "softmax.cu", "sorting.cu");

    private static final Map<String, MemorySegment> MODULES = new ConcurrentHashMap<>();
    private static final Map<String, String> SOURCES = new ConcurrentHashMap<>();
    /** CUBINs compiled ahead of their first use ({@link #compileMissing}), until their module is loaded. */
    private static final Map<Path, byte[]> COMPILED = new ConcurrentHashMap<>();
    private static final System.Logger LOG = dev.kiln.Logging.logger(KernelCache.class);
    private static volatile String nvrtcVersion;

    /** The module of kernel file {@code file} (e.g. "elementwise.cu") on {@code device}, compiled on first use. */
    static MemorySegment module(CudaDevice device, String file) {
        String key = device.index() + "/" + file;
        MemorySegment m = MODULES.get(key);
        if (m != null) return m;
        synchronized (KernelCache.class) {
            m = MODULES.get(key);
            if (m != null) return m;
            device.makeCurrent();
            m = loadPrebuilt(device, file);
            if (m == null) m = Driver.moduleLoadData(cubin(device, file));
            MODULES.put(key, m);
            return m;
        }
    }

    /**
     * The CUBIN built for this file and architecture when the jar was (nvcc, {@link PrebuiltKernels}), loaded; null
     * when the jar has none for these exact sources, or the driver refuses it (older than the nvcc that built it).
     */
    private static MemorySegment loadPrebuilt(CudaDevice device, String file) {
        byte[] image;
        try (InputStream in = KernelCache.class.getResourceAsStream(prebuiltResource(arch(device), file))) {
            if (in == null) return null;
            image = in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
        try {
            return Driver.moduleLoadData(image);
        } catch (CudaException e) {
            LOG.log(System.Logger.Level.DEBUG, "the prebuilt " + file + " for " + arch(device) + " did not load (" + e.getMessage() + "); compiling it");
            return null;
        }
    }

    /** Where the jar keeps the prebuilt CUBIN of {@code file} for {@code arch} (e.g. sm_90): named by its sources' hash. */
    static String prebuiltResource(String arch, String file) {
        String key = sha256(resource(file) + "\0" + headers() + "\0nvcc");
        return PREBUILT_DIR + arch + "/" + file.replace(".cu", "") + "-" + key.substring(0, 24) + ".cubin";
    }

    static String arch(CudaDevice d) { return arch(d.computeCapabilityMajor(), d.computeCapabilityMinor()); }

    /**
     * The target kernels are built for: sm_XY, and on Hopper (9.0) sm_90a, whose wgmma instructions matmul.cu's
     * gemm_wg32 uses (an sm_90a CUBIN runs on 9.0 devices alone, which is all it is loaded on).
     */
    static String arch(int major, int minor) { return "sm_" + major + minor + (major == 9 && minor == 0 ? "a" : ""); }

    private static byte[] cubin(CudaDevice device, String file) {
        Path cached = cachePath(device, file);
        byte[] fresh = COMPILED.remove(cached);
        if (fresh != null) return fresh;
        try {
            if (Files.isRegularFile(cached)) return Files.readAllBytes(cached);
        } catch (IOException e) {
            // an unreadable cache entry is recompiled
        }
        compileMissing(device);
        fresh = COMPILED.remove(cached);
        return fresh != null ? fresh : compile(device, file, cached);
    }

    /** Where the CUBIN of {@code file} for {@code device} is cached: named by a hash of everything that shapes it. */
    private static Path cachePath(CudaDevice device, String file) {
        if (nvrtcVersion == null) nvrtcVersion = Nvrtc.version();
        String key = sha256(resource(file) + "\0" + headers() + "\0" + options(device) + "\0" + nvrtcVersion + "\0" + arch(device));
        return cacheDir().resolve(file.replace(".cu", "") + "-" + key.substring(0, 24) + ".cubin");
    }

    private static List<String> options(CudaDevice device) {
        return List.of("--gpu-architecture=" + arch(device), "-default-device", "--std=c++17", "-lineinfo");
    }

    /**
     * The first kernel this process lacks on a device means a fresh machine, driver or Kiln: compile every kernel file
     * not yet cached at once, on all cores (NVRTC compiles independent programs in parallel), saying so, so that the
     * first epoch waits for the slowest file rather than for all of them one after another, op by op.
     */
    private static void compileMissing(CudaDevice device) {
        Map<String, Path> missing = new LinkedHashMap<>();
        for (String f : FILES) {
            Path p = cachePath(device, f);
            boolean prebuilt = KernelCache.class.getResource(prebuiltResource(arch(device), f)) != null;
            if (!prebuilt && !Files.isRegularFile(p) && !COMPILED.containsKey(p)) missing.put(f, p);
        }
        if (missing.isEmpty()) return;
        LOG.log(System.Logger.Level.INFO, "compiling " + missing.size() + " CUDA kernel files for " + arch(device) + " (once per GPU architecture, "
                + "driver and Kiln version; cached in " + cacheDir() + ")");
        long t0 = System.nanoTime();
        int threads = Math.min(missing.size(), Runtime.getRuntime().availableProcessors());
        try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            List<Future<?>> done = new ArrayList<>();
            missing.forEach((f, p) -> done.add(pool.submit(() -> COMPILED.put(p, compile(device, f, p)))));
            for (Future<?> d : done) {
                try {
                    d.get();
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof RuntimeException r) throw r;
                    throw new IllegalStateException(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while compiling CUDA kernels", e);
                }
            }
        }
        LOG.log(System.Logger.Level.INFO, String.format(java.util.Locale.ROOT, "compiled the CUDA kernels in %.1f s on %d threads", (System.nanoTime() - t0) / 1e9, threads));
    }

    /** Compiles one kernel file and caches its CUBIN on disk (best effort). */
    private static byte[] compile(CudaDevice device, String file, Path cached) {
        byte[] bin = Nvrtc.compileToCubin(resource(file), file, headers(), options(device));
        try {
            Files.createDirectories(cached.getParent());
            Path tmp = Files.createTempFile(cached.getParent(), "kiln", ".tmp");
            Files.write(tmp, bin);
            Files.move(tmp, cached, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | UnsupportedOperationException e) {
            // the disk cache is an optimisation: a read-only home only costs a recompile next time
        }
        return bin;
    }

    /** Every header a kernel may include, name to text: the files of {@link #HEADERS} and the generated op codes. */
    static Map<String, String> headers() {
        Map<String, String> headers = new LinkedHashMap<>();
        for (String h : HEADERS) headers.put(h, resource(h));
        headers.put(OpCodes.HEADER_NAME, OpCodes.header());
        return headers;
    }

    static Path cacheDir() {
        return Settings.get().cacheDir().resolve("kernels");
    }

    /** A kernel file's or header's text, read from the jar once (the cache keys hash it at every module's first load). */
    static String resource(String name) { return SOURCES.computeIfAbsent(name, KernelCache::read); }

    private static String read(String name) {
        try (InputStream in = KernelCache.class.getResourceAsStream(RESOURCE_DIR + name)) {
            if (in == null) throw new IllegalStateException("kernel source " + RESOURCE_DIR + name + " is missing from the jar");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A short hash of a kernel file and every header: what a timed choice involving its kernels is kept under. */
    static String sourceHash(String file) {
        return sha256(resource(file) + "\0" + headers()).substring(0, 16);
    }

    private static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
