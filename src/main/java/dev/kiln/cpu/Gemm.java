package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/** Batched matrix product on the CPU: (B, M, K) x (B, K, N). */
final class Gemm {
    private Gemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    static Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        DType t = a.dtype();
        Tensor out = ElementKernels.newTensor(new int[]{batch, m, n}, t);
        if (t == DType.FLOAT32) {
            float[] c = (float[]) ElementKernels.arr(out);
            for (int p = 0; p < batch; p++) {
                float[] pa = packRowMajor(a.detach().select(0, p));
                float[] pb = packRowMajor(b.detach().select(0, p));
                sgemm(m, n, k, pa, pb, c, p * m * n);
            }
            return out;
        }
        Object c = ElementKernels.arr(out);
        for (int p = 0; p < batch; p++) {
            Tensor ap = a.detach().select(0, p).contiguousCopy(), bp = b.detach().select(0, p).contiguousCopy();
            Object x = ElementKernels.arr(ap), y = ElementKernels.arr(bp);
            int base = p * m * n;
            Parallel.range(m, 8, (lo, hi) -> {
                double[] row = new double[n];
                for (int i = lo; i < hi; i++) {
                    java.util.Arrays.fill(row, 0);
                    for (int q = 0; q < k; q++) {
                        double av = HostArrays.get(x, t, i * k + q);
                        for (int j = 0; j < n; j++) row[j] += av * HostArrays.get(y, t, q * n + j);
                    }
                    for (int j = 0; j < n; j++) HostArrays.set(c, t, base + i * n + j, row[j]);
                }
            });
        }
        return out;
    }

    private static float[] packRowMajor(Tensor t) {
        if (t.isContiguous() && t.offset() == 0 && ((float[]) ElementKernels.arr(t)).length == t.numel()) {
            return (float[]) ElementKernels.arr(t);
        }
        return (float[]) ElementKernels.arr(t.contiguousCopy());
    }

    /** c[off + i*n + j] = sum_q a[i*k + q] * b[q*n + j], all row-major. */
    static void sgemm(int m, int n, int k, float[] a, float[] b, float[] c, int off) {
        Parallel.range(m, 4, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                int ci = off + i * n;
                java.util.Arrays.fill(c, ci, ci + n, 0f);
                for (int q = 0; q < k; q++) {
                    float av = a[i * k + q];
                    FloatVector va = FloatVector.broadcast(F, av);
                    int j = 0, bq = q * n;
                    for (; j <= n - F.length(); j += F.length()) {
                        FloatVector.fromArray(F, b, bq + j).fma(va, FloatVector.fromArray(F, c, ci + j)).intoArray(c, ci + j);
                    }
                    for (; j < n; j++) c[ci + j] += av * b[bq + j];
                }
            }
        });
    }
}
