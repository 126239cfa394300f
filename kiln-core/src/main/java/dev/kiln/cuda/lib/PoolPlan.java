package dev.kiln.cuda.lib;

import dev.kiln.DType;
import dev.kiln.backend.Pool2dParams;

import static dev.kiln.cuda.lib.Cudnn.H;

/**
 * One pooling geometry on one cuDNN handle: x (N, C, H, W) to y (N, C, P, Q), contiguous NCHW. Made once by
 * {@link Cudnn#pool}. Max pooling ignores padding (as PyTorch's -inf padding); average pooling divides by the whole
 * window or by its in-bounds part as {@link Pool2dParams#countIncludePad()} says.
 *
 * <p>cuDNN's max pooling gives no argmax indices: its backward recomputes them from x and y.
 */
public final class PoolPlan implements AutoCloseable {
    public enum Mode { MAX, AVERAGE }

    record Key(DType dtype, int n, int c, int h, int w, Pool2dParams p, Mode mode) {}

    private final Cudnn cudnn;
    private final Key key;
    private final Cudnn.PoolDesc pool;
    private final Cudnn.TensorDesc x, y;
    private final int[] outShape;
    private boolean closed;

    PoolPlan(Cudnn cudnn, Key k) {
        this.cudnn = cudnn;
        this.key = k;
        int p = k.p().outH(k.h()), q = k.p().outW(k.w());
        if (p < 1 || q < 1) throw new IllegalArgumentException("pool2d: window does not fit input " + k.h() + "x" + k.w() + " with " + k.p());
        this.outShape = new int[]{k.n(), k.c(), p, q};
        int mode = switch (k.mode()) {
            case MAX -> Cudnn.CUDNN_POOLING_MAX;
            case AVERAGE -> k.p().countIncludePad() ? Cudnn.CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                    : Cudnn.CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
        };
        Cudnn.PoolDesc pd = new Cudnn.PoolDesc(mode, k.p());
        Cudnn.TensorDesc xd = null;
        try {
            xd = Cudnn.TensorDesc.nchw(k.dtype(), k.n(), k.c(), k.h(), k.w());
            this.y = Cudnn.TensorDesc.nchw(k.dtype(), k.n(), k.c(), p, q);
        } catch (RuntimeException e) {
            pd.close();
            if (xd != null) xd.close();
            throw e;
        }
        this.pool = pd;
        this.x = xd;
    }

    /** The output shape (N, C, P, Q). */
    public int[] outputShape() { return outShape.clone(); }

    /** y = alpha·pool(x) + beta·y. */
    public void forward(long xPtr, long yPtr, double alpha, double beta) {
        cudnn.setScalar(0, key.dtype(), alpha);
        cudnn.setScalar(1, key.dtype(), beta);
        try {
            int st = (int) H.poolForward.invokeExact(cudnn.handle(), pool.ptr, cudnn.scalar[0], x.ptr, xPtr, cudnn.scalar[1], y.ptr, yPtr);
            Cudnn.check("cudnnPoolingForward", st);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    /** dx = alpha·(gradient through the pooling, given its input x, output y and dy) + beta·dx. */
    public void backward(long yPtr, long dyPtr, long xPtr, long dxPtr, double alpha, double beta) {
        cudnn.setScalar(0, key.dtype(), alpha);
        cudnn.setScalar(1, key.dtype(), beta);
        try {
            int st = (int) H.poolBackward.invokeExact(cudnn.handle(), pool.ptr, cudnn.scalar[0], y.ptr, yPtr, y.ptr, dyPtr,
                    x.ptr, xPtr, cudnn.scalar[1], x.ptr, dxPtr);
            Cudnn.check("cudnnPoolingBackward", st);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            pool.close();
        } finally {
            try {
                x.close();
            } finally {
                y.close();
            }
        }
    }
}
