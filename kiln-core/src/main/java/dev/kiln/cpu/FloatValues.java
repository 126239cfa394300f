package dev.kiln.cpu;

import dev.kiln.Tensor;

import static dev.kiln.cpu.CpuStorage.contiguousArray;

/**
 * Flat element access to a float32 or float64 tensor's array from its offset, in double, for the CPU kernels that
 * take either dtype: two implementations, so the JIT inlines both at a call site that sees one.
 */
sealed interface FloatValues permits FloatValues.Floats, FloatValues.Doubles {
    double get(int i);

    void set(int i, double v);

    /** t's values (a contiguous copy first when t is a strided view); null for null. op names the caller in errors. */
    static FloatValues of(Tensor t, String op) {
        if (t == null) return null;
        Tensor c = t.isContiguous() ? t : t.detach().contiguousCopy();
        Object a = contiguousArray(op, c);
        return a instanceof float[] f ? new Floats(f, c.offset()) : new Doubles((double[]) a, c.offset());
    }

    record Floats(float[] a, int off) implements FloatValues {
        @Override public double get(int i) { return a[off + i]; }

        @Override public void set(int i, double v) { a[off + i] = (float) v; }
    }

    record Doubles(double[] a, int off) implements FloatValues {
        @Override public double get(int i) { return a[off + i]; }

        @Override public void set(int i, double v) { a[off + i] = v; }
    }
}
