package dev.kiln.cpu;

import java.util.HashMap;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.function.Supplier;

/**
 * Weights the CPU kernels have packed into their own layout, kept from one call to the next while the parameters stay
 * as they are: a {@link dev.kiln.infer.Predictor}'s, whose model no longer changes. Outside {@link #around} every call
 * packs its weights afresh (in training they change every step); inside it, a convolution packs a weight once and then
 * reads the packed copy (ResNet-18 at batch 1 on two cores: 11 million floats, 5-7 ms of a 33 ms call). Kept by the
 * weights' array and offset, so a parameter changed in place afterwards is not seen: whoever binds a cache promises that.
 * The arrays are held weakly: a weight copied anew for every call (a channels-last filter) gains nothing, and its
 * packings go when its copy does instead of piling up.
 */
public final class WeightCache {
    private static final ScopedValue<WeightCache> ACTIVE = ScopedValue.newInstance();

    /** One packing of a weight array: where the weight starts, its sizes, and the kernel and layout asked for. */
    record Key(int offset, int outs, int ins, Object layout) {}

    /** By weight array (arrays compare by identity); guarded by this. */
    private final Map<float[], Map<Key, float[]>> packed = new WeakHashMap<>();

    /** {@code body}'s result, computed with this cache bound for the CPU kernels this thread calls. */
    public <T> T around(Supplier<T> body) {
        return ScopedValue.where(ACTIVE, this).call(body::get);
    }

    /** How many packed weights are held. */
    public synchronized int size() {
        int n = 0;
        for (Map<Key, float[]> m : packed.values()) n += m.size();
        return n;
    }

    /** Drops every packed weight held. */
    public synchronized void clear() { packed.clear(); }

    /** The cache bound to this thread, or null. */
    static WeightCache active() { return ACTIVE.isBound() ? ACTIVE.get() : null; }

    /** The packing of {@code weights} under key, made by {@code pack} the first time (on all threads: none of them calls here). */
    synchronized float[] get(float[] weights, Key key, Supplier<float[]> pack) {
        return packed.computeIfAbsent(weights, w -> new HashMap<>()).computeIfAbsent(key, k -> pack.get());
    }
}
