package dev.kiln.cuda;

/**
 * One GPU as NVML sees it. Readings the GPU does not report are -1 (temperature, utilization, power) or "" (bus id).
 *
 * @param index              NVML's index (CUDA's order too unless CUDA_VISIBLE_DEVICES or CUDA_DEVICE_ORDER says otherwise)
 * @param utilizationPercent percent of the last sample period a kernel was running
 */
public record GpuInfo(int index, String name, long totalBytes, long usedBytes, int computeMajor, int computeMinor,
                      int temperatureC, int utilizationPercent, double powerWatts, String busId) {
    public GpuInfo {
        if (name == null) throw new IllegalArgumentException("GpuInfo: name is null");
        if (busId == null) busId = "";
    }

    /** One line for {@code kiln devices}: "cuda:0  NVIDIA H100 80GB HBM3  sm_90  1.2/79.6 GiB  34 C  0%  71 W  00000000:18:00.0". */
    public String line() {
        StringBuilder s = new StringBuilder();
        s.append("cuda:").append(index).append("  ").append(name)
                .append("  sm_").append(computeMajor).append(computeMinor)
                .append(String.format("  %.1f/%.1f GiB", usedBytes / GIB, totalBytes / GIB));
        if (temperatureC >= 0) s.append("  ").append(temperatureC).append(" C");
        if (utilizationPercent >= 0) s.append("  ").append(utilizationPercent).append("% busy");
        if (powerWatts >= 0) s.append(String.format("  %.0f W", powerWatts));
        if (!busId.isEmpty()) s.append("  ").append(busId);
        return s.toString();
    }

    private static final double GIB = 1024.0 * 1024 * 1024;
}
