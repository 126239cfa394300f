package dev.kiln.cuda;

import dev.kiln.Settings;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * NVRTC, the run-time CUDA C++ compiler ({@code libnvrtc.so.13} / {@code .12}), bound through {@link NativeLibrary}; a typed
 * wrapper {@link #compileToCubin} that turns failures into a {@link CudaException} carrying the compiler's log.
 */
public final class Nvrtc {
    private Nvrtc() {}

    static final NativeLibrary LIB = new NativeLibrary("nvrtc", "nvrtc", Nvrtc::errorString,
            "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so").afterLoad(Nvrtc::preloadBuiltins);

    private static final class H {
        static final MethodHandle version = LIB.bind("nvrtcVersion", ADDRESS, ADDRESS);
        static final MethodHandle create = LIB.bind("nvrtcCreateProgram", ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        static final MethodHandle compile = LIB.bind("nvrtcCompileProgram", ADDRESS, JAVA_INT, ADDRESS);
        static final MethodHandle cubinSize = LIB.bind("nvrtcGetCUBINSize", ADDRESS, ADDRESS);
        static final MethodHandle cubin = LIB.bind("nvrtcGetCUBIN", ADDRESS, ADDRESS);
        static final MethodHandle logSize = LIB.bind("nvrtcGetProgramLogSize", ADDRESS, ADDRESS);
        static final MethodHandle log = LIB.bind("nvrtcGetProgramLog", ADDRESS, ADDRESS);
        static final MethodHandle destroy = LIB.bind("nvrtcDestroyProgram", ADDRESS);
        static final MethodHandle errorString = LIB.bind("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    private static String errorString(int status) {
        try {
            return ((MemorySegment) H.errorString.invokeExact(status)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "NVRTC_ERROR_" + status;
        }
    }

    /** An nvrtcProgram, destroyed on close. */
    private static final class Program extends NativeHandle {
        Program(long address) { super("NVRTC program", address); }

        @Override protected void destroy(long address) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment p = a.allocate(ADDRESS);
                p.set(JAVA_LONG, 0, address);
                int ignored = (int) H.destroy.invokeExact(p);
            } catch (Throwable t) {
                throw NativeLibrary.rethrow(t);
            }
        }

        MemorySegment segment() { return MemorySegment.ofAddress(handle()); }
    }

    /**
     * NVRTC dlopens libnvrtc-builtins by its bare name at compile time, which fails when its folder is not on the
     * loader's path; loading it first from where Kiln finds libraries makes that dlopen find it already loaded.
     */
    private static void preloadBuiltins() {
        String[] names = {"libnvrtc-builtins.so.13.0", "libnvrtc-builtins.so.13.1", "libnvrtc-builtins.so.13.2",
                "libnvrtc-builtins.so.12.9", "libnvrtc-builtins.so.12.8", "libnvrtc-builtins.so.12.6", "libnvrtc-builtins.so.12.4"};
        String explicit = Settings.libraryPath("nvrtc").orElse(null);
        if (explicit != null && !explicit.isBlank()) {
            java.nio.file.Path p = java.nio.file.Path.of(explicit);
            java.nio.file.Path dir = java.nio.file.Files.isDirectory(p) ? p : p.getParent();
            for (String n : names) {
                java.nio.file.Path f = dir == null ? null : dir.resolve(n);
                if (f != null && java.nio.file.Files.isRegularFile(f)) {
                    SymbolLookup.libraryLookup(f, java.lang.foreign.Arena.global());
                    return;
                }
            }
        }
        try {
            NativeLibs.load("nvrtc-builtins", names);
        } catch (CudaException.LibraryNotFound e) {
            // NVRTC will say itself that it cannot find its builtins, if it cannot
        }
    }

    private static void check(int status, String call, String log) {
        if (status != 0) throw LIB.failure(call, status, log);
    }

    /** "13.0". */
    public static String version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(JAVA_INT), minor = a.allocate(JAVA_INT);
            check((int) H.version.invokeExact(major, minor), "nvrtcVersion", null);
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    /**
     * Compiles {@code source} (named {@code name} in messages) with {@code headers} (include name to text) and
     * {@code options}, and returns the CUBIN. A compile error throws with the program log in the message.
     */
    public static byte[] compileToCubin(String source, String name, Map<String, String> headers, List<String> options) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment progOut = a.allocate(ADDRESS);
            int nh = headers.size();
            MemorySegment hdrSrc = a.allocate(ADDRESS, Math.max(nh, 1)), hdrName = a.allocate(ADDRESS, Math.max(nh, 1));
            int i = 0;
            for (Map.Entry<String, String> e : headers.entrySet()) {
                hdrSrc.setAtIndex(ADDRESS, i, a.allocateFrom(e.getValue()));
                hdrName.setAtIndex(ADDRESS, i, a.allocateFrom(e.getKey()));
                i++;
            }
            MemorySegment hs = nh == 0 ? MemorySegment.NULL : hdrSrc, hn = nh == 0 ? MemorySegment.NULL : hdrName;
            check((int) H.create.invokeExact(progOut, a.allocateFrom(source), a.allocateFrom(name), nh, hs, hn), "nvrtcCreateProgram", null);
            try (Program program = new Program(progOut.get(JAVA_LONG, 0))) {
                MemorySegment prog = program.segment();
                MemorySegment opts = a.allocate(ADDRESS, Math.max(options.size(), 1));
                for (int k = 0; k < options.size(); k++) opts.setAtIndex(ADDRESS, k, a.allocateFrom(options.get(k)));
                int status = (int) H.compile.invokeExact(prog, options.size(), opts);
                if (status != 0) check(status, "nvrtcCompileProgram(" + name + ", " + String.join(" ", options) + ")", programLog(a, prog));
                MemorySegment size = a.allocate(JAVA_LONG);
                check((int) H.cubinSize.invokeExact(prog, size), "nvrtcGetCUBINSize", null);
                long n = size.get(JAVA_LONG, 0);
                MemorySegment bin = a.allocate(n);
                check((int) H.cubin.invokeExact(prog, bin), "nvrtcGetCUBIN", null);
                return bin.toArray(JAVA_BYTE);
            }
        } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
    }

    private static String programLog(Arena a, MemorySegment prog) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        if ((int) H.logSize.invokeExact(prog, size) != 0) return "(no log)";
        long n = size.get(JAVA_LONG, 0);
        MemorySegment log = a.allocate(Math.max(n, 1));
        if ((int) H.log.invokeExact(prog, log) != 0) return "(no log)";
        return log.getString(0);
    }
}
