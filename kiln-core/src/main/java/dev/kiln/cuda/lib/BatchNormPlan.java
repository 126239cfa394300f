package dev.kiln.cuda.lib;

import dev.kiln.DType;

import static dev.kiln.cuda.lib.Cudnn.CUDNN_BATCHNORM_SPATIAL;
import static dev.kiln.cuda.lib.Cudnn.H;

/**
 * Spatial batch norm (CUDNN_BATCHNORM_SPATIAL: one mean and variance per channel over N, H, W) for one shape on one
 * cuDNN handle. x, y, dy, dx are (N, C, H, W) contiguous; scale, bias, means and variances are (C) in float32
 * (float64 for float64 data), as cuDNN's derived descriptor says.
 *
 * <p>Statistics as PyTorch keeps them: the running variance is updated with the unbiased batch variance,
 * {@code running = (1 - momentum)·running + momentum·batch}; the saved values are the batch mean and
 * 1/sqrt(biased variance + eps), which backward takes.
 */
public final class BatchNormPlan implements AutoCloseable {
    record Key(DType dtype, int n, int c, int h, int w) {}

    private final Cudnn cudnn;
    private final Key key;
    private final Cudnn.TensorDesc x;
    private final Cudnn.TensorDesc params;
    private boolean closed;

    BatchNormPlan(Cudnn cudnn, Key k) {
        this.cudnn = cudnn;
        this.key = k;
        this.x = Cudnn.TensorDesc.nchw(k.dtype(), k.n(), k.c(), k.h(), k.w());
        long derived = 0;
        try {
            derived = Cudnn.createDesc("cudnnCreateTensorDescriptor", H.createTensor);
            Cudnn.check("cudnnDeriveBNTensorDescriptor", (int) H.deriveBn.invokeExact(derived, x.ptr, CUDNN_BATCHNORM_SPATIAL));
        } catch (Throwable t) {
            if (derived != 0) Cudnn.destroyDesc("cudnnDestroyTensorDescriptor", H.destroyTensor, derived);
            x.close();
            throw Bind.rethrow(t);
        }
        this.params = Cudnn.TensorDesc.wrap(derived);
    }

    /** The dtype of scale, bias, means and variances for this data type. */
    public DType paramDType() { return key.dtype() == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32; }

    /**
     * Training forward: y = scale·(x - mean)/sqrt(var + eps) + bias with the batch's statistics. Running mean and
     * variance (may be 0 to skip) are updated with {@code momentum}; saveMean/saveInvStd (may be 0) receive what
     * {@link #backward} needs.
     */
    public void forwardTraining(long xPtr, long yPtr, long scale, long bias, double momentum, long runningMean, long runningVar,
                                double eps, long saveMean, long saveInvStd) {
        cudnn.setScalar(0, key.dtype(), 1.0);
        cudnn.setScalar(1, key.dtype(), 0.0);
        try {
            int st = (int) H.bnForwardTraining.invokeExact(cudnn.handle(), CUDNN_BATCHNORM_SPATIAL, cudnn.scalar[0], cudnn.scalar[1],
                    x.ptr, xPtr, x.ptr, yPtr, params.ptr, scale, bias, momentum, runningMean, runningVar, eps, saveMean, saveInvStd);
            Cudnn.check("cudnnBatchNormalizationForwardTraining", st);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    /** Inference forward with the given (running) mean and variance. */
    public void forwardInference(long xPtr, long yPtr, long scale, long bias, long mean, long var, double eps) {
        cudnn.setScalar(0, key.dtype(), 1.0);
        cudnn.setScalar(1, key.dtype(), 0.0);
        try {
            int st = (int) H.bnForwardInference.invokeExact(cudnn.handle(), CUDNN_BATCHNORM_SPATIAL, cudnn.scalar[0], cudnn.scalar[1],
                    x.ptr, xPtr, x.ptr, yPtr, params.ptr, scale, bias, mean, var, eps);
            Cudnn.check("cudnnBatchNormalizationForwardInference", st);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    /**
     * Backward: dx is assigned; dScale and dBias are assigned, or accumulated into when {@code accumulateParamGrads}
     * (Kiln's contract: parameter gradients accumulate). savedMean/savedInvStd from {@link #forwardTraining} (0 to
     * let cuDNN recompute them).
     */
    public void backward(long xPtr, long dyPtr, long dxPtr, long scale, long dScale, long dBias, boolean accumulateParamGrads,
                         double eps, long savedMean, long savedInvStd) {
        cudnn.setScalar(0, key.dtype(), 1.0);
        cudnn.setScalar(1, key.dtype(), 0.0);
        cudnn.setScalar(2, key.dtype(), 1.0);
        cudnn.setScalar(3, key.dtype(), accumulateParamGrads ? 1.0 : 0.0);
        try {
            int st = (int) H.bnBackward.invokeExact(cudnn.handle(), CUDNN_BATCHNORM_SPATIAL,
                    cudnn.scalar[0], cudnn.scalar[1], cudnn.scalar[2], cudnn.scalar[3],
                    x.ptr, xPtr, x.ptr, dyPtr, x.ptr, dxPtr, params.ptr, scale, dScale, dBias, eps, savedMean, savedInvStd);
            Cudnn.check("cudnnBatchNormalizationBackward", st);
        } catch (Throwable t) {
            throw Bind.rethrow(t);
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            params.close();
        } finally {
            x.close();
        }
    }
}
