package dev.kiln.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Builds the kernel files with nvcc for the common GPU architectures into the jar's classes, at package time
 * ({@code mvn -Pprebuilt-kernels package}, where nvcc is: the build machines), so that a first run on such a GPU loads
 * them instead of compiling with NVRTC (tens of seconds of a first epoch). {@link KernelCache} finds them by a hash of
 * the sources and headers, so a CUBIN of other sources is never used; other architectures still compile at run time.
 * <pre>java dev.kiln.cuda.PrebuiltKernels OUTPUT_CLASSES_DIR 80,86,89,90</pre>
 */
public final class PrebuiltKernels {
    private PrebuiltKernels() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) throw new IllegalArgumentException("usage: PrebuiltKernels OUTPUT_CLASSES_DIR ARCHS (e.g. 80,86,89,90)");
        String nvcc = nvcc();
        if (nvcc == null) {
            System.out.println("kiln: nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): the jar gets no prebuilt kernels; NVRTC compiles them at run time");
            return;
        }
        List<String> archs = List.of(args[1].split(","));
        long t0 = System.nanoTime();
        int n = build(nvcc, Path.of(args[0]), archs, KernelCache.FILES);
        System.out.printf("kiln: built %d kernel CUBINs for %s with %s in %.0f s%n", n,
                String.join(", ", archs.stream().map(PrebuiltKernels::target).toList()), nvcc, (System.nanoTime() - t0) / 1e9);
    }

    /** Compiles {@code files} for each architecture into {@code classes}' prebuilt folder; returns how many. */
    static int build(String nvcc, Path classes, List<String> archs, List<String> files) throws Exception {
        Path src = Files.createTempDirectory("kiln-kernels");
        for (Map.Entry<String, String> h : KernelCache.headers().entrySet()) Files.writeString(src.resolve(h.getKey()), h.getValue());
        for (String f : files) Files.writeString(src.resolve(f), KernelCache.resource(f));
        List<Future<?>> jobs = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(Runtime.getRuntime().availableProcessors())) {
            for (String cc : archs) {
                String arch = target(cc);
                for (String f : files) {
                    Path out = classes.resolve(KernelCache.prebuiltResource(arch, f).substring(1));
                    jobs.add(pool.submit(() -> {
                        compile(nvcc, src.resolve(f), arch, out);
                        return null;
                    }));
                }
            }
            for (Future<?> j : jobs) j.get();
        }
        return jobs.size();
    }

    /** The target of a compute capability as the build lists it ("90": 9.0, so sm_90a), as {@link KernelCache#arch} names it. */
    private static String target(String cc) {
        int n = Integer.parseInt(cc.trim());
        return KernelCache.arch(n / 10, n % 10);
    }

    /** The options NVRTC gets at run time, as nvcc spells them (functions are device functions there by default). */
    private static void compile(String nvcc, Path source, String arch, Path out) throws IOException, InterruptedException {
        Files.createDirectories(out.getParent());
        Process p = new ProcessBuilder(nvcc, "-arch=" + arch, "-std=c++17", "--cubin", "-o", out.toString(), source.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(600, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("nvcc failed on " + source.getFileName() + " for " + arch + ":\n" + log);
        }
    }

    private static String nvcc() {
        List<String> candidates = new ArrayList<>(List.of("nvcc"));
        String home = System.getenv("CUDA_HOME");
        if (home != null) candidates.add(Path.of(home, "bin", "nvcc").toString());
        candidates.add("/usr/local/cuda/bin/nvcc");
        for (String c : candidates) {
            try {
                Process p = new ProcessBuilder(c, "--version").redirectErrorStream(true).start();
                p.getInputStream().readAllBytes();
                if (p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0) return c;
            } catch (IOException | InterruptedException e) {
                // try the next
            }
        }
        return null;
    }
}
