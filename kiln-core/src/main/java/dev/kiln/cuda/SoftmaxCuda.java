package dev.kiln.cuda;

import dev.kiln.Shape;
import dev.kiln.Tensor;

/** Softmax and log-softmax along a dimension on CUDA (softmax.cu): the dimension is moved last, one block per row. */
final class SoftmaxCuda extends CudaFamily {
    private final Kernels.Table softmaxFwd, softmaxBwd;

    SoftmaxCuda(CudaBackend backend) {
        super(backend);
        softmaxFwd = new Kernels.Table(dev, "softmax.cu", "softmax_fwd");
        softmaxBwd = new Kernels.Table(dev, "softmax.cu", "softmax_bwd");
    }

    Tensor softmax(Tensor x, int dim, boolean log) {
        if (x.dim() == 0) return softmax(x.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(x.dim(), dim);
        Tensor xp = x.detach().permute(perm);
        Tensor xc = contiguous(xp);
        long n = x.shape()[dim], rows = x.numel() / Math.max(n, 1);
        Tensor y = newTensor(xp.shape(), x.dtype());
        if (rows > 0 && n > 0) {
            Launch.args().ptr(ptr(y)).ptr(ptr(xc)).i64(rows).i64(n).i32(log ? 1 : 0)
                    .go(dev, softmaxFwd.get(x.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(n));
        }
        drop(xc, xp);
        return permutedBack(y, perm);
    }

    /** y laid out in permuted order, as a contiguous tensor in the original order. */
    private Tensor permutedBack(Tensor y, int[] perm) {
        Tensor v = y.permute(Shape.inversePermutation(perm));
        if (v.isContiguous()) return new Tensor(y.storage(), v.shape());
        Tensor out = contiguous(v);
        y.storage().release();
        return out;
    }

    Tensor softmaxBackward(Tensor gradOut, Tensor y, int dim, boolean log) {
        if (y.dim() == 0) return softmaxBackward(gradOut.detach().reshape(1), y.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(y.dim(), dim);
        Tensor gp = gradOut.detach().permute(perm), yp = y.detach().permute(perm);
        Tensor gc = contiguous(gp), yc = contiguous(yp);
        long n = y.shape()[dim], rows = y.numel() / Math.max(n, 1);
        Tensor gx = newTensor(yp.shape(), y.dtype());
        if (rows > 0 && n > 0) {
            Launch.args().ptr(ptr(gx)).ptr(ptr(gc)).ptr(ptr(yc)).i64(rows).i64(n).i32(log ? 1 : 0)
                    .go(dev, softmaxBwd.get(y.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(n));
        }
        drop(gc, gp);
        drop(yc, yp);
        return permutedBack(gx, perm);
    }
}
