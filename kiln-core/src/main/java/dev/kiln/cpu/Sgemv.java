package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Matmul family: the float32 products whose A is one row (m = 1: a linear layer at batch 1, a sequence
 * model a token at a time), which {@link Sgemm#batched} hands here. B is read once where it lies: the GEMM packed all
 * of it for a tile of MR rows of which one was used (a ResNet-18's 1000 x 512 classifier took 0.7 ms at batch 1 on two
 * cores). B stored by columns (a linear layer's wᵀ): dot products of A's row with four columns at a time, vectors
 * along k, the lanes added in order ({@link Lanes}); B stored by rows: A's row times B's rows, four vectors of columns
 * at a time, one FMA a k from the first to the last.
 */
final class Sgemv {
    private Sgemv() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Below this many multiply-adds one thread does the whole product (it streams B: two threads pay from 256K on). */
    private static final long PARALLEL_MACS = 1 << 18;
    /** Columns a task takes: a multiple of four columns and of the vector length. */
    private static final int CHUNK = 64;

    /** Whether the product goes here: A one row, B contiguous along k or along n. */
    static boolean applies(int m, Sgemm.Mat b) { return m == 1 && (b.rs() == 1 || b.cs() == 1); }

    /**
     * For each p < batch and j < n: c[cOff + p·ldc + j] = (or += when accumulate) the sum over q < k of A(p)[0][q] ·
     * B(p)[q][j], A(p) from a.off + p·aBatch, B(p) from b.off + p·bBatch.
     */
    static void product(int batch, int n, int k, Sgemm.Mat a, int aBatch, Sgemm.Mat b, int bBatch, float[] c, int cOff, int ldc, boolean accumulate) {
        int chunks = (n + CHUNK - 1) / CHUNK, tasks = batch * chunks;
        if (tasks == 0) return;
        boolean byColumns = b.rs() == 1;
        Parallel.range(tasks, (long) batch * n * k < PARALLEL_MACS ? tasks : 1, (lo, hi) -> {
            float[] row = new float[k], lanes = new float[F.length()];
            for (int t = lo; t < hi; t++) {
                int p = t / chunks, j0 = t % chunks * CHUNK, j1 = Math.min(n, j0 + CHUNK);
                int ao = a.off() + p * aBatch;
                for (int q = 0; q < k; q++) row[q] = a.data()[ao + q * a.cs()];
                int bo = b.off() + p * bBatch, co = cOff + p * ldc;
                if (byColumns) dots(row, k, b.data(), bo, b.cs(), j0, j1, c, co, accumulate, lanes);
                else rows(row, k, b.data(), bo, b.rs(), j0, j1, c, co, accumulate);
            }
        });
    }

    /** c[co + j] (+)= row · column j (at bo + j·cs, contiguous), for j in [j0, j1): four columns a pass over the row. */
    private static void dots(float[] row, int k, float[] bd, int bo, int cs, int j0, int j1, float[] c, int co, boolean accumulate, float[] lanes) {
        int l = F.length(), whole = k - k % l, j = j0;
        for (; j + 4 <= j1; j += 4) {
            int b0 = bo + j * cs, b1 = b0 + cs, b2 = b1 + cs, b3 = b2 + cs;
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
            for (int q = 0; q < whole; q += l) {
                FloatVector av = FloatVector.fromArray(F, row, q);
                s0 = FloatVector.fromArray(F, bd, b0 + q).fma(av, s0);
                s1 = FloatVector.fromArray(F, bd, b1 + q).fma(av, s1);
                s2 = FloatVector.fromArray(F, bd, b2 + q).fma(av, s2);
                s3 = FloatVector.fromArray(F, bd, b3 + q).fma(av, s3);
            }
            store(c, co + j, finish(s0, row, whole, k, bd, b0, lanes), accumulate);
            store(c, co + j + 1, finish(s1, row, whole, k, bd, b1, lanes), accumulate);
            store(c, co + j + 2, finish(s2, row, whole, k, bd, b2, lanes), accumulate);
            store(c, co + j + 3, finish(s3, row, whole, k, bd, b3, lanes), accumulate);
        }
        for (; j < j1; j++) {
            int b0 = bo + j * cs;
            FloatVector s0 = FloatVector.zero(F);
            for (int q = 0; q < whole; q += l) s0 = FloatVector.fromArray(F, bd, b0 + q).fma(FloatVector.fromArray(F, row, q), s0);
            store(c, co + j, finish(s0, row, whole, k, bd, b0, lanes), accumulate);
        }
    }

    /** The vector's lanes in order, then the products past the whole vectors, in double. */
    private static float finish(FloatVector s, float[] row, int whole, int k, float[] bd, int b, float[] lanes) {
        double sum = Lanes.sum(s, lanes);
        for (int q = whole; q < k; q++) sum += (double) row[q] * bd[b + q];
        return (float) sum;
    }

    private static void store(float[] c, int i, float v, boolean accumulate) { c[i] = accumulate ? c[i] + v : v; }

    /**
     * c[co + j0..j1) (+)= the sum over q of row[q] · B's row q (at bo + q·rs, contiguous): four vectors of columns at a
     * time (four FMA chains), then one, then the last partial one masked.
     */
    private static void rows(float[] row, int k, float[] bd, int bo, int rs, int j0, int j1, float[] c, int co, boolean accumulate) {
        int l = F.length(), j = j0;
        for (; j + 4 * l <= j1; j += 4 * l) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
            for (int q = 0, b = bo + j; q < k; q++, b += rs) {
                FloatVector av = FloatVector.broadcast(F, row[q]);
                s0 = FloatVector.fromArray(F, bd, b).fma(av, s0);
                s1 = FloatVector.fromArray(F, bd, b + l).fma(av, s1);
                s2 = FloatVector.fromArray(F, bd, b + 2 * l).fma(av, s2);
                s3 = FloatVector.fromArray(F, bd, b + 3 * l).fma(av, s3);
            }
            put(s0, c, co + j, accumulate);
            put(s1, c, co + j + l, accumulate);
            put(s2, c, co + j + 2 * l, accumulate);
            put(s3, c, co + j + 3 * l, accumulate);
        }
        for (; j + l <= j1; j += l) {
            FloatVector s = FloatVector.zero(F);
            for (int q = 0, b = bo + j; q < k; q++, b += rs) s = FloatVector.fromArray(F, bd, b).fma(FloatVector.broadcast(F, row[q]), s);
            put(s, c, co + j, accumulate);
        }
        if (j < j1) {
            var some = F.indexInRange(j, j1);
            FloatVector s = FloatVector.zero(F);
            for (int q = 0, b = bo + j; q < k; q++, b += rs) s = FloatVector.fromArray(F, bd, b, some).fma(FloatVector.broadcast(F, row[q]), s);
            if (accumulate) s = s.add(FloatVector.fromArray(F, c, co + j, some));
            s.intoArray(c, co + j, some);
        }
    }

    private static void put(FloatVector s, float[] c, int i, boolean accumulate) {
        (accumulate ? s.add(FloatVector.fromArray(F, c, i)) : s).intoArray(c, i);
    }
}
