package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Normalization;
import dev.kiln.ops.Pooling;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static dev.kiln.ops.ReluNaNTest.sameWithNaN;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ReLU keeps NaN on CUDA as on the CPU (ReluNaNTest): the elementwise kernels (contiguous and strided), the
 * convolution epilogues (cuDNN's output through bias_relu, the direct kernel for one input channel, the TF32 stem
 * kernel, cuBLASLt's epilogue of a 1x1 convolution), batch norm's (NCHW and channels-last, with and without the residual add) and the stem tail's, each against
 * the CPU on inputs with NaN at fixed places among random values.
 */
class ReluNaNGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(ReluNaNGpuTest.class); }

    /** x with NaN at about one element in 23, the rest random. */
    private Tensor withNaN(DType t, int... shape) {
        double[] v = randn(DType.FLOAT64, shape).toDoubleArray();
        for (int i = 5; i < v.length; i += 23) v[i] = Double.NaN;
        return Tensor.of(v, shape).to(t);
    }

    @Test void elementwiseReluKeepsNaN() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.FLOAT16}) {
            Tensor x = withNaN(t, 3, 37);
            sameWithNaN(x.relu(), gpu(x).relu(), 0, "relu " + t, true);
            Tensor xt = x.transpose(0, 1);   // strided: the generic kernel
            sameWithNaN(xt.relu(), gpu(x).transpose(0, 1).relu(), 0, "relu of a transposed view " + t, true);
        }
    }

    @Test void convolutionEpiloguesKeepNaN() {
        DType t = DType.FLOAT32;
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        // one input channel: the direct kernel; sixteen: cuDNN, then the bias + ReLU epilogue
        for (int c : new int[]{1, 16}) {
            Tensor x = withNaN(t, 2, c, 9, 9), w = randn(t, 8, c, 3, 3), b = randn(t, 8);
            Tensor expected = Convolution.conv2d(x, w, b, p, true);
            sameWithNaN(expected, Convolution.conv2d(gpu(x), gpu(w), gpu(b), p, true), 1e-4, "conv2d + relu, " + c + " channels", true);
            sameWithNaN(expected, Convolution.conv2d(gpuCl(x), gpuCl(w), gpu(b), p, true), 1e-4, "channels-last conv2d + relu, " + c + " channels", true);
        }
        // a 1x1 convolution over channels-last activations with bias, residual and ReLU: one cuBLASLt product with the
        // ReLU in its epilogue, with and without autograd
        Conv2dParams one = Conv2dParams.of(1, 0, 1, 1);
        Tensor x1 = withNaN(t, 2, 16, 5, 7), w1 = randn(t, 24, 16, 1, 1), b1 = randn(t, 24), r1 = withNaN(t, 2, 24, 5, 7);
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        for (boolean grad : new boolean[]{true, false}) {
            try (GradMode mode = grad ? GradMode.enabled() : GradMode.disabled()) {
                sameWithNaN(Convolution.conv2d(x1, w1, b1, r1, one, true), Convolution.conv2d(gpuCl(x1), gpuCl(w1), gpu(b1), gpuCl(r1), one, true), 1e-4,
                        "1x1 channels-last conv2d + bias + residual + relu, autograd " + grad, true);
                if (lt != null) assertTrue(lt.acceptedAdding(t, t, CublasLt.Epilogue.RELU_BIAS, 24, 2 * 5 * 7, 16), "cuBLASLt did not take it: " + lt.lastRefusal);
                sameWithNaN(Convolution.conv2d(x1, w1, b1, null, one, true), Convolution.conv2d(gpuCl(x1), gpuCl(w1), gpu(b1), null, one, true), 1e-4,
                        "1x1 channels-last conv2d + bias + relu, autograd " + grad, true);
            }
        }
        // ResNet's stem geometry on TF32 tensor cores (values to TF32's precision; NaN exactly)
        Assumptions.assumeTrue(Cuda.device(GPU).ccMajor() >= 8, "TF32 tensor cores need sm_80");
        Cuda.setAllowTf32Conv(GPU, true);
        try {
            Conv2dParams stem = Conv2dParams.of(2, 3, 1, 1);
            Tensor x = withNaN(t, 1, 3, 20, 17), w = randn(t, 64, 3, 7, 7), b = randn(t, 64);
            sameWithNaN(Convolution.conv2d(x, w, b, stem, true), Convolution.conv2d(gpuCl(x), gpuCl(w), gpu(b), stem, true), 2e-2,
                    "stem conv2d + relu", true);
        } finally {
            Cuda.setAllowTf32Conv(GPU, false);
        }
    }

    @Test void batchNormEpiloguesKeepNaN() {
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
            DType pt = DType.FLOAT32;
            Tensor x = withNaN(t, 2, 8, 10, 10), res = withNaN(t, 2, 8, 10, 10);
            Tensor rm = randn(pt, 8), rv = positive(pt, 8), w = randn(pt, 8), b = randn(pt, 8);
            double tl = t == DType.FLOAT32 ? 1e-5 : 2e-2;
            for (boolean cl : new boolean[]{false, true}) {
                Tensor xg = cl ? gpuCl(x) : gpu(x), resg = cl ? gpuCl(res) : gpu(res);
                String what = t + (cl ? " channels-last" : " NCHW");
                sameWithNaN(Normalization.batchNorm(x, rm, rv, w, b, null, false, 0.1, 1e-5, true),
                        Normalization.batchNorm(xg, gpu(rm), gpu(rv), gpu(w), gpu(b), null, false, 0.1, 1e-5, true), tl, "batch norm + relu " + what, true);
                sameWithNaN(Normalization.batchNorm(x, rm, rv, w, b, res, false, 0.1, 1e-5, true),
                        Normalization.batchNorm(xg, gpu(rm), gpu(rv), gpu(w), gpu(b), resg, false, 0.1, 1e-5, true), tl,
                        "batch norm + add + relu " + what, true);
            }
            // the stem tail (channels-last: one fused pass) against the CPU's two ops; max pooling may pass over a NaN
            Pool2dParams pool = Pool2dParams.of(3, 2, 1);
            sameWithNaN(Pooling.maxPool2d(Normalization.batchNorm(x, rm, rv, w, b, null, false, 0.1, 1e-5, true), pool),
                    Normalization.batchNormReluMaxPool(gpuCl(x), gpu(rm), gpu(rv), null, gpu(w), gpu(b), false, 0.1, 1e-5, pool), tl,
                    "batch norm + relu + max pool " + t, false);
        }
    }
}
