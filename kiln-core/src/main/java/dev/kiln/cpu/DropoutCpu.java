package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.contiguousArray;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernel of the Dropout family: inverted dropout in one pass, the mask drawn from the counter-based
 * generator ({@link Generator#uniformAt}) so the backward redraws it from the key instead of storing it.
 */
final class DropoutCpu {
    private DropoutCpu() {}

    private static final VectorSpecies<Long> L = LongVector.SPECIES_512;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    /** The 4-lane form for 256-bit machines (AVX2), where 512-bit long vectors are not intrinsics but slow Java. */
    private static final VectorSpecies<Long> L4 = LongVector.SPECIES_256;
    private static final VectorSpecies<Float> F4 = FloatVector.SPECIES_128;
    /** Lanes of the mask loop, chosen once from the machine's vectors: 8, 4, or 1 (scalar). */
    static final int LANES = lanesFor(LongVector.SPECIES_PREFERRED.vectorBitSize());

    static int lanesFor(int longBits) { return longBits >= 512 ? 8 : longBits == 256 ? 4 : 1; }
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    static Tensor dropout(Tensor x, double p, long key) {
        DTypeChecks.requireAnyFloat("dropout", x.dtype());
        Tensor xc = x.isContiguous() ? x : x.detach().contiguousCopy();
        Tensor out = newTensor(x.shape(), x.dtype());
        Object xa = contiguousArray("dropout", xc), oa = contiguousArray("dropout", out);
        int n = (int) x.numel(), ox = xc.offset();
        double scale = 1 / (1 - p);
        switch (x.dtype()) {
            case FLOAT32 -> {
                float[] xs = (float[]) xa, os = (float[]) oa;
                float s = (float) scale;
                // x * (keep ? s : 0), not (keep ? x * s : 0): the composite's product, NaN and all
                Parallel.range(n, Parallel.GRAIN, (lo, hi) -> dropoutF32(LANES, xs, ox, os, lo, hi, key, p, s));
            }
            case FLOAT64 -> {
                double[] xs = (double[]) xa, os = (double[]) oa;
                Parallel.range(n, Parallel.GRAIN, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) os[i] = xs[ox + i] * (Generator.uniformAt(key, i) >= p ? scale : 0.0);
                });
            }
            case BFLOAT16, FLOAT16 -> {
                // the scale rounded to the type, the product rounded once: what the composite's ops give
                DType t = x.dtype();
                float s = (float) HostArrays.get(roundTrip(t, scale), t, 0);
                Parallel.range(n, Parallel.GRAIN, (lo, hi) -> {
                    for (int i = lo; i < hi; i++) {
                        float v = (float) HostArrays.get(xa, t, ox + i);
                        HostArrays.set(oa, t, i, v * (Generator.uniformAt(key, i) >= p ? s : 0f));
                    }
                });
            }
            case INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
        }
        return out;
    }

    /**
     * Generator.uniformAt in 8 lanes at once (splitmix64 vectorises with 64-bit lane multiplies). uniform >= p is
     * compared exactly as the integer m >= ceil(p * 2^24), m being the 24 bits the uniform is made of.
     */
    static void dropoutF32(int lanes, float[] xs, int ox, float[] os, int lo, int hi, long key, double p, float s) {
        int i = lanes == 8 ? dropout8(xs, ox, os, lo, hi, key, p, s) : lanes == 4 ? dropout4(xs, ox, os, lo, hi, key, p, s) : lo;
        for (; i < hi; i++) os[i] = xs[ox + i] * (Generator.uniformAt(key, i) >= p ? s : 0f);
    }

    /** Whole groups of 8 from lo on; returns where it stopped. */
    private static int dropout8(float[] xs, int ox, float[] os, int lo, int hi, long key, double p, float s) {
        long threshold = (long) Math.ceil(p * 0x1.0p24);
        LongVector lane = LongVector.zero(L).addIndex(1);
        FloatVector scale = FloatVector.broadcast(F8, s), zero = FloatVector.zero(F8);
        int i = lo;
        for (; i <= hi - 8; i += 8) {
            LongVector z = lane.add(i + 1).mul(GOLDEN).add(key);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 30)).mul(0xBF58476D1CE4E5B9L);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 27)).mul(0x94D049BB133111EBL);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 31)).lanewise(VectorOperators.LSHR, 40);
            VectorMask<Float> keep = z.compare(VectorOperators.GE, threshold).cast(F8);
            FloatVector.fromArray(F8, xs, ox + i).mul(zero.blend(scale, keep)).intoArray(os, i);
        }
        return i;
    }

    /** dropout8 in 4 lanes (256-bit long vectors, 128-bit float vectors). */
    private static int dropout4(float[] xs, int ox, float[] os, int lo, int hi, long key, double p, float s) {
        long threshold = (long) Math.ceil(p * 0x1.0p24);
        LongVector lane = LongVector.zero(L4).addIndex(1);
        FloatVector scale = FloatVector.broadcast(F4, s), zero = FloatVector.zero(F4);
        int i = lo;
        for (; i <= hi - 4; i += 4) {
            LongVector z = lane.add(i + 1).mul(GOLDEN).add(key);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 30)).mul(0xBF58476D1CE4E5B9L);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 27)).mul(0x94D049BB133111EBL);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 31)).lanewise(VectorOperators.LSHR, 40);
            VectorMask<Float> keep = z.compare(VectorOperators.GE, threshold).cast(F4);
            FloatVector.fromArray(F4, xs, ox + i).mul(zero.blend(scale, keep)).intoArray(os, i);
        }
        return i;
    }

    /** A one-element array of dtype t holding v rounded to t. */
    private static Object roundTrip(DType t, double v) {
        Object a = HostArrays.allocate(t, 1);
        HostArrays.set(a, t, 0, v);
        return a;
    }
}
