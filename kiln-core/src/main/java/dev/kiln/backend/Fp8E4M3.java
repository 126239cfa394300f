package dev.kiln.backend;

/**
 * The FP8 E4M3 format of NVIDIA's Hopper tensor cores and the OCP FP8 specification ("E4M3FN"): 1 sign bit, 4 exponent
 * bits (bias 7), 3 mantissa bits; no infinities, NaN is S.1111.111, the largest finite value 448 (S.1111.110), the
 * smallest normal 2^-6 and the smallest subnormal 2^-9. Conversion rounds to nearest, ties to even, and saturates
 * values beyond 448 (and infinities) to ±448, as CUDA's {@code __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)};
 * NaN stays NaN. Scaled use: a tensor's scale maps its max |x| onto 448, and each element is stored as the code of x / scale.
 */
public final class Fp8E4M3 {
    private Fp8E4M3() {}

    /** The largest finite value. */
    public static final float MAX = 448f;

    private static final int NAN = 0x7F;

    /** The code of x (round to nearest even, saturating). */
    public static byte encode(float x) {
        if (Float.isNaN(x)) return (byte) NAN;
        int sign = Float.floatToRawIntBits(x) < 0 ? 0x80 : 0;
        double a = Math.abs((double) x);
        int bits;
        if (a >= MAX) {
            bits = 0x7E; // 448: a value between 448 and the next step (480, which E4M3FN gives to NaN) saturates too
        } else if (a < 0x1p-6) {
            bits = (int) Math.rint(a * 0x1p9); // subnormals: multiples of 2^-9; 8 of them is 2^-6, the first normal's code
        } else {
            int e = Math.getExponent(a);                     // a in [2^e, 2^(e+1)), e in [-6, 8]
            int q = (int) Math.rint(Math.scalb(a, 3 - e));   // 1.mmm as an integer in [8, 16]; exact scaling, ties to even
            bits = ((e + 7) << 3) + (q - 8);                 // q = 16 carries into the exponent on its own
            if (bits > 0x7E) bits = 0x7E;
        }
        return (byte) (sign | bits);
    }

    /** The value of a code. */
    public static float decode(byte code) {
        int c = code & 0xFF, exp = (c >> 3) & 0xF, mant = c & 7;
        float sign = (c & 0x80) != 0 ? -1f : 1f;
        if (exp == 15 && mant == 7) return Float.NaN;
        if (exp == 0) return sign * Math.scalb((float) mant, -9);
        return sign * Math.scalb(1f + mant / 8f, exp - 7);
    }

    /** The scale that maps {@code range} (max |x|) onto 448; a zero range gets scale 1. */
    public static float scaleFor(double range) {
        return range > 0 ? (float) (range / MAX) : 1f;
    }

    /** Every value of x divided by {@code scale} and encoded. */
    public static byte[] quantize(float[] x, float scale) {
        byte[] q = new byte[x.length];
        for (int i = 0; i < x.length; i++) q[i] = encode(x[i] / scale);
        return q;
    }

    /** Every code decoded and multiplied by {@code scale}. */
    public static float[] dequantize(byte[] q, float scale) {
        float[] x = new float[q.length];
        for (int i = 0; i < q.length; i++) x[i] = decode(q[i]) * scale;
        return x;
    }
}
