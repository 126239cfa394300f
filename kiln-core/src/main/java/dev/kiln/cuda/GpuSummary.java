package dev.kiln.cuda;

import java.util.List;
import java.util.Locale;

/**
 * A GPU over a stretch of time (an epoch): means of utilisation, power and clock, the peak of memory, the hottest
 * reading. Readings the GPU does not report stay -1.
 */
public record GpuSummary(int samples, double utilizationPercent, long peakUsedBytes, long totalBytes, double powerWatts,
                         int maxTemperatureC, double smClockMHz) {
    /** Below this mean utilisation the GPU mostly waited for the host: worth a warning. */
    public static final double IDLE_BELOW_PERCENT = 30;

    /** metrics.csv's columns for a summary, in {@link #csv()}'s order. */
    public static final String CSV_HEADER = "gpu_util,gpu_mem_peak_gib,gpu_power_w,gpu_temp_max_c,gpu_sm_clock_mhz";

    /** The summary of {@code samples}; null when there are none (too short a stretch). */
    public static GpuSummary of(List<GpuSample> samples) {
        if (samples.isEmpty()) return null;
        long peak = 0, total = 0;
        int hottest = -1;
        for (GpuSample s : samples) {
            peak = Math.max(peak, s.usedBytes());
            total = Math.max(total, s.totalBytes());
            hottest = Math.max(hottest, s.temperatureC());
        }
        return new GpuSummary(samples.size(), mean(samples, GpuSample::utilizationPercent), peak, total,
                mean(samples, GpuSample::powerWatts), hottest, mean(samples, GpuSample::smClockMHz));
    }

    /** The mean of the readings the GPU gave (those >= 0), or -1 when it gave none. */
    private static double mean(List<GpuSample> samples, java.util.function.ToDoubleFunction<GpuSample> reading) {
        double sum = 0;
        int n = 0;
        for (GpuSample s : samples) {
            double v = reading.applyAsDouble(s);
            if (v >= 0) {
                sum += v;
                n++;
            }
        }
        return n == 0 ? -1 : sum / n;
    }

    /** Fewer samples than this (seconds, at the usual period) say too little to warn about: NVML's own window is ~1 s. */
    public static final int MIN_SAMPLES_TO_JUDGE = 5;

    /** Whether the GPU sat mostly idle (and said how busy it was, over enough samples to tell). */
    public boolean mostlyIdle() {
        return samples >= MIN_SAMPLES_TO_JUDGE && utilizationPercent >= 0 && utilizationPercent < IDLE_BELOW_PERCENT;
    }

    public String csv() {
        return String.format(Locale.ROOT, "%.1f,%.3f,%.1f,%d,%.0f", utilizationPercent, peakUsedBytes / GpuSample.GIB, powerWatts,
                maxTemperatureC, smClockMHz);
    }
}
