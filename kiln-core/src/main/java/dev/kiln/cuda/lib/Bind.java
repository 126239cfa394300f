package dev.kiln.cuda.lib;

import dev.kiln.cuda.CudaException;
import dev.kiln.cuda.NativeLibs;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Optional;

/**
 * The raw-binding layer shared by cuBLAS, cuBLASLt, cuDNN and NVML: loads a library once (remembering a failure, so
 * every later use throws the same clear {@link CudaException.LibraryNotFound}) and turns symbols into downcall handles.
 *
 * <p>Convention: opaque handles (cublasHandle_t, descriptors, streams) and device pointers travel as {@code long}
 * ({@link #PTR}); on LP64 Linux a pointer and a 64-bit integer are passed the same way, and a {@code long} costs the
 * hot loop no {@code MemorySegment}. Host pointers that the library writes through (out-parameters, strings) are
 * {@link ValueLayout#ADDRESS} and come from a confined arena.
 */
final class Bind {
    private Bind() {}

    static final Linker LINKER = Linker.nativeLinker();
    /** An opaque handle or a device pointer, passed as a 64-bit integer. */
    static final ValueLayout.OfLong PTR = ValueLayout.JAVA_LONG;
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    static final ValueLayout.OfLong SIZE_T = ValueLayout.JAVA_LONG;
    static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE;
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;
    static final java.lang.foreign.AddressLayout ADDR = ValueLayout.ADDRESS;

    /** One library, loaded on first use; a failure to load is remembered and rethrown as the same exception. */
    static final class Library {
        private final String name;
        private final String[] sonames;
        private volatile Object loaded; // SymbolLookup or RuntimeException

        Library(String name, String... sonames) {
            this.name = name;
            this.sonames = sonames;
        }

        String name() { return name; }

        String[] sonames() { return sonames.clone(); }

        SymbolLookup lookup() {
            Object o = loaded;
            if (o == null) {
                synchronized (this) {
                    o = loaded;
                    if (o == null) {
                        try {
                            o = NativeLibs.load(name, sonames);
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

        /**
         * A downcall handle for {@code symbol}. A symbol this version of the library lacks does not fail here: the
         * handle throws when called, so an optional function fails only where it is used, naming itself.
         */
        MethodHandle bind(String symbol, FunctionDescriptor desc) {
            Optional<MemorySegment> addr = lookup().find(symbol);
            if (addr.isPresent()) return LINKER.downcallHandle(addr.get(), desc);
            MethodType type = desc.toMethodType();
            var missing = new UnsupportedOperationException(symbol + " is not exported by the " + name
                    + " library that was loaded (an older version?)");
            MethodHandle thrower = MethodHandles.throwException(type.returnType(), UnsupportedOperationException.class);
            thrower = MethodHandles.insertArguments(thrower, 0, missing);
            return MethodHandles.dropArguments(thrower, 0, type.parameterList());
        }

        boolean has(String symbol) {
            return lookup().find(symbol).isPresent();
        }
    }

    static FunctionDescriptor status(java.lang.foreign.MemoryLayout... args) {
        return FunctionDescriptor.of(INT, args);
    }

    /** A NUL-terminated C string at {@code p}, or "" for NULL. */
    static String cString(MemorySegment p) {
        if (p == null || p.address() == 0) return "";
        return p.reinterpret(4096).getString(0);
    }

    /** A fresh out-parameter of {@code layout} in {@code arena}, zeroed. */
    static MemorySegment out(Arena arena, java.lang.foreign.MemoryLayout layout) {
        return arena.allocate(layout);
    }

    /** Wraps a Throwable from {@code invokeExact} (it only ever is the native call's own failure). */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }
}
