package dev.kiln.cuda;

import dev.kiln.Tensor;

/** Inverted dropout in one pass on CUDA (dropout.cu); inside a graph the key is a slot of its key table (random.cuh). */
final class DropoutCuda extends CudaFamily {
    private final Kernels.Table dropout;

    DropoutCuda(CudaBackend backend) {
        super(backend);
        dropout = new Kernels.Table(dev, "dropout.cu", "dropout");
    }

    /** Channels-last x is taken as it is and gives channels-last out, with the mask a contiguous x would draw. */
    Tensor dropout(Tensor x, double p, long key) {
        requireAnyFloat("dropout", x.dtype());
        boolean cl = x.prefersChannelsLast();
        Tensor xc = cl ? x : contiguous(x);
        Tensor out = cl ? newChannelsLast(x.shape(), x.dtype()) : newTensor(x.shape(), x.dtype());
        long n = x.numel();
        if (n > 0) {
            int[] s = x.shape();
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(n).i64(cl ? s[1] : 0).i64(cl ? (long) s[2] * s[3] : 1).i64(key).f64(p).f64(1 / (1 - p)).ptr(dev.replayCounter()).go(dev, dropout.get(x.dtype()), grid(n), BLOCK);
        }
        drop(xc, x);
        return out;
    }
}
