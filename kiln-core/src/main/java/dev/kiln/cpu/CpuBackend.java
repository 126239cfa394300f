package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Storage;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BatchNormParams;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.QuantFormat;
import dev.kiln.backend.ReduceOp;
import dev.kiln.backend.UnaryOp;

import java.util.List;

/**
 * The CPU backend: Java arrays, the Vector API and all cores. It allocates and transfers itself; every kernel is
 * one line handing off to its op family's class (ElementwiseCpu, ReductionsCpu, ConvolutionCpu, ...).
 */
public final class CpuBackend implements Backend {
    public static final CpuBackend INSTANCE = new CpuBackend();

    private CpuBackend() {}

    @Override public Device device() { return Device.CPU; }

    /**
     * The float32 GEMM kernel this machine runs, for reports: "AVX2 machine code 6x16" where a {@link SgemmKernelAsm}
     * is in use, else "Vector API" and the tile (8x32 at 512 bits, 4x16 at 256, 4x8 at 128).
     */
    public String gemmKernel() {
        SgemmKernel k = Sgemm.PREFERRED.kernel;
        return (k instanceof SgemmKernelAsm m ? m.isa + " machine code " : "Vector API ") + k.mr + "x" + k.nr;
    }

    /**
     * The int8 GEMM kernel this machine runs, for reports: "AVX-512 VNNI machine code 5x16", "AVX-VNNI ...", "AVX2 ...",
     * or "Java (why)" where {@link Int8GemmAvx2} cannot run.
     */
    public String int8Kernel() { return Int8GemmAvx2.describe(); }

    /**
     * The float32 3x3 convolution kernel (stride 1 and 2), for reports: "AVX-512 machine code 8x32" where {@link Conv3x3} runs,
     * else "im2col + GEMM".
     */
    public String conv3x3Kernel() {
        Conv3x3Kernel k = Conv3x3.KERNEL;
        return k == null ? "im2col + GEMM" : k.isa + " machine code " + k.mr + "x" + k.nr;
    }

    @Override public Storage allocate(DType dtype, long numel) { return CpuStorage.allocate(dtype, numel); }

    @Override public Tensor fromHost(Object array, DType dtype, int[] shape) {
        long n = Shape.numel(shape);
        Object copy = HostArrays.allocate(dtype, (int) n);
        if (HostArrays.length(array) < n) {
            throw new IllegalArgumentException("fromHost: " + HostArrays.length(array) + " values for shape " + Shape.str(shape));
        }
        try {
            System.arraycopy(array, 0, copy, 0, (int) n);
        } catch (ArrayStoreException e) {
            throw new IllegalArgumentException("fromHost: a " + array.getClass().getSimpleName() + " cannot hold " + dtype + " values");
        }
        return new Tensor(new CpuStorage(dtype, copy), shape);
    }

    @Override public Object toHost(Tensor t) {
        Tensor c = t.isContiguous() && t.offset() == 0 && t.storage().numel() == t.numel() ? t : t.contiguousCopy();
        Object a = ((CpuStorage) c.storage()).array();
        Object copy = HostArrays.allocate(t.dtype(), (int) t.numel());
        System.arraycopy(a, 0, copy, 0, (int) t.numel());
        return copy;
    }

    // ---- every kernel lives in its family's class: one line per method here

    @Override public void fill(Tensor out, double value) { ElementwiseCpu.fill(out, value); }

    @Override public void copy(Tensor dst, Tensor src) { ElementwiseCpu.copy(dst, src); }

    @Override public void uniform(Tensor out, long seed, double lo, double hi) { RandomCpu.uniform(out, seed, lo, hi); }

    @Override public void normal(Tensor out, long seed, double mean, double std) { RandomCpu.normal(out, seed, mean, std); }

    @Override public Tensor unary(UnaryOp op, Tensor x) { return ElementwiseCpu.unary(op, x); }

    @Override public Tensor binary(BinaryOp op, Tensor a, Tensor b) { return ElementwiseCpu.binary(op, a, b); }

