package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Softmax family: softmax / log-softmax along a dimension and their gradient. The dimension
 * is moved innermost so each row is one contiguous pass, computed in double for every dtype.
 */
final class SoftmaxCpu {
    private SoftmaxCpu() {}

    static Tensor softmax(Tensor x, int dim, boolean log) {
        if (x.dim() == 0) return softmax(x.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(x.dim(), dim);
        Tensor xp = x.detach().permute(perm).contiguousCopy();
        int n = x.shape()[dim], rows = (int) (x.numel() / Math.max(n, 1));
        Tensor yp = newTensor(xp.shape(), x.dtype());
        Object a = arrayOf(xp), y = arrayOf(yp);
        DType t = x.dtype();
        Parallel.range(rows, Math.max(1, 2048 / Math.max(n, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int o = r * n;
                double mx = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) mx = Math.max(mx, HostArrays.get(a, t, o + j));
                double s = 0;
                for (int j = 0; j < n; j++) s += Math.exp(HostArrays.get(a, t, o + j) - mx);
                double ls = Math.log(s);
                for (int j = 0; j < n; j++) {
                    double z = HostArrays.get(a, t, o + j) - mx;
                    HostArrays.set(y, t, o + j, log ? z - ls : Math.exp(z) / s);
                }
            }
        });
        return yp.permute(Shape.inversePermutation(perm)).contiguousCopy();
    }

    static Tensor softmaxBackward(Tensor gy, Tensor y, int dim, boolean log) {
        int[] perm = Shape.moveToEnd(y.dim(), dim);
        Tensor gp = gy.detach().permute(perm).contiguousCopy(), yp = y.detach().permute(perm).contiguousCopy();
        int n = y.shape()[dim], rows = (int) (y.numel() / Math.max(n, 1));
        Tensor out = newTensor(gp.shape(), y.dtype());
        Object g = arrayOf(gp), yy = arrayOf(yp), o = arrayOf(out);
        DType t = y.dtype();
        Parallel.range(rows, Math.max(1, 2048 / Math.max(n, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int b = r * n;
                double s = 0;
                for (int j = 0; j < n; j++) s += log ? HostArrays.get(g, t, b + j) : HostArrays.get(g, t, b + j) * HostArrays.get(yy, t, b + j);
                for (int j = 0; j < n; j++) {
                    double gj = HostArrays.get(g, t, b + j), yj = HostArrays.get(yy, t, b + j);
                    HostArrays.set(o, t, b + j, log ? gj - Math.exp(yj) * s : yj * (gj - s));
                }
            }
        });
        return out.permute(Shape.inversePermutation(perm)).contiguousCopy();
    }
}
