package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.Pool2dParams;

/** Max and average pooling on CUDA (pooling.cu); windows that tile the input take the _tiled kernels. */
final class PoolingCuda extends CudaFamily {
    private final Kernels.Table maxPoolFwd, maxPoolFwdTiled, maxPoolFwdV, maxPoolBwd, maxPoolBwdTiled, maxPoolBwdV, avgPoolFwd, avgPoolBwd;

    PoolingCuda(CudaBackend backend) {
        super(backend);
        maxPoolFwd = new Kernels.Table(dev, "pooling.cu", "max_pool_fwd");
        maxPoolFwdTiled = new Kernels.Table(dev, "pooling.cu", "max_pool_fwd_tiled");
        maxPoolFwdV = new Kernels.Table(dev, "pooling.cu", "max_pool_fwd_v");
        maxPoolBwd = new Kernels.Table(dev, "pooling.cu", "max_pool_bwd");
        maxPoolBwdTiled = new Kernels.Table(dev, "pooling.cu", "max_pool_bwd_tiled");
        maxPoolBwdV = new Kernels.Table(dev, "pooling.cu", "max_pool_bwd_v");
        avgPoolFwd = new Kernels.Table(dev, "pooling.cu", "avg_pool_fwd");
        avgPoolBwd = new Kernels.Table(dev, "pooling.cu", "avg_pool_bwd");
    }

    /** The kernels' PoolP; its channel count c is 0 for NCHW planes, C for channels-last arrays. */
    static int[] poolP(int[] xShape, Pool2dParams p, boolean channelsLast) {
        int h = xShape[2], w = xShape[3];
        return new int[]{h, w, p.outH(h), p.outW(w), p.kernelH(), p.kernelW(), p.strideH(), p.strideW(), p.padH(), p.padW(),
                p.countIncludePad() ? 1 : 0, channelsLast ? xShape[1] : 0};
    }

    /** t laid out channels-last (a copy unless it is) when cl, else contiguous. */
    private Tensor layout(Tensor t, boolean cl) { return cl ? channelsLast(t) : contiguous(t); }

    private Tensor newTensor(int[] shape, DType t, boolean cl) { return cl ? newChannelsLast(shape, t) : newTensor(shape, t); }

    /** Whether the pooling windows tile the input (stride == kernel, no padding): the _tiled kernels' case. */
    private static boolean tiles(Pool2dParams p) {
        return p.strideH() == p.kernelH() && p.strideW() == p.kernelW() && p.padH() == 0 && p.padW() == 0;
    }

    /**
     * The indices are int64 flat positions over H * W, as the CPU's, except where the 16-byte channels-last kernels run
     * (C a multiple of 16 bytes' worth of channels, a window of fewer than 255 elements): then a byte per output element,
     * the maximum's place in its window (ky * kW + kx), which only {@link #maxPool2dBackward} reads.
     */
    Tensor[] maxPool2d(Tensor x, Pool2dParams p) {
        boolean cl = x.prefersChannelsLast();   // the output (and the indices) keep the input's layout
        Tensor xc = layout(x, cl);
        int[] pp = poolP(x.shape(), p, cl);
        int[] os = {x.shape()[0], x.shape()[1], pp[2], pp[3]};
        Tensor out = newTensor(os, x.dtype(), cl);
        long n = Shape.numel(os);
        int v = 16 / x.dtype().byteSize();
        boolean bytes = cl && os[1] % v == 0 && p.kernelH() * p.kernelW() < 255 && ptr(xc) % 16 == 0 && ptr(out) % 16 == 0;
        Tensor idx = newTensor(os.clone(), bytes ? DType.UINT8 : DType.INT64, cl);
        if (bytes) {
            long total = n / v;   // V channels of one output pixel per thread
            if (total > 0) Launch.args().ptr(ptr(out)).ptr(ptr(idx)).ptr(ptr(xc)).i64(total).ints(pp).go(dev, maxPoolFwdV.get(x.dtype()), grid(total), BLOCK);
        } else {
            Kernels.Table k = tiles(p) && !cl ? maxPoolFwdTiled : maxPoolFwd;
            if (n > 0) Launch.args().ptr(ptr(out)).ptr(ptr(idx)).ptr(ptr(xc)).i64(n).ints(pp).go(dev, k.get(x.dtype()), grid(n), BLOCK);
        }
        drop(xc, x);
        return new Tensor[]{out, idx};
    }

