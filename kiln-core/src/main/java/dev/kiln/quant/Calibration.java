package dev.kiln.quant;

/**
 * How an activation's range (the magnitude that maps to ±127) is chosen from calibration batches: {@code MAX}, the
 * largest |x| seen (no clipping, but one outlier widens every step); or {@code PERCENTILE}, the given percentile of
 * |x| in each batch, averaged over the batches (clips the rare outliers for finer steps on the rest).
 */
public record Calibration(Method method, double percentile, int batches) {
    /** The two range rules. */
    public enum Method { MAX, PERCENTILE }

    public Calibration {
        java.util.Objects.requireNonNull(method, "method");
        if (batches < 1) throw new IllegalArgumentException("calibration needs at least 1 batch, got " + batches);
        if (method == Method.PERCENTILE && !(percentile > 0 && percentile <= 100)) {
            throw new IllegalArgumentException("percentile must be in (0, 100], got " + percentile);
        }
    }

    /** The max |x| over {@code batches} batches. */
    public static Calibration max(int batches) { return new Calibration(Method.MAX, 100, batches); }

    /** The {@code percentile}-th percentile of |x|, averaged over {@code batches} batches. */
    public static Calibration percentile(double percentile, int batches) { return new Calibration(Method.PERCENTILE, percentile, batches); }

    /** The range of one batch's values under this rule. */
    double rangeOf(float[] x) {
        if (method == Method.MAX) {
            float m = 0;
            for (float v : x) m = Math.max(m, Math.abs(v));
            return m;
        }
        float[] a = new float[x.length];
        for (int i = 0; i < x.length; i++) a[i] = Math.abs(x[i]);
        java.util.Arrays.sort(a);
        int at = (int) Math.min(a.length - 1, Math.ceil(percentile / 100 * a.length) - 1);
        return a[Math.max(at, 0)];
    }

    /** The ranges of the batches combined: their max for MAX, their mean for PERCENTILE. */
    double combine(double sofar, double next, int seen) {
        return method == Method.MAX ? Math.max(sofar, next) : sofar + (next - sofar) / seen;
    }
}
