package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ReduceOp;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Matmul family: the batched product (B, M, K) x (B, K, N), and linear as a product and a bias add. float32 goes to {@link Sgemm}
 * (with {@link SgemmKernel}, one per vector width, and {@link Interleave8}, its helpers); other dtypes take a plain path in double.
 */
final class MatmulCpu {
    private MatmulCpu() {}

    /**
     * Products with at most this many rows (a token at a time, batch-1 inference) skip the GEMM's packing, which would
     * copy all of B (the weights) to use each element m times: dot products along B's contiguous columns, or B's
     * contiguous rows scaled and added, straight from memory.
     */
    static final int FEW_ROWS = 4;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** x (N, in) · wᵀ + bias: the product, then the bias added (the reference the fused GPU path must match). */
    static Tensor linear(Tensor x, Tensor w, Tensor bias) {
        int n = x.shape()[0], out = w.shape()[0];
        Tensor y = rows(matmul(x.detach().unsqueeze(0), w.detach().t().unsqueeze(0)));
        if (bias == null) return y;
        return ElementwiseCpu.binary(BinaryOp.ADD, y, new Tensor(bias.storage(), new int[]{n, out}, new int[]{0, bias.strides()[0]}, bias.offset()));
    }

    /** gᵀ·x (out, in) and, with biasGrad, the sums of g's columns. */
    static Tensor[] linearBackwardWeight(Tensor g, Tensor x, boolean biasGrad) {
        Tensor dw = rows(matmul(g.detach().t().unsqueeze(0), x.detach().unsqueeze(0)));
        return new Tensor[]{dw, biasGrad ? ReductionsCpu.reduce(ReduceOp.SUM, g, new int[]{0}, false) : null};
    }

    /** A (1, M, N) product as (M, N). */
    private static Tensor rows(Tensor out3) { return new Tensor(out3.storage(), new int[]{out3.shape()[1], out3.shape()[2]}); }

    static Tensor matmul(Tensor a, Tensor b) {
        int[] as = a.shape(), bs = b.shape();
        int batch = as[0], m = as[1], k = as[2], n = bs[2];
        DType t = a.dtype();
        Tensor out = newTensor(new int[]{batch, m, n}, t);
        if (t == DType.FLOAT32) {
            int[] sa = a.strides(), sb = b.strides();
            if (m <= FEW_ROWS && sa[2] == 1 && (sb[1] == 1 || sb[2] == 1)) {
                fewRows(batch, m, n, k, (float[]) arrayOf(a), a.offset(), sa[0], sa[1], (float[]) arrayOf(b), b.offset(), sb[0], sb[1], sb[2],
                        (float[]) arrayOf(out));
                return out;
            }
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

    /** c (batch, m, n) = a (rows contiguous) x b, whose columns (bRs == 1) or rows (bCs == 1) are contiguous; m <= FEW_ROWS. */
    private static void fewRows(int batch, int m, int n, int k, float[] a, int aOff, int aBatch, int aRs,
                                float[] b, int bOff, int bBatch, int bRs, int bCs, float[] c) {
        int block = 64; // columns per task: enough work to be worth a thread, enough tasks to balance them
        int blocks = (n + block - 1) / block;
        long macs = (long) batch * m * n * k;
        Parallel.range(batch * blocks, macs < (1 << 18) ? batch * blocks : 1, (lo, hi) -> {
            for (int t = lo; t < hi; t++) {
                int p = t / blocks, j0 = (t % blocks) * block, j1 = Math.min(n, j0 + block);
                int ap = aOff + p * aBatch, bp = bOff + p * bBatch, cp = p * m * n;
                if (bRs == 1) {
                    for (int j = j0; j < j1; j++) {
                        for (int i = 0; i < m; i++) c[cp + i * n + j] = dot(a, ap + i * aRs, b, bp + j * bCs, k);
                    }
                } else {
                    for (int i = 0; i < m; i++) {
                        int ci = cp + i * n;
                        java.util.Arrays.fill(c, ci + j0, ci + j1, 0f);
                        for (int q = 0; q < k; q++) axpy(a[ap + i * aRs + q], b, bp + q * bRs + j0, c, ci + j0, j1 - j0);
                    }
                }
            }
        });
    }

    /** x[xo..xo+k) . y[yo..yo+k) in float, vector lanes summed at the end. */
    private static float dot(float[] x, int xo, float[] y, int yo, int k) {
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        int l = F.length(), q = 0;
        for (; q <= k - 2 * l; q += 2 * l) {
            acc0 = FloatVector.fromArray(F, x, xo + q).fma(FloatVector.fromArray(F, y, yo + q), acc0);
            acc1 = FloatVector.fromArray(F, x, xo + q + l).fma(FloatVector.fromArray(F, y, yo + q + l), acc1);
        }
        for (; q <= k - l; q += l) acc0 = FloatVector.fromArray(F, x, xo + q).fma(FloatVector.fromArray(F, y, yo + q), acc0);
        float s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; q < k; q++) s += x[xo + q] * y[yo + q];
        return s;
    }

    /** z[zo..zo+len) += alpha * y[yo..yo+len). */
    private static void axpy(float alpha, float[] y, int yo, float[] z, int zo, int len) {
        FloatVector va = FloatVector.broadcast(F, alpha);
        int l = F.length(), j = 0;
        for (; j <= len - l; j += l) va.fma(FloatVector.fromArray(F, y, yo + j), FloatVector.fromArray(F, z, zo + j)).intoArray(z, zo + j);
        for (; j < len; j++) z[zo + j] += alpha * y[yo + j];
    }
}
