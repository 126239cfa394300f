package dev.kiln.cuda;

import dev.kiln.Logging;
import dev.kiln.Settings;

import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * A per-problem choice between two ways of computing the same result on one device (Kiln's kernel or a library's, or
 * two libraries'), made by timing both the first time the problem comes under the timed search
 * ({@link Cuda#cudnnBenchmark()}) and kept: for the process, and on disk ({@link TimedChoicesFile}, beside cuDNN's
 * and cuBLASLt's own choices) when {@code kiln.cudnn.algo.cache} is on, in a file named after what both ways are
 * (the kernel file's text and the library's version) and the device, so a new Kiln, library or GPU times afresh.
 * The sides are timed alternately, twice each, and the faster of each side's two timings kept: one timing alone
 * misjudged a product (0.255 ms against 0.099 ms measured apart; H200, bench/results/2026-12-03-h200-s33).
 *
 * @param <K> what identifies a problem; its {@code toString} is the key on disk
 */
final class TimedPick<K> {
    private final String first, second;
    private final ToDoubleFunction<Runnable> clock;
    private final Supplier<TimedChoices> openDisk;
    private TimedChoices disk;
    private boolean diskOpened;
    private final Map<K, Boolean> kept = new ConcurrentHashMap<>();

    /**
     * @param clock    milliseconds a run of a way takes (after a warm-up)
     * @param openDisk where choices outlive the process (null: nowhere), opened at the first look-up
     */
    TimedPick(String first, String second, ToDoubleFunction<Runnable> clock, Supplier<TimedChoices> openDisk) {
        this.first = first;
        this.second = second;
        this.clock = clock;
        this.openDisk = openDisk;
    }

    /**
     * The pick between {@code first} and {@code second} on dev, timed by {@link #millis}; kept on disk per
     * {@code version} (what shapes both ways, e.g. the kernel file's hash and the library's version; asked for at the
     * first look-up, when the library is loaded).
     */
    static <K> TimedPick<K> on(CudaDevice dev, String first, String second, Supplier<String> version) {
        return new TimedPick<>(first, second, r -> millis(dev, r), () -> {
            if (!Settings.get().cudnnAlgoCache()) return null;
            try {
                return new TimedChoicesFile(TimedChoicesFile.fileFor(KernelCache.cacheDir().getParent(),
                        "pick-" + first + "-" + second, version.get(), dev.name()));
            } catch (RuntimeException e) {
                Logging.logger(TimedPick.class).log(System.Logger.Level.DEBUG, first + "'s timed choices stay in this process: " + e);
                return null;
            }
        });
    }

    /** Device milliseconds a run of a way takes on the device's stream: three runs after a warm-up, timed by events. */
    private static double millis(CudaDevice dev, Runnable way) {
        MemorySegment start = Driver.eventCreate(0), end = Driver.eventCreate(0);
        try {
            way.run();
            Driver.eventRecord(start, dev.stream());
            for (int i = 0; i < 3; i++) way.run();
            Driver.eventRecord(end, dev.stream());
            Driver.eventSynchronize(end);
            return Driver.eventElapsedMillis(start, end) / 3;
        } finally {
            Driver.eventDestroy(start);
            Driver.eventDestroy(end);
        }
    }

    private synchronized TimedChoices disk() {
        if (!diskOpened) {
            diskOpened = true;
            disk = openDisk == null ? null : openDisk.get();
        }
        return disk;
    }

    /** TRUE when the first way was kept for key in this process, FALSE the second, null when not yet chosen. */
    Boolean kept(K key) { return kept.get(key); }

    /**
     * Chooses for key, under the timed search (the caller checks that it is on and no capture runs): the choice on disk
     * if there is one, else both ways timed and the faster kept (true: the first). Each way runs once untimed first
     * (which also takes a library's own search out of the clock); a way that refuses (returns false) loses, and when
     * the first refuses nothing is kept and null is returned. Both ways must leave the same result and may run several
     * times: the caller runs the chosen one once more for its result.
     */
    Boolean choose(K key, BooleanSupplier firstWay, BooleanSupplier secondWay) {
        TimedChoices d = disk();
        int[] saved = d == null ? null : d.get(key.toString());
        if (saved != null && (saved[0] == 0 || saved[0] == 1)) {
            kept.put(key, saved[0] == 1);
            return saved[0] == 1;
        }
        long t0 = System.nanoTime();
        if (!firstWay.getAsBoolean()) return null;
        boolean ours;
        String how;
        if (!secondWay.getAsBoolean()) {
            ours = true;
            how = second + " refused";
        } else {
            Runnable a = firstWay::getAsBoolean, b = secondWay::getAsBoolean;
            double ta = clock.applyAsDouble(a), tb = clock.applyAsDouble(b);
            ta = Math.min(ta, clock.applyAsDouble(a));
            tb = Math.min(tb, clock.applyAsDouble(b));
            ours = ta <= tb;
            how = String.format("%.4f against %.4f ms (%s)", ta, tb, second);
        }
        kept.put(key, ours);
        if (d != null) d.put(key.toString(), ours ? 1 : 0, 0);
        double searchMs = (System.nanoTime() - t0) / 1e6;
        Logging.logger(TimedPick.class).log(System.Logger.Level.DEBUG, () -> String.format("%s %s: %s: %s (the search %.1f ms)",
                first, key, how, ours ? first : second, searchMs));
        return ours;
    }
}
