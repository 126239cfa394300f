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
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Compiles the kernel files under {@code /dev/kiln/cuda/kernels/} with NVRTC for a device's own architecture and
 * loads them as modules. CUBINs are cached in memory (one module per file and device) and on disk
 * ({@code KILN_CACHE_DIR}, else {@code ~/.cache/kiln/kernels}), keyed by a hash of the source, the headers, the
 * options, the NVRTC version and the architecture, so a second process skips the compiler.
 */
final class KernelCache {
    private KernelCache() {}

    static final String RESOURCE_DIR = "/dev/kiln/cuda/kernels/";
    /** The headers kept as files; {@link OpCodes#HEADER_NAME} is generated and added by {@link #headers()}. */
    static final List<String> HEADERS = List.of("common.cuh", "random.cuh");
    /** Every kernel file, one per op family (the offline compile test checks this list against the folder). */
    static final List<String> FILES = List.of("attention.cu", "convolution.cu", "dropout.cu", "elementwise.cu", "graph.cu", "indexing.cu", "losses.cu",
            "matmul.cu", "normalization.cu", "optim.cu", "pooling.cu", "quantized.cu", "random.cu", "recurrent.cu", "reductions.cu", "softmax.cu");

    private static final Map<String, MemorySegment> MODULES = new ConcurrentHashMap<>();
    private static volatile String nvrtcVersion;

    /** The module of kernel file {@code file} (e.g. "elementwise.cu") on {@code device}, compiled on first use. */
    static MemorySegment module(CudaDevice device, String file) {
        String key = device.index() + "/" + file;
        MemorySegment m = MODULES.get(key);
        if (m != null) return m;
        synchronized (KernelCache.class) {
            m = MODULES.get(key);
            if (m != null) return m;
            byte[] cubin = cubin(device, file);
            device.makeCurrent();
            m = Driver.moduleLoadData(cubin);
            MODULES.put(key, m);
            return m;
        }
    }

    static String arch(CudaDevice d) { return "sm_" + d.computeCapabilityMajor() + d.computeCapabilityMinor(); }

    private static byte[] cubin(CudaDevice device, String file) {
        String source = resource(file);
        Map<String, String> headers = headers();
        List<String> options = List.of("--gpu-architecture=" + arch(device), "-default-device", "--std=c++17", "-lineinfo");
        if (nvrtcVersion == null) nvrtcVersion = Nvrtc.version();
        String key = sha256(source + "\0" + headers + "\0" + options + "\0" + nvrtcVersion + "\0" + arch(device));
        Path cached = cacheDir().resolve(file.replace(".cu", "") + "-" + key.substring(0, 24) + ".cubin");
        try {
            if (Files.isRegularFile(cached)) return Files.readAllBytes(cached);
        } catch (IOException e) {
            // an unreadable cache entry is recompiled
        }
        byte[] bin = Nvrtc.compileToCubin(source, file, headers, options);
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

    static String resource(String name) {
        try (InputStream in = KernelCache.class.getResourceAsStream(RESOURCE_DIR + name)) {
            if (in == null) throw new IllegalStateException("kernel source " + RESOURCE_DIR + name + " is missing from the jar");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
