package dev.kiln.cuda;

import java.util.Locale;

/**
 * One reading of a GPU by NVML, as a monitor takes it every second or so. A reading the GPU does not report is -1.
 *
 * @param utilizationPercent percent of the last sample period a kernel was running
 * @param smClockMHz         the streaming multiprocessors' clock (it drops when the GPU is hot or power-capped)
 */
public record GpuSample(int utilizationPercent, long usedBytes, long totalBytes, double powerWatts, int temperatureC, int smClockMHz) {
    /** For a progress line: "GPU 87% 12.3/79.6 GiB 312 W 61 C". */
    public String brief() {
        StringBuilder s = new StringBuilder("GPU");
        if (utilizationPercent >= 0) s.append(' ').append(utilizationPercent).append('%');
        s.append(String.format(Locale.ROOT, " %.1f/%.1f GiB", usedBytes / GIB, totalBytes / GIB));
        if (powerWatts >= 0) s.append(String.format(Locale.ROOT, " %.0f W", powerWatts));
        if (temperatureC >= 0) s.append(' ').append(temperatureC).append(" C");
        return s.toString();
    }

    static final double GIB = 1024.0 * 1024 * 1024;
}
