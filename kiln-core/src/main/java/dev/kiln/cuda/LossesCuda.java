package dev.kiln.cuda;

import dev.kiln.Tensor;

/** Row-wise softmax cross-entropy, its backward, and the mean over kept rows on CUDA (losses.cu). */
final class LossesCuda extends CudaFamily {
    private final Kernels.Table ceRowsFwd, ceRowsBwd, meanKept;

    LossesCuda(CudaBackend backend) {
        super(backend);
        ceRowsFwd = new Kernels.Table(dev, "losses.cu", "ce_rows_fwd");
        ceRowsBwd = new Kernels.Table(dev, "losses.cu", "ce_rows_bwd");
        meanKept = new Kernels.Table(dev, "losses.cu", "mean_kept");
    }

    Tensor[] crossEntropyRows(Tensor logits, Tensor target, double labelSmoothing, long ignoreIndex) {
        requireFloat("cross_entropy", logits.dtype());
        Tensor xc = contiguous(logits), tc = contiguous(target);
        int rows = logits.shape()[0], c = logits.shape()[1];
        Tensor loss = newTensor(new int[]{rows}, logits.dtype()), lse = newTensor(new int[]{rows}, logits.dtype());
        if (rows > 0) {
            Launch.args().ptr(ptr(loss)).ptr(ptr(lse)).ptr(ptr(xc)).ptr(ptr(tc)).i64(rows).i64(c).f64(labelSmoothing).i64(ignoreIndex)
                    .ptr(backend.errorWord()).go(dev, ceRowsFwd.get(logits.dtype()), Math.min(rows, dev.multiprocessorCount() * 16L), rowThreads(c));
        }
        drop(xc, logits);
        drop(tc, target);
        return new Tensor[]{loss, lse};
    }

    Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex) {
        requireAnyFloat("mean", values.dtype());
        Tensor vc = contiguous(values), tc = contiguous(target);
        Tensor mean = newTensor(new int[0], values.dtype()), count = newTensor(new int[0], values.dtype());
        long n = values.numel();
        Launch.args().ptr(ptr(mean)).ptr(ptr(count)).ptr(ptr(vc)).ptr(ptr(tc)).i64(n).i64(ignoreIndex)
                .go(dev, meanKept.get(values.dtype()), 1, rowThreads(n));
        drop(vc, values);
        drop(tc, target);
        return new Tensor[]{mean, count};
    }

    Tensor crossEntropyRowsBackward(Tensor logits, Tensor target, Tensor logSumExp, Tensor gradRows,
                                                     double labelSmoothing, long ignoreIndex) {
        requireFloat("cross_entropy", logits.dtype());
        Tensor xc = contiguous(logits), tc = contiguous(target), lc = contiguous(logSumExp);
        Tensor g = gradRows.dtype() == logits.dtype() ? gradRows : contiguous(gradRows, logits.dtype());
        int rows = logits.shape()[0], c = logits.shape()[1];
        Tensor gx = newTensor(logits.shape(), logits.dtype());
        long n = (long) rows * c;
        if (n > 0) {
            Launch.args().ptr(ptr(gx)).ptr(ptr(xc)).ptr(ptr(tc)).ptr(ptr(lc)).ptr(ptr(g)).i64(g.strides()[0]).i64(rows).i64(c)
                    .f64(labelSmoothing).i64(ignoreIndex).go(dev, ceRowsBwd.get(logits.dtype()), grid(n), BLOCK);
        }
        drop(xc, logits);
        drop(tc, target);
        drop(lc, logSumExp);
        drop(g, gradRows);
        return gx;
    }
}
