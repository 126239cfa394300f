package dev.kiln.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compiles every CUDA kernel file without a GPU, so a syntax error fails CI: with {@code nvcc} when it is on the
 * PATH, and with NVRTC (the compiler Kiln uses at run time) when libnvrtc can be found, each with the generated
 * {@code op_codes.cuh}. Skips with a message when neither is there. Also checks the generated op codes.
 */
class KernelSourcesTest {
    private static final Path DIR = Path.of("src/main/resources/dev/kiln/cuda/kernels");

    /** Run from kiln-core's folder with its sources (a GPU bundle runs the tests from jars). */
    private static boolean inSourceTree() {
        return Files.isRegularFile(DIR.resolve("common.cuh")) && Files.isRegularFile(Path.of("src/main/java/dev/kiln/cuda/CudaBackend.java"));
    }

    /** The kernel files, copied from the classpath (as the runtime reads them) into a temporary folder. */
    private static List<Path> kernelFiles() throws IOException {
        if (inSourceTree()) {   // not in a GPU bundle, which has the jars only
            List<String> onDisk = new ArrayList<>();
            try (var s = Files.list(DIR)) {
                s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu")).sorted().forEach(onDisk::add);
            }
            assertEquals(KernelCache.FILES, onDisk, "KernelCache.FILES must list every .cu file in " + DIR);
        }
        Path tmp = Files.createTempDirectory("kiln-kernels");
        for (Map.Entry<String, String> h : KernelCache.headers().entrySet()) Files.writeString(tmp.resolve(h.getKey()), h.getValue());
        List<Path> files = new ArrayList<>();
        for (String f : KernelCache.FILES) {
            Path p = tmp.resolve(f);
            Files.writeString(p, KernelCache.resource(f));
            files.add(p);
        }
        return files;
    }