    @Override public Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst) { return ElementwiseCpu.binaryScalar(op, a, s, scalarFirst); }

    @Override public Tensor where(Tensor cond, Tensor a, Tensor b) { return ElementwiseCpu.where(cond, a, b); }

    @Override public Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim) { return ReductionsCpu.reduce(op, x, dims, keepdim); }

    @Override public Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim) { return ReductionsCpu.argReduce(max, x, dim, keepdim); }
    @Override public Tensor cumsum(Tensor x, int dim, boolean reverse) { return ReductionsCpu.cumsum(x, dim, reverse); }
    @Override public Tensor argsort(Tensor x, int dim, boolean descending, int k) { return SortingCpu.argsort(x, dim, descending, k); }

    @Override public Tensor matmul(Tensor a, Tensor b) { return MatmulCpu.matmul(a, b); }

    @Override public Tensor linear(Tensor x, Tensor w, Tensor bias, Tensor residual) { return MatmulCpu.linear(x, w, bias, residual); }

    @Override public void linearBackwardWeight(Tensor g, Tensor x, Tensor dw, Tensor db) { MatmulCpu.linearBackwardWeight(g, x, dw, db); }

    @Override public Tensor conv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu) {
        return ConvolutionCpu.conv2d(x, w, bias, residual, p, relu);
    }

    @Override public Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad) { return ConvolutionCpu.biasReluBackward(g, y, relu, biasGrad); }

    @Override public Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p) {
        return ConvolutionCpu.conv2dBackwardInput(gradOut, w, inputShape, p);
    }

    @Override public Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p, Tensor addend) {
        return ConvolutionCpu.conv2dBackwardInput(gradOut, w, inputShape, p, addend);
    }

    @Override public Tensor conv2dBackwardWeight(Tensor gradOut, Tensor x, int[] weightShape, Conv2dParams p) {
        return ConvolutionCpu.conv2dBackwardWeight(gradOut, x, weightShape, p);
    }

    @Override public Tensor[] maxPool2d(Tensor x, Pool2dParams p) { return PoolingCpu.maxPool2d(x, p); }

    @Override public Tensor maxPool2dValues(Tensor x, Pool2dParams p) { return PoolingCpu.maxPool2dValues(x, p); }

    @Override public Tensor maxPool2dBackward(Tensor gradOut, Tensor indices, int[] inputShape, Pool2dParams p) {
        return PoolingCpu.maxPool2dBackward(gradOut, indices, inputShape);
    }

    @Override public Tensor avgPool2d(Tensor x, Pool2dParams p) { return PoolingCpu.avgPool2d(x, p); }

    @Override public Tensor avgPool2dBackward(Tensor gradOut, int[] inputShape, Pool2dParams p) { return PoolingCpu.avgPool2dBackward(gradOut, inputShape, p); }

    @Override public boolean supportsAttention(DType dtype, int headDim, int valueDim) { return AttentionCpu.supports(dtype); }

    @Override public Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) { return AttentionCpu.attention(q, k, v, mask, causal, scale); }

    @Override public Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        return AttentionCpu.attentionBackward(g, q, k, v, out, logSumExp, mask, causal, scale);
    }

    @Override public Tensor softmax(Tensor x, int dim, boolean log) { return SoftmaxCpu.softmax(x, dim, log); }

    @Override public Tensor softmaxBackward(Tensor gradOut, Tensor y, int dim, boolean log) { return SoftmaxCpu.softmaxBackward(gradOut, y, dim, log); }

    @Override public Tensor quantizedLinear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        return QuantizedCpu.linear(format, x, codes, weightScale, bias, inputScale, relu);
    }

    @Override public Tensor quantizedConv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams geometry, Tensor weightScale, Tensor bias, double inputScale,
                                            boolean relu) {
        return QuantizedCpu.conv2d(format, x, codes, geometry, weightScale, bias, inputScale, relu);
    }

    @Override public Tensor gather(Tensor x, int dim, Tensor index) { return IndexingCpu.gather(x, dim, index); }

    @Override public Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src) { return IndexingCpu.scatterAdd(shape, dim, index, src); }

    @Override public Tensor indexSelect(Tensor x, int dim, Tensor index) { return IndexingCpu.indexSelect(x, dim, index); }

    @Override public Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) { return IndexingCpu.indexAdd(shape, dim, index, src); }
    @Override public Tensor cropImages(Tensor x, Tensor boxes, int outH, int outW) { return IndexingCpu.cropImages(x, boxes, outH, outW); }

    @Override public java.util.function.BinaryOperator<Tensor> stepProducts(Tensor b) {
        return b.dtype() == DType.FLOAT32 ? RecurrentCpu.stepProducts(b) : Backend.super.stepProducts(b);
    }

    @Override public LstmSteps lstmSteps(Tensor wHh) {
        return wHh.dtype() == DType.FLOAT32 ? RecurrentCpu.lstmSteps(wHh, Backend.super.lstmSteps(wHh)) : Backend.super.lstmSteps(wHh);
    }

    @Override public void lstmCell(Tensor gates, Tensor c, Tensor h, Tensor cNew, Tensor act) { RecurrentCpu.lstmCell(gates, c, h, cNew, act); }

    @Override public void lstmCellBackward(Tensor dh, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc) {
        RecurrentCpu.lstmCellBackward(dh, dcNew, c, cNew, act, dGates, dc);
    }

    @Override public void gruCell(Tensor gatesX, Tensor gatesH, Tensor h, Tensor hNew, Tensor act) { RecurrentCpu.gruCell(gatesX, gatesH, h, hNew, act); }

    @Override public void gruCellBackward(Tensor dhNew, Tensor h, Tensor act, Tensor dGatesX, Tensor dGatesH, Tensor dh) {
        RecurrentCpu.gruCellBackward(dhNew, h, act, dGatesX, dGatesH, dh);
    }

    @Override public Tensor dropout(Tensor x, double p, long key) { return DropoutCpu.dropout(x, p, key); }

    @Override public Tensor[] crossEntropyRows(Tensor logits, Tensor target, double labelSmoothing, long ignoreIndex) {
        return LossesCpu.crossEntropyRows(logits, target, labelSmoothing, ignoreIndex);
    }

    @Override public Tensor crossEntropyRowsBackward(Tensor logits, Tensor target, Tensor logSumExp, Tensor gradRows,
                                                     double labelSmoothing, long ignoreIndex) {
        return LossesCpu.crossEntropyRowsBackward(logits, target, logSumExp, gradRows, labelSmoothing, ignoreIndex);
    }

    @Override public Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex) { return LossesCpu.meanOverKept(values, target, ignoreIndex); }

    @Override public void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, java.util.function.DoubleSupplier lr,
                                   double beta1, double beta2, double eps, double weightDecay, boolean decoupled, long step, Tensor skip,
                                   List<Tensor> skipped) {
        OptimCpu.adamStep(params, grads, expAvg, expAvgSq, lr.getAsDouble(), beta1, beta2, eps, weightDecay, decoupled, step, skip, skipped);
    }

    @Override public void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBufs, java.util.function.DoubleSupplier lr, double momentum,
                                  double dampening, double weightDecay, boolean nesterov, boolean first, Tensor skip) {
        OptimCpu.sgdStep(params, grads, momentumBufs, lr.getAsDouble(), momentum, dampening, weightDecay, nesterov, first, skip);
    }

    @Override public void ampUnscale(List<Tensor> grads, Tensor scale, Tensor foundInf) { OptimCpu.ampUnscale(grads, scale, foundInf); }

    @Override public void ampUpdateScale(Tensor scale, Tensor cleanSteps, Tensor skippedSteps, Tensor foundInf, double growthFactor,
                                         double backoffFactor, int growthInterval) {
        OptimCpu.ampUpdateScale(scale, cleanSteps, skippedSteps, foundInf, growthFactor, backoffFactor, growthInterval);
    }

    @Override public Tensor[] layerNorm(Tensor x, Tensor weight, Tensor bias, int n, double eps, DType out) {
        Tensor[] r = NormalizationCpu.layerNorm(x, weight, bias, n, eps);
        r[0] = ElementwiseCpu.cast(r[0], out);
        return r;
    }

    @Override public Tensor layerNormBackward(Tensor g, Tensor x, Tensor weight, Tensor mean, Tensor invstd, int n, boolean inputGrad, Tensor addend,
                                              Tensor dweight, Tensor dbias) {
        return NormalizationCpu.layerNormBackward(g, x, weight, mean, invstd, n, inputGrad, addend, dweight, dbias);
    }

    @Override public Tensor[] batchNorm(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked,
                                        Tensor residual, BatchNormParams p) {
        return NormalizationCpu.batchNorm(x, weight, bias, runningMean, runningVar, batchesTracked, residual, p);
    }

    @Override public Tensor[] batchNormBackward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor bias, Tensor mean, Tensor invstd,
                                                BatchNormParams p, boolean residual, boolean inputGrad, Tensor dweight, Tensor dbias) {
        return NormalizationCpu.batchNormBackward(g, y, x, weight, mean, invstd, p, residual, inputGrad, dweight, dbias);
    }
}
