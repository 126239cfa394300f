package dev.kiln;

/** Reads and writes host arrays of each dtype's carrier type as doubles (the slow, general path). */
public final class HostArrays {
    private HostArrays() {}

    public static Object allocate(DType dtype, int n) {
        return switch (dtype) {
            case FLOAT32 -> new float[n];
            case FLOAT64 -> new double[n];
            case INT64 -> new long[n];
            case INT32 -> new int[n];
            case UINT8, BOOL -> new byte[n];
            case BFLOAT16, FLOAT16 -> new short[n];
        };
    }

    public static int length(Object array) { return java.lang.reflect.Array.getLength(array); }

    public static double get(Object a, DType dtype, int i) {
        return switch (dtype) {
            case FLOAT32 -> ((float[]) a)[i];
            case FLOAT64 -> ((double[]) a)[i];
            case INT64 -> ((long[]) a)[i];
            case INT32 -> ((int[]) a)[i];
            case UINT8 -> ((byte[]) a)[i] & 0xFF;
            case BOOL -> ((byte[]) a)[i] != 0 ? 1 : 0;
            case BFLOAT16 -> bf16ToFloat(((short[]) a)[i]);
            case FLOAT16 -> Float.float16ToFloat(((short[]) a)[i]);
        };
    }

    public static void set(Object a, DType dtype, int i, double v) {
        switch (dtype) {
            case FLOAT32 -> ((float[]) a)[i] = (float) v;
            case FLOAT64 -> ((double[]) a)[i] = v;
            case INT64 -> ((long[]) a)[i] = (long) v;
            case INT32 -> ((int[]) a)[i] = (int) v;
            case UINT8 -> ((byte[]) a)[i] = (byte) (long) v;
            case BOOL -> ((byte[]) a)[i] = (byte) (v != 0 ? 1 : 0);
            case BFLOAT16 -> ((short[]) a)[i] = floatToBf16((float) v);
            case FLOAT16 -> ((short[]) a)[i] = Float.floatToFloat16((float) v);
        }
    }

    public static float bf16ToFloat(short bits) { return Float.intBitsToFloat((bits & 0xFFFF) << 16); }

    /** Round-to-nearest-even, NaN kept NaN. */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) 0x7FC0;
        int rounding = 0x7FFF + ((x >>> 16) & 1);
        return (short) ((x + rounding) >>> 16);
    }

    /** The array as a heap memory segment (for bulk copies to native memory, in the platform's byte order). */
    public static java.lang.foreign.MemorySegment segment(Object array) {
        return switch (array) {
            case float[] a -> java.lang.foreign.MemorySegment.ofArray(a);
            case double[] a -> java.lang.foreign.MemorySegment.ofArray(a);
            case long[] a -> java.lang.foreign.MemorySegment.ofArray(a);
            case int[] a -> java.lang.foreign.MemorySegment.ofArray(a);
            case short[] a -> java.lang.foreign.MemorySegment.ofArray(a);
            case byte[] a -> java.lang.foreign.MemorySegment.ofArray(a);
            default -> throw new IllegalArgumentException("not a host array of a Kiln dtype: " + array.getClass());
        };
    }
}
