package dev.kiln.cuda;

import dev.kiln.DType;

import java.lang.foreign.MemorySegment;

/**
 * Kernel functions of one device, looked up once: a {@link Table} holds one function per element type (or per
 * pair of types, for copies), resolved from its module on first use, so a launch does no lookup and no string work.
 */
final class Kernels {
    private Kernels() {}

    /** The kernel-name suffix of each DType, in ordinal order (as KILN_ALL_TYPES in common.cuh). */
    static final String[] SUFFIX = {"f32", "f64", "bf16", "f16", "i64", "i32", "u8", "b8"};

    static {
        DType[] ts = DType.values();
        String[] expected = {"FLOAT32", "FLOAT64", "BFLOAT16", "FLOAT16", "INT64", "INT32", "UINT8", "BOOL"};
        for (int i = 0; i < ts.length; i++) {
            if (!ts[i].name().equals(expected[i])) throw new IllegalStateException("DType order changed: update Kernels.SUFFIX");
        }
    }

    /** A resolved kernel: its CUfunction and its name (for error messages). */
    record Fn(MemorySegment handle, String name) {}

    /** Functions {@code prefix + suffix} of one kernel file. */
    static final class Table {
        private final CudaDevice device;
        private final String file;
        private final String[] names;
        private final Fn[] fns;
        private int dynamicShared;

        /** One entry per element type: prefix_f32, prefix_f64, ... */
        Table(CudaDevice device, String file, String prefix) {
            this.device = device;
            this.file = file;
            this.names = new String[SUFFIX.length];
            for (int i = 0; i < SUFFIX.length; i++) names[i] = prefix + "_" + SUFFIX[i];
            this.fns = new Fn[names.length];
        }

        /** One entry per (dst, src) pair: prefix_dst_src. */
        Table(CudaDevice device, String file, String prefix, boolean pairs) {
            this.device = device;
            this.file = file;
            this.names = new String[SUFFIX.length * SUFFIX.length];
            for (int d = 0; d < SUFFIX.length; d++) {
                for (int s = 0; s < SUFFIX.length; s++) names[d * SUFFIX.length + s] = prefix + "_" + SUFFIX[d] + "_" + SUFFIX[s];
            }
            this.fns = new Fn[names.length];
        }

        /** Functions that launch with {@code bytes} of dynamic shared memory, allowed past the default 48 KB on lookup. */
        Table dynamicShared(int bytes) {
            dynamicShared = bytes;
            return this;
        }

        Fn get(DType t) { return at(t.ordinal()); }

        Fn get(DType dst, DType src) { return at(dst.ordinal() * SUFFIX.length + src.ordinal()); }

        private Fn at(int i) {
            Fn f = fns[i];
            if (f == null) {
                synchronized (this) {
                    if (fns[i] == null) {
                        MemorySegment h = Driver.moduleGetFunction(KernelCache.module(device, file), names[i]);
                        if (dynamicShared > 48 << 10) Driver.funcSetMaxDynamicShared(h, dynamicShared, names[i]);
                        fns[i] = new Fn(h, names[i]);
                    }
                    f = fns[i];
                }
            }
            return f;
        }
    }

    /** A single named kernel. */
    static final class Single {
        private final CudaDevice device;
        private final String file, name;
        private int dynamicShared;
        private volatile Fn fn;

        Single(CudaDevice device, String file, String name) {
            this.device = device;
            this.file = file;
            this.name = name;
        }

        /** As {@link Table#dynamicShared}. */
        Single dynamicShared(int bytes) {
            dynamicShared = bytes;
            return this;
        }

        Fn get() {
            Fn f = fn;
            if (f == null) {
                synchronized (this) {
                    if (fn == null) {
                        MemorySegment h = Driver.moduleGetFunction(KernelCache.module(device, file), name);
                        if (dynamicShared > 48 << 10) Driver.funcSetMaxDynamicShared(h, dynamicShared, name);
                        fn = new Fn(h, name);
                    }
                    f = fn;
                }
            }
            return f;
        }
    }
}
