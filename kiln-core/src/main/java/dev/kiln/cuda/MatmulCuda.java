package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;

/** Batched matrix products on CUDA: cuBLAS where it is present and the layout suits it ({@link Blas}), else the tiled kernel of matmul.cu. */
final class MatmulCuda extends CudaFamily {
    private final Kernels.Table gemm;

    MatmulCuda(CudaBackend backend) {
        super(backend);
        gemm = new Kernels.Table(dev, "matmul.cu", "gemm");
    }

    Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        Tensor out = newTensor(new int[]{batch, m, n}, a.dtype());
        if ((long) batch * m * n == 0) return out;
        int[] sa = a.strides(), sb = b.strides();
        gemm(a.dtype(), batch, m, n, k, ptr(a), sa[0], sa[1], sa[2], ptr(b), sb[0], sb[1], sb[2],
                ptr(out), (long) m * n, n, false);
        return out;
    }

    /**
     * C[b] (row-major, column stride 1) = A[b] x B[b] (+ C[b] when accumulate), for any element strides of A and B
     * (batch stride 0 for a shared matrix). cuBLAS when it is present and the layout suits it, else the own kernel.
     */
    void gemm(DType t, int batch, long m, long n, long k, long a, long sab, long sam, long sak, long b, long sbb, long sbk, long sbn,
              long c, long scb, long scm, boolean accumulate) {
        if (Blas.tryGemm(dev, t, batch, m, n, k, a, sab, sam, sak, b, sbb, sbk, sbn, c, scb, scm, accumulate)) return;
        if (!t.isFloating()) throw new IllegalArgumentException("matmul: expected floating tensors, got " + t);
        for (int b0 = 0; b0 < batch; b0 += 65535) {
            int nb = Math.min(65535, batch - b0);
            Launch.args().ptr(c).ptr(a).ptr(b).gemm(m, n, k, sab, sam, sak, sbb, sbk, sbn, scb, scm, accumulate).i32(b0)
                    .go(dev, gemm.get(t), (int) ((n + 63) / 64), (int) ((m + 63) / 64), nb, 256, 0);
        }
    }
}
