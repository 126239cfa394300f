package dev.kiln.cuda;

import dev.kiln.Tensor;

/** Inverted dropout in one pass on CUDA (dropout.cu); inside a graph the key is a slot of its key table (random.cuh). */
final class DropoutCuda extends CudaFamily {
    private final Kernels.Table dropout;

    DropoutCuda(CudaBackend backend) {
        super(backend);
        dropout = new Kernels.Table(dev, "dropout.cu", "dropout");
    }

    Tensor dropout(Tensor x, double p, long key) {
        requireAnyFloat("dropout", x.dtype());
        Tensor xc = contiguous(x);
        Tensor out = newTensor(x.shape(), x.dtype());
        long n = x.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(n).i64(key).f64(p).f64(1 / (1 - p)).ptr(dev.replayCounter()).go(dev, dropout.get(x.dtype()), grid(n), BLOCK);
        }
        drop(xc, x);
        return out;
    }
}
