package dev.kiln.cuda;

import dev.kiln.Device;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Watches one GPU while a job runs: NVML is sampled on a daemon thread (it needs no CUDA context and never waits for
 * the GPU's work), so the training thread only reads the latest sample and, per epoch, a {@link GpuSummary}.
 * {@code try (GpuMonitor m = GpuMonitor.start(device, period)) { ... }}; {@link #start} gives null without a GPU.
 */
public final class GpuMonitor implements AutoCloseable {
    private final Supplier<GpuSample> sampler;
    private final AutoCloseable session;
    private final long periodNanos;
    private final Thread thread;
    private final List<GpuSample> sinceMark = new ArrayList<>(); // guarded by this
    private volatile GpuSample latest;
    private volatile String failure;

    GpuMonitor(Supplier<GpuSample> sampler, AutoCloseable session, Duration period) {
        this.sampler = sampler;
        this.session = session;
        this.periodNanos = period.toNanos();
        this.thread = Thread.ofPlatform().daemon().name("kiln-gpu-monitor").start(this::run);
    }

    /**
     * Samples {@code device} every {@code period}; null when it is not a CUDA device or NVML cannot be opened (no
     * driver, no GPU): a monitor is an extra, never a reason for a job to fail.
     */
    public static GpuMonitor start(Device device, Duration period) {
        if (!device.isCuda() || !Nvml.available()) return null;
        Nvml nvml;
        try {
            nvml = Nvml.open();
        } catch (RuntimeException e) {
            return null;
        }
        int index = nvmlIndex(device.index(), System.getenv("CUDA_VISIBLE_DEVICES"));
        return new GpuMonitor(() -> nvml.sample(index), nvml, period);
    }

    /**
     * CUDA numbers the GPUs CUDA_VISIBLE_DEVICES lets it see, NVML numbers them all: cuda:1 under "2,3" is NVML's 3.
     * UUIDs in the list (or none) leave the index as it is.
     */
    static int nvmlIndex(int cudaIndex, String visibleDevices) {
        if (visibleDevices == null || visibleDevices.isBlank()) return cudaIndex;
        String[] ids = visibleDevices.split(",");
        if (cudaIndex >= ids.length) return cudaIndex;
        try {
            return Integer.parseInt(ids[cudaIndex].trim());
        } catch (NumberFormatException e) {
            return cudaIndex;
        }
    }

    private void run() {
        long next = System.nanoTime();
        while (!Thread.currentThread().isInterrupted()) {
            try {
                GpuSample s = sampler.get();
                latest = s;
                synchronized (this) {
                    sinceMark.add(s);
                }
            } catch (RuntimeException e) { // a GPU that stops answering ends the monitor, not the job
                failure = e.getMessage() == null ? e.toString() : e.getMessage();
                return;
            }
            next += periodNanos;
            long wait = next - System.nanoTime();
            if (wait > 0) {
                try {
                    Thread.sleep(Duration.ofNanos(wait));
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }

    /** The newest sample; null before the first. */
    public GpuSample latest() { return latest; }

    /** Why sampling stopped early, or null while it runs. */
    public String failure() { return failure; }

    /** The summary of the samples since the last mark (or the start), and a new mark; null when there were none. */
    public synchronized GpuSummary mark() {
        GpuSummary s = GpuSummary.of(sinceMark);
        sinceMark.clear();
        return s;
    }

    @Override public void close() {
        thread.interrupt();
        try {
            thread.join();
            session.close();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            throw new IllegalStateException("closing the GPU monitor's NVML session: " + e.getMessage(), e);
        }
    }
}
