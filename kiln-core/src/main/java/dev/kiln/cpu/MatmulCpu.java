package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;

/** Batched matrix product on the CPU: (B, M, K) x (B, K, N). float32 goes to {@link Sgemm}; other dtypes take a plain path in double. */
final class Gemm {
    private Gemm() {}

    static Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        DType t = a.dtype();
        Tensor out = ElementKernels.newTensor(new int[]{batch, m, n}, t);
        if (t == DType.FLOAT32) {
            int[] sa = a.strides(), sb = b.strides();
            Sgemm.batched(batch, m, n, k,
                    new Sgemm.Mat((float[]) ElementKernels.arr(a), a.offset(), sa[1], sa[2]), sa[0],
                    new Sgemm.Mat((float[]) ElementKernels.arr(b), b.offset(), sb[1], sb[2]), sb[0],
                    (float[]) ElementKernels.arr(out), 0);
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
}
