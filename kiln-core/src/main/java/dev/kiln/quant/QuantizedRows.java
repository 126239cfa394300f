package dev.kiln.quant;

import dev.kiln.backend.Fp8E4M3;
import dev.kiln.backend.QuantFormat;

/**
 * A weight (rows x cols, row-major) quantized per row (output channel) in a {@link QuantFormat}: each row's scale maps its
 * max |w| onto the format's largest code (127 or 448), and the codes are the row divided by its scale, rounded as the
 * format rounds ({@link Int8#quantize}, {@link Fp8E4M3#encode}).
 */
public record QuantizedRows(QuantFormat format, byte[] codes, float[] scales, int rows, int cols) {
    /** Per-row quantization of a rows x cols weight. */
    public static QuantizedRows of(QuantFormat format, float[] w, int rows, int cols) {
        if (w.length != rows * cols) throw new IllegalArgumentException("quantize rows: " + w.length + " values for " + rows + "x" + cols);
        byte[] q = new byte[w.length];
        float[] scales = new float[rows];
        for (int r = 0; r < rows; r++) {
            float max = 0;
            for (int c = 0; c < cols; c++) max = Math.max(max, Math.abs(w[r * cols + c]));
            scales[r] = scaleFor(format, max);
            for (int c = 0; c < cols; c++) {
                float v = w[r * cols + c];
                q[r * cols + c] = format == QuantFormat.INT8 ? Int8.quantize(v, scales[r]) : Fp8E4M3.encode(v / scales[r]);
            }
        }
        return new QuantizedRows(format, q, scales, rows, cols);
    }

    /** The scale that maps {@code range} (a max |x|) onto the format's largest code; a zero range gets 1. */
    public static float scaleFor(QuantFormat format, double range) {
        return format == QuantFormat.INT8 ? Int8.scaleFor(range) : Fp8E4M3.scaleFor(range);
    }

    /** Back to floats: each code's value times its row's scale. */
    public float[] dequantize() {
        float[] w = new float[codes.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                byte q = codes[r * cols + c];
                w[r * cols + c] = (format == QuantFormat.INT8 ? q : Fp8E4M3.decode(q)) * scales[r];
            }
        }
        return w;
    }
}
