package dev.kiln.cpu;

import dev.kiln.Settings;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Machine code Kiln writes at start-up (as oneDNN's JIT kernels), made callable through {@code java.lang.foreign}: the
 * bytes go into pages from libc's {@code mmap}, which {@code mprotect} then turns from writable to executable (never
 * both), and a critical downcall calls them with Java arrays passed in place. Linux on x86-64 only; callers check
 * {@link #x86Features()} for what the processor offers.
 */
final class MachineCode {
    private MachineCode() {}

    private static final Linker LINKER = Linker.nativeLinker();
    private static final int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;

    /**
     * The processor's feature flags as /proc/cpuinfo lists them ({@code avx2}, {@code fma}, ...), or none where this is
     * not Linux on x86-64: the only place Kiln writes machine code for.
     */
    static Set<String> x86Features() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT), arch = System.getProperty("os.arch", "");
        if (!os.startsWith("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) return Set.of();
        try (var lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("flags")).findFirst()
                    .map(l -> Set.of(l.substring(l.indexOf(':') + 1).trim().split("\\s+"))).orElse(Set.of());
        } catch (IOException | RuntimeException e) {
            return Set.of();
        }
    }

    /**
     * Why a kernel needing these processor features cannot run as machine code here, or null when it can:
     * {@code kiln.cpu.asm} off, another OS or processor, or a feature missing.
     */
    static String whyUnavailable(String... features) {
        if (!asmSetting()) return "kiln.cpu.asm is off";
        Set<String> have = x86Features();
        if (have.isEmpty()) return "not Linux on x86-64";
        for (String f : features) if (!have.contains(f)) return "the processor lacks " + f.toUpperCase(Locale.ROOT);
        return null;
    }

    /**
     * {@code kiln.cpu.asm}. A malformed other setting makes Settings fail as a whole: that error belongs to the code
     * that reads it, not to the first matrix product (kernels are chosen in class initializers), so it counts as on here.
     */
    private static boolean asmSetting() {
        try {
            return Settings.get().cpuAsm();
        } catch (IllegalArgumentException e) {
            return true;
        }
    }

    /**
     * A function of the given signature running {@code code}, as a critical downcall (no safepoint while it runs, so
     * heap segments of Java arrays pass as plain pointers). The pages stay mapped for the life of the process.
     */
    static MethodHandle function(byte[] code, FunctionDescriptor signature) throws Throwable {
        long size = (code.length + 4095L) & ~4095L;
        MemorySegment pages = (MemorySegment) Libc.MMAP.invokeExact(MemorySegment.NULL, size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
        if (pages.address() == -1L) throw new IllegalStateException("mmap of " + size + " bytes for machine code failed");
        pages = pages.reinterpret(size, Arena.global(), null);
        MemorySegment.copy(MemorySegment.ofArray(code), 0, pages, 0, code.length);
        int rc = (int) Libc.MPROTECT.invokeExact(pages, size, PROT_READ | PROT_EXEC);
        if (rc != 0) throw new IllegalStateException("mprotect could not make machine code executable (a policy forbidding it?)");
        return LINKER.downcallHandle(pages, signature, Linker.Option.critical(true));
    }

    /** libc's two calls, bound on first use. */
    private static final class Libc {
        static final MethodHandle MMAP = LINKER.downcallHandle(LINKER.defaultLookup().find("mmap").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
        static final MethodHandle MPROTECT = LINKER.downcallHandle(LINKER.defaultLookup().find("mprotect").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    }
}
