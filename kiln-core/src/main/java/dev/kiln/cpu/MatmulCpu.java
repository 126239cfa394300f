package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ReduceOp;

import static dev.kiln.cpu.CpuStorage.arrayOf;

/**
 * The CPU kernels of the Matmul family: the batched product (B, M, K) x (B, K, N), and linear as a product and a bias add. float32 goes to {@link Sgemm}
 * (with {@link SgemmKernel}, one per vector width, and {@link Interleave8}, its helpers); other dtypes take a plain path in double.
 */
final class MatmulCpu {
    private MatmulCpu() {}

    /**
     * x (N, in) · wᵀ + bias (+ residual): the product, then the bias and the residual added (the reference the fused GPU
     * path must match); with a residual of another dtype the operands are widened to it first, as the GPU's product
     * accumulates 16-bit operands into a float32 result.
     */
    static Tensor linear(Tensor x, Tensor w, Tensor bias, Tensor residual) {
        if (residual == null) return linear(x, w, bias);
        DType t = residual.dtype();
        Tensor y = linear(ElementwiseCpu.cast(x, t), ElementwiseCpu.cast(w, t), bias == null ? null : ElementwiseCpu.cast(bias, t));
        return ElementwiseCpu.binary(BinaryOp.ADD, residual, y);
    }

    private static Tensor linear(Tensor x, Tensor w, Tensor bias) {
        int n = x.shape()[0], out = w.shape()[0];
        Tensor y = rows(matmul(x.detach().unsqueeze(0), w.detach().t().unsqueeze(0)));
        if (bias == null) return y;
        return ElementwiseCpu.binary(BinaryOp.ADD, y, new Tensor(bias.storage(), new int[]{n, out}, new int[]{0, bias.strides()[0]}, bias.offset()));
    }

    /** gᵀ·x into dw (out, in) and, when db is not null, the sums of g's columns into db (both converted to their dtype). */
    static void linearBackwardWeight(Tensor g, Tensor x, Tensor dw, Tensor db) {
        if (dw.dtype() != g.dtype()) {   // a float32 gradient of 16-bit operands: products and sums in float32, as on CUDA
            g = ElementwiseCpu.cast(g, dw.dtype());
            x = ElementwiseCpu.cast(x, dw.dtype());
        }
        ElementwiseCpu.copy(dw, rows(matmul(g.detach().t().unsqueeze(0), x.detach().unsqueeze(0))));
        if (db != null) ElementwiseCpu.copy(db, ReductionsCpu.reduce(ReduceOp.SUM, g, new int[]{0}, false));
    }

    /** A (1, M, N) product as (M, N). */
    private static Tensor rows(Tensor out3) { return new Tensor(out3.storage(), new int[]{out3.shape()[1], out3.shape()[2]}); }

    static Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        DType t = a.dtype();
        Tensor out = CpuStorage.unsetTensor(new int[]{batch, m, n}, t);   // both paths write every element
        if (t == DType.FLOAT32) {
            int[] sa = a.strides(), sb = b.strides();
            Sgemm.PREFERRED.batched(batch, m, n, k,
                    new Sgemm.Mat((float[]) arrayOf(a), a.offset(), sa[1], sa[2]), sa[0],
                    new Sgemm.Mat((float[]) arrayOf(b), b.offset(), sb[1], sb[2]), sb[0],
                    (float[]) arrayOf(out), 0);
            return out;
        }
        Object c = arrayOf(out);
        for (int p = 0; p < batch; p++) {
            Tensor ap = a.detach().select(0, p).contiguousCopy(), bp = b.detach().select(0, p).contiguousCopy();
            Object x = arrayOf(ap), y = arrayOf(bp);
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
