package dev.kiln.cpu;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Weights the CPU kernels have packed into their own layout, kept from one call to the next while the parameters stay
 * as they are: a {@link dev.kiln.infer.Predictor}'s, whose model no longer changes. Outside {@link #around} every call
 * packs its weights afresh (in training they change every step); inside it, a convolution packs a weight once and then
 * reads the packed copy (ResNet-18 at batch 1 on two cores: 11 million floats, 5-7 ms of a 33 ms call). Kept by the
 * weights' array and offset, so a parameter changed in place afterwards is not seen: whoever binds a cache promises that.
 */
public final class WeightCache {
    private static final ScopedValue<WeightCache> ACTIVE = ScopedValue.newInstance();

    /** One packing of a weight: its array (by identity, as records compare arrays), where it starts, and the kernel and layout asked for. */
    record Key(float[] weights, int offset, int outs, int ins, Object layout) {}

    private final Map<Key, float[]> packed = new ConcurrentHashMap<>();

    /** {@code body}'s result, computed with this cache bound for the CPU kernels this thread calls. */
    public <T> T around(Supplier<T> body) {
        return ScopedValue.where(ACTIVE, this).call(body::get);
    }

    /** How many packed weights are held. */
    public int size() { return packed.size(); }

    /** Drops every packed weight held. */
    public void clear() { packed.clear(); }

    /** The cache bound to this thread, or null. */
    static WeightCache active() { return ACTIVE.isBound() ? ACTIVE.get() : null; }

    /** The packing under key, made by {@code pack} the first time. */
    float[] get(Key key, Supplier<float[]> pack) {
        float[] p = packed.get(key);
        if (p == null) {   // not computeIfAbsent: the packing runs on all threads, and would hold the map's lock meanwhile
            p = pack.get();
            packed.put(key, p);
        }
        return p;
    }
}