    Tensor maxPool2dBackward(Tensor gradOut, Tensor indices, int[] inputShape, Pool2dParams p) {
        requireAnyFloat("max_pool2d backward", gradOut.dtype());
        if (indices.dtype() == DType.UINT8) return maxPool2dBackwardV(gradOut, indices, inputShape, p);
        boolean cl = indices.prefersChannelsLast();   // the forward's layout
        Tensor gy = layout(gradOut, cl), ic = layout(indices, cl);
        int[] pp = poolP(inputShape, p, cl);
        Tensor gx = newTensor(inputShape.clone(), gradOut.dtype(), cl);
        if (tiles(p) && !cl) {
            long n = gy.numel();
            if (pp[2] * p.kernelH() != pp[0] || pp[3] * p.kernelW() != pp[1] || n == 0) backend.fill(gx, 0); // a ragged edge no window covers
            if (n > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).ptr(ptr(ic)).i64(n).ints(pp).go(dev, maxPoolBwdTiled.get(gx.dtype()), grid(n), BLOCK);
        } else {
            long n = gx.numel();
            if (n > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).ptr(ptr(ic)).i64(n).ints(pp).go(dev, maxPoolBwd.get(gx.dtype()), grid(n), BLOCK);
        }
        drop(gy, gradOut);
        drop(ic, indices);
        return gx;
    }

    /**
     * The backward from max_pool_fwd_v's byte indices (channels-last): max_pool_bwd_v over a 16-byte aligned channels-last
     * gradient, in float64 should the gradient's dtype take more channels a thread than C divides into (a dtype other than
     * the forward's).
     */
    private Tensor maxPool2dBackwardV(Tensor gradOut, Tensor indices, int[] inputShape, Pool2dParams p) {
        DType t = inputShape[1] % (16 / gradOut.dtype().byteSize()) == 0 ? gradOut.dtype() : DType.FLOAT64;
        Tensor gy = alignedChannelsLast(gradOut, t);
        Tensor gx = newChannelsLast(inputShape.clone(), t);
        long total = gx.numel() / (16 / t.byteSize());   // V channels of one pixel per thread
        if (total > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).ptr(ptr(indices)).i64(total).ints(poolP(inputShape, p, true))
                .go(dev, maxPoolBwdV.get(t), grid(total), BLOCK);
        drop(gy, gradOut);
        if (t == gradOut.dtype()) return gx;
        Tensor cast = channelsLast(gx, gradOut.dtype());
        gx.storage().release();
        return cast;
    }

    Tensor avgPool2d(Tensor x, Pool2dParams p) {
        boolean cl = x.prefersChannelsLast();
        Tensor xc = layout(x, cl);
        int[] pp = poolP(x.shape(), p, cl);
        int[] os = {x.shape()[0], x.shape()[1], pp[2], pp[3]};
        Tensor out = newTensor(os, x.dtype(), cl);
        long n = Shape.numel(os);
        if (n > 0) Launch.args().ptr(ptr(out)).ptr(ptr(xc)).i64(n).ints(pp).go(dev, avgPoolFwd.get(x.dtype()), grid(n), BLOCK);
        drop(xc, x);
        return out;
    }

    Tensor avgPool2dBackward(Tensor gradOut, int[] inputShape, Pool2dParams p) {
        // the input gradient channels-last when the output gradient is (a 1x1 output, as global pooling's, is both
        // contiguous and channels-last: then as the forward's input was, which the shape alone cannot say, so contiguous)
        boolean cl = gradOut.prefersChannelsLast();
        Tensor gy = layout(gradOut, cl);
        int[] pp = poolP(inputShape, p, cl);
        Tensor gx = newTensor(inputShape.clone(), gradOut.dtype(), cl);
        long n = Shape.numel(inputShape);
        if (n > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(gy)).i64(n).ints(pp).go(dev, avgPoolBwd.get(gradOut.dtype()), grid(n), BLOCK);
        drop(gy, gradOut);
        return gx;
    }
}
