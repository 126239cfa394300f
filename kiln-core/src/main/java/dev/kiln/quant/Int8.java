package dev.kiln.quant;

import dev.kiln.cpu.Int8Gemm;

/**
 * Symmetric int8 quantization, the one rule every quantized tensor follows: q = clamp(round(x / scale), -127, 127),
 * x ≈ q · scale, zero exactly representable (so zero padding and pruned weights stay exact). -128 is left unused so
 * the range is symmetric (a weight of max |w| maps onto ±127 exactly).
 * Weights get one scale per output channel (max |w| of the row / 127), activations one scale per tensor from
 * calibration.
 */
public final class Int8 {
    private Int8() {}

    /** The largest code. */
    public static final int QMAX = 127;

    /** The scale that maps {@code range} (a maximum magnitude) onto ±127; a zero range gets scale 1 (all codes 0). */
    public static float scaleFor(double range) {
        return range > 0 ? (float) (range / QMAX) : 1f;
    }

    /**
     * x quantized with {@code scale}: rounded half away from zero (C's {@code round}, as TFLite's reference kernels; the
     * fake-quantize op of training and the CUDA kernel compute the same rounding), then clamped to ±127. The rule itself
     * lives in {@link Int8Gemm#quantize}, beside the kernels that consume the codes.
     */
    public static byte quantize(float x, float scale) {
        return Int8Gemm.quantize(new float[]{x}, scale)[0];
    }

    /** Every value of x quantized with one scale. */
    public static byte[] quantize(float[] x, float scale) {
        return Int8Gemm.quantize(x, scale);
    }

    /** Per-row (per output channel) symmetric quantization of a rows x cols weight. */
    public static QuantizedRows quantizeRows(float[] w, int rows, int cols) {
        return QuantizedRows.of(dev.kiln.backend.QuantFormat.INT8, w, rows, cols);
    }
}