    private static boolean nvccOnPath() {
        try {
            Process p = new ProcessBuilder("nvcc", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test void everyKernelFileCompilesWithNvcc() throws Exception {
        Assumptions.assumeTrue(nvccOnPath(), "nvcc is not on the PATH: skipping the offline kernel compile");
        List<Path> files = kernelFiles();
        assertFalse(files.isEmpty(), "no .cu files under " + DIR);
        List<String> failures = new ArrayList<>();
        for (Path f : files) {
            Process p = new ProcessBuilder("nvcc", "-arch=" + KernelCache.arch(9, 0), "-std=c++17", "--cubin", "-o", "/dev/null", f.toString())
                    .redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(300, TimeUnit.SECONDS), "nvcc timed out on " + f);
            if (p.exitValue() != 0 || log.contains("warning")) failures.add(f.getFileName() + ":\n" + log);
        }
        assertEquals(List.of(), failures, "nvcc rejected kernel files");
    }

    /** The jar's prebuilt kernels land where the runtime looks for them: named by the hash of these very sources. */
    @Test void prebuiltKernelsAreWhereTheRuntimeLooks() throws Exception {
        Assumptions.assumeTrue(nvccOnPath(), "nvcc is not on the PATH: no prebuilt kernels to check");
        Path classes = Files.createTempDirectory("kiln-prebuilt");
        assertEquals(1, PrebuiltKernels.build("nvcc", classes, List.of("90"), List.of("graph.cu")));
        Path cubin = classes.resolve(KernelCache.prebuiltResource("sm_90a", "graph.cu").substring(1));
        byte[] b = Files.readAllBytes(cubin);
        assertTrue(b.length > 4 && b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F', "an ELF CUBIN at " + cubin);
        assertNotEquals(KernelCache.prebuiltResource("sm_90", "graph.cu"), KernelCache.prebuiltResource("sm_80", "graph.cu"));
        assertNotEquals(KernelCache.prebuiltResource("sm_90", "graph.cu"), KernelCache.prebuiltResource("sm_90", "optim.cu"));
    }

    /**
     * Every kernel the Java side looks up by a fixed name ({@code new Kernels.Table(dev, "x.cu", "name")}, per dtype,
     * or {@code Kernels.Single}) is defined in that file: a kernel whose instantiation went missing compiles fine and
     * fails only at its first launch on a GPU, which CI does not have.
     */
    @Test void everyKernelTheBackendLooksUpIsDefined() throws Exception {
        Assumptions.assumeTrue(nvccOnPath(), "nvcc is not on the PATH: skipping the kernel-name check");
        Path sources = Path.of("src/main/java/dev/kiln/cuda");
        Assumptions.assumeTrue(inSourceTree(), "not in the source tree");
        java.util.regex.Pattern lookup = java.util.regex.Pattern.compile("new Kernels\\.(Table|Single)\\(\\w+, \"([\\w.]+)\", \"(\\w+)\"(, true)?\\)");
        Map<String, List<String[]>> wanted = new java.util.TreeMap<>();   // file -> {kind, name, pairs}
        try (var files = Files.list(sources)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                var m = lookup.matcher(Files.readString(f));
                while (m.find()) wanted.computeIfAbsent(m.group(2), k -> new ArrayList<>()).add(new String[]{m.group(1), m.group(3), m.group(4)});
            }
        }
        assertTrue(wanted.size() >= 10, "found the kernel look-ups of only " + wanted.keySet());
        Path dir = kernelFiles().getFirst().getParent();
        List<String> missing = new ArrayList<>();
        for (var e : wanted.entrySet()) {
            Path ptx = dir.resolve(e.getKey() + ".ptx");
            Process p = new ProcessBuilder("nvcc", "-arch=" + KernelCache.arch(9, 0), "-std=c++17", "--ptx", "-o", ptx.toString(), dir.resolve(e.getKey()).toString())
                    .redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0, e.getKey() + ": " + log);
            java.util.Set<String> entries = new java.util.HashSet<>();
            var m = java.util.regex.Pattern.compile("\\.entry\\s+(\\w+)").matcher(Files.readString(ptx));
            while (m.find()) entries.add(m.group(1));
            for (String[] k : e.getValue()) {
                boolean found = k[0].equals("Single") ? entries.contains(k[1])
                        : java.util.Arrays.stream(Kernels.SUFFIX).anyMatch(sfx -> entries.stream().anyMatch(n -> n.startsWith(k[1] + "_" + sfx)
                        && (k[2] != null || n.equals(k[1] + "_" + sfx))));
                if (!found) missing.add(e.getKey() + ": " + k[1] + (k[0].equals("Table") ? "_<dtype>" : ""));
            }
        }
        assertEquals(List.of(), missing, "kernels the backend looks up but no file defines");
    }

    @Test void everyKernelFileCompilesWithNvrtc() throws Exception {
        boolean nvrtc;
        try {
            Nvrtc.version();
            nvrtc = true;
        } catch (CudaException e) {
            nvrtc = false;
        }
        Assumptions.assumeTrue(nvrtc, "libnvrtc not found (set KILN_LIB_NVRTC): skipping the NVRTC compile");
        Map<String, String> headers = KernelCache.headers();   // every header, the generated one too, as at run time
        for (Path f : kernelFiles()) {
            String name = f.getFileName().toString();
            byte[] cubin = Nvrtc.compileToCubin(KernelCache.resource(name), name, headers,
                    List.of("--gpu-architecture=sm_90", "-default-device", "--std=c++17"));
            assertTrue(cubin.length > 1000, name + ": suspiciously small CUBIN");
        }
    }

    @Test void opCodesHeaderNamesEveryConstantWithItsOrdinal() {
        String header = OpCodes.header();
        assertEquals(List.of("UNARY", "BINARY", "REDUCE", "INDEX_ERROR"), List.copyOf(OpCodes.ENUMS.keySet()));
        for (Map.Entry<String, Class<? extends Enum<?>>> e : OpCodes.ENUMS.entrySet()) {
            for (Enum<?> c : e.getValue().getEnumConstants()) {
                String line = "#define " + e.getKey() + "_" + c.name() + " " + c.ordinal() + "\n";
                assertTrue(header.contains(line), "op_codes.cuh lacks " + line.strip());
            }
        }
        assertTrue(header.contains("#define UNARY_NEG 0\n") && header.contains("#define BINARY_RELU_BACKWARD 15\n"), header);
    }

    /** A kernel that switches on a number instead of an op_codes.cuh name breaks silently when an enum is reordered. */
    @Test void noKernelSwitchesOnANumberedCase() {
        java.util.regex.Pattern numbered = java.util.regex.Pattern.compile("case\\s+-?\\d+\\s*:");
        List<String> offenders = new ArrayList<>();
        for (String f : KernelCache.FILES) {
            String[] lines = KernelCache.resource(f).split("\n");
            for (int i = 0; i < lines.length; i++) if (numbered.matcher(lines[i]).find()) offenders.add(f + ":" + (i + 1) + ": " + lines[i].strip());
        }
        for (String h : KernelCache.HEADERS) {
            if (numbered.matcher(KernelCache.resource(h)).find()) offenders.add(h);
        }
        assertEquals(List.of(), offenders, "use the names of op_codes.cuh (dev.kiln.cuda.OpCodes), not numbers");
    }

    @Test void cudaIsAvailableNeverThrows() {
        boolean available = Cuda.isAvailable();
        if (!available) {
            assertEquals(0, Cuda.deviceCount());
            assertTrue(Cuda.unavailableReason() != null && !Cuda.unavailableReason().isBlank());
        }
    }
}
