package dev.kiln.tensorboard;

import com.google.protobuf.DynamicMessage;
import java.util.Arrays;

/**
 * TensorFlow's histogram ({@code tensorflow/core/lib/histogram/histogram.cc}), which TensorBoard's histogram and
 * distribution dashboards expect: exponential bucket edges ±1e-12 · 1.1^k up to 1e20, 0 between them,
 * {@code -Double.MAX_VALUE} first and {@code Double.MAX_VALUE} last; a value goes to the first bucket whose limit is above it; runs of empty buckets are
 * collapsed into one (TensorFlow's {@code EncodeToProto(preserve_zero_buckets = false)}), so edges stay exact.
 */
final class Histogram {
    /** The upper limit of each bucket, ascending (-MAX, n negative limits, 0, n positive limits, MAX). */
    static final double[] LIMITS = defaultLimits();

    private Histogram() {}

    private static double[] defaultLimits() {
        int n = 0;
        for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) {
            n++;
        }
        double[] positive = new double[n];
        double v = 1.0e-12;
        for (int i = 0; i < n; i++, v *= 1.1) {
            positive[i] = v;
        }
        double[] limits = new double[2 * n + 3];
        limits[0] = -Double.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            limits[1 + i] = -positive[n - 1 - i];
            limits[n + 2 + i] = positive[i];
        }
        limits[n + 1] = 0.0;
        limits[2 * n + 2] = Double.MAX_VALUE;
        return limits;
    }

    /** The HistogramProto of the values (NaN are refused by the caller). */
    static DynamicMessage encode(double[] values) {
        double[] counts = new double[LIMITS.length];
        double min = Double.MAX_VALUE;
        double max = -Double.MAX_VALUE;
        double sum = 0;
        double sumSquares = 0;
        for (double x : values) {
            int b = Arrays.binarySearch(LIMITS, x);
            b = b >= 0 ? b + 1 : -b - 1;            // first limit strictly above x
            counts[Math.min(b, LIMITS.length - 1)] += 1;
            min = Math.min(min, x);
            max = Math.max(max, x);
            sum += x;
            sumSquares += x * x;
        }
        DynamicMessage.Builder histo = DynamicMessage.newBuilder(EventProtos.HISTOGRAM);
        set(histo, "min", min);
        set(histo, "max", max);
        set(histo, "num", (double) values.length);
        set(histo, "sum", sum);
        set(histo, "sum_squares", sumSquares);
        var limitField = EventProtos.HISTOGRAM.findFieldByName("bucket_limit");
        var bucketField = EventProtos.HISTOGRAM.findFieldByName("bucket");
        for (int i = 0; i < counts.length; ) {
            double end = LIMITS[i];
            double count = counts[i];
            i++;
            if (count <= 0.0) {
                while (i < counts.length && counts[i] <= 0.0) {
                    end = LIMITS[i];
                    count = counts[i];
                    i++;
                }
            }
            histo.addRepeatedField(limitField, end);
            histo.addRepeatedField(bucketField, count);
        }
        return histo.build();
    }

    private static void set(DynamicMessage.Builder b, String field, double value) {
        b.setField(EventProtos.HISTOGRAM.findFieldByName(field), value);
    }
}
