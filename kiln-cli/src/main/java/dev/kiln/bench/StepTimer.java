package dev.kiln.bench;

import dev.kiln.Device;
import dev.kiln.MemoryScope;
import dev.kiln.cuda.Cuda;

import java.util.function.Supplier;

/** How {@link Bench} times a call: warm-up, then the mean over timed calls, each in its own memory scope. */
final class StepTimer {
    /** CPU warm-up and timing floors of a training step (bench/torch_cpu_ref.py's images keeps the same). */
    static final double CPU_WARM_SECONDS = 2, CPU_TIMED_SECONDS = 1;

    private final Device device;

    StepTimer(Device device) { this.device = device; }

    /** Seconds per call: `warm` calls, then the mean of `iters`, the device synchronised around the timed ones. */
    double perCall(Supplier<Object> fn, int iters, int warm) {
        for (int i = 0; i < warm; i++) once(fn);
        sync();
        long t = System.nanoTime();
        for (int i = 0; i < iters; i++) once(fn);
        sync();
        return (System.nanoTime() - t) / 1e9 / iters;
    }

    /**
     * A CPU training step's seconds: `warm` steps and at least {@link #CPU_WARM_SECONDS} of them first (C2 compiles a
     * method after thousands of calls: an MLP step of 5 ms ran its cross-entropy and mean interpreted through ten warm-up
     * steps on 16 cores), then `steps` and at least {@link #CPU_TIMED_SECONDS} timed.
     */
    double cpuStep(Supplier<Object> fn, int steps, int warm) {
        long warmEnd = System.nanoTime() + (long) (CPU_WARM_SECONDS * 1e9);
        for (int i = 0; i < warm || System.nanoTime() < warmEnd; i++) once(fn);
        long t = System.nanoTime(), timedEnd = t + (long) (CPU_TIMED_SECONDS * 1e9);
        int done = 0;
        for (; done < steps || System.nanoTime() < timedEnd; done++) once(fn);
        return (System.nanoTime() - t) / 1e9 / done;
    }

    private static void once(Supplier<Object> fn) {
        try (MemoryScope s = MemoryScope.open()) {
            fn.get();
        }
    }

    private void sync() {
        if (device.isCuda()) Cuda.synchronize();
    }
}
