package dev.kiln.cuda;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Optional;
import java.util.function.IntFunction;

/**
 * One NVIDIA library bound through {@code java.lang.foreign}, the one binding style of the CUDA backend (driver,
 * NVRTC, cuBLAS, cuDNN, NVML; NCCL next). A binding is three pieces:
 * <pre>{@code
 * static final NativeLibrary LIB = new NativeLibrary("cuBLAS", "cublas", Cublas::statusName, "libcublas.so.13", "libcublas.so");
 *
 * private static final class H {   // downcall handles, constants the JIT folds into each call
 *     static final MethodHandle create = LIB.bind("cublasCreate_v2", ADDR);   // cublasStatus_t cublasCreate_v2(cublasHandle_t*)
 * }
 *
 * try {
 *     LIB.check("cublasCreate_v2", (int) H.create.invokeExact(out));  // non-zero: CudaException naming call and status
 * } catch (Throwable t) { throw NativeLibrary.rethrow(t); }
 * }</pre>
 * The library loads on first use. When it cannot be found every handle throws the same
 * {@link CudaException.LibraryNotFound} when called (so a holder class of handles always initialises); a symbol
 * this version lacks throws {@link CudaException.MissingSymbol} only where it is called. Opaque handles and device
 * pointers travel as {@code long} ({@link #PTR}) or {@code MemorySegment} ({@link #ADDR}); on LP64 Linux both pass
 * the same way, and a {@code long} costs a hot loop no segment.
 */
final class NativeLibrary {
    private static final Linker LINKER = Linker.nativeLinker();

    /** An opaque handle or a device pointer, passed as a 64-bit integer. */
    static final ValueLayout.OfLong PTR = ValueLayout.JAVA_LONG;
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    static final ValueLayout.OfLong SIZE_T = ValueLayout.JAVA_LONG;
    static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE;
    /** A host pointer: out-parameters, strings, host scalars. */
    static final AddressLayout ADDR = ValueLayout.ADDRESS;

    private final String displayName;
    private final String searchName;
    private final String[] sonames;
    private final IntFunction<String> statusNames;
    private volatile Runnable afterLoad;
    private volatile Object loaded; // SymbolLookup, or the RuntimeException loading it threw

    /**
     * @param displayName how errors name the library ("cuBLAS")
     * @param searchName  the name {@link NativeLibs#load} searches under ("cublas": {@code KILN_LIB_CUBLAS})
     * @param statusNames a status code's name as the library spells it (asked only when a call fails)
     * @param sonames     file names to try, newest first
     */
    NativeLibrary(String displayName, String searchName, IntFunction<String> statusNames, String... sonames) {
        this.displayName = displayName;
        this.searchName = searchName;
        this.statusNames = statusNames;
        this.sonames = sonames.clone();
    }

    /** Runs {@code hook} once, right after the library has loaded (before any of its functions is called). */
    NativeLibrary afterLoad(Runnable hook) {
        this.afterLoad = hook;
        return this;
    }

    String displayName() { return displayName; }

    /** The loaded library; throws {@link CudaException.LibraryNotFound} (the same one every time) when it is not there. */
    SymbolLookup lookup() {
        Object o = loaded;
        if (o == null) {
            synchronized (this) {
                o = loaded;
                if (o == null) {
                    try {
                        o = NativeLibs.load(searchName, sonames);
                        Runnable hook = afterLoad;
                        if (hook != null) hook.run();
                    } catch (RuntimeException e) {
                        o = e;
                    }
                    loaded = o;
                }
            }
        }
        if (o instanceof RuntimeException e) throw e;
        return (SymbolLookup) o;
    }

    boolean available() {
        try {
            lookup();
            return true;
        } catch (CudaException.LibraryNotFound e) {
            return false;
        }
    }

    /** Whether the library is there and exports {@code symbol}. */
    boolean has(String symbol) {
        return available() && lookup().find(symbol).isPresent();
    }

    /** A handle for {@code int symbol(args...)}: the status-returning function every library here mostly has. */
    MethodHandle bind(String symbol, MemoryLayout... args) {
        return bind(symbol, FunctionDescriptor.of(INT, args));
    }

    /** A handle for {@code symbol} of any signature; see the class comment for what a missing library or symbol does. */
    MethodHandle bind(String symbol, FunctionDescriptor desc) {
        RuntimeException failure;
        try {
            Optional<MemorySegment> addr = lookup().find(symbol);
            if (addr.isPresent()) return LINKER.downcallHandle(addr.get(), desc);
            failure = new CudaException.MissingSymbol(displayName, symbol);
        } catch (CudaException.LibraryNotFound e) {
            failure = e;
        }
        MethodType type = desc.toMethodType();
        MethodHandle thrower = MethodHandles.throwException(type.returnType(), failure.getClass());
        thrower = MethodHandles.insertArguments(thrower, 0, failure);
        return MethodHandles.dropArguments(thrower, 0, type.parameterList());
    }

    /** Throws a {@link CudaException} naming {@code call} unless {@code status} is 0 (success in every library here). */
    void check(String call, int status) {
        if (status != 0) throw failure(call, status, null);
    }

    CudaException failure(String call, int status, String detail) {
        return new CudaException(displayName, call, status, statusName(status), detail);
    }

    String statusName(int status) {
        try {
            String s = statusNames.apply(status);
            if (s != null && !s.isEmpty()) return s;
        } catch (RuntimeException ignored) {
            // a failing name lookup must not hide the failure being reported
        }
        return displayName + " status " + status;
    }

    /** {@code invokeExact} declares Throwable; it only ever is the call's own failure, rethrown unchanged. */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** A NUL-terminated C string at {@code p}, or "" for NULL. */
    static String cString(MemorySegment p) {
        if (p == null || p.address() == 0) return "";
        return p.reinterpret(4096).getString(0);
    }
}
