package dev.kiln.cuda;

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

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA backend of one device. Every method queues kernels on the device's stream and returns at once; only
 * {@link #toHost} waits. Kernels are the CUDA C files under {@code resources/dev/kiln/cuda/kernels}, compiled by
 * NVRTC for the device on first use; matrix products go to cuBLAS where it is present ({@link Blas}), else to
 * the own tiled kernel. Temporaries (contiguous copies, im2col columns) go back to the allocator as soon as the
 * kernels that read them are queued.
 */
public final class CudaBackend implements Backend {
    private static final CudaBackend[] BACKENDS = new CudaBackend[64];
    static final int BLOCK = 256;

    private final CudaDevice dev;
    private final Device device;

    private final ElementwiseCuda elementwise;
    private final RandomCuda random;
    private final ReductionsCuda reductions;
    private final SortingCuda sorting;
    private final MatmulCuda matmul;
    private final ConvolutionCuda convolution;
    private final NormalizationCuda normalization;
    private final PoolingCuda pooling;
    private final SoftmaxCuda softmax;
    private final QuantizedCuda quantized;
    private final AttentionCuda attention;
    private final IndexingCuda indexing;
    private final DropoutCuda dropout;
    private final LossesCuda losses;
    private final OptimCuda optim;
    private final RecurrentCuda recurrent;
    private final Kernels.Single graphReplayTick;

    /** Four u64 words on the device where index kernels record the first bad index (see common.cuh). */
    private volatile CudaAllocator.Block errorWord;
    private volatile boolean indexKernelsQueued;

    private CudaBackend(CudaDevice dev) {
        this.dev = dev;
        this.device = Device.cuda(dev.index());
        elementwise = new ElementwiseCuda(this);
        random = new RandomCuda(this);
        reductions = new ReductionsCuda(this);
        sorting = new SortingCuda(this);
        matmul = new MatmulCuda(this, reductions);
        convolution = new ConvolutionCuda(this, matmul, reductions);
        pooling = new PoolingCuda(this);
        softmax = new SoftmaxCuda(this);
        quantized = new QuantizedCuda(this);
        attention = new AttentionCuda(this);
        indexing = new IndexingCuda(this);
        dropout = new DropoutCuda(this);
        losses = new LossesCuda(this);
        optim = new OptimCuda(this);
        recurrent = new RecurrentCuda(this);
        normalization = new NormalizationCuda(this);
        graphReplayTick = new Kernels.Single(dev, "graph.cu", "graph_replay_tick");
    }

    /** Loads the replay-tick kernel (module loading is not allowed inside a capture, so CudaGraph calls this first). */
    void prepareReplayTick() { graphReplayTick.get(); }

    /** Queues {@code *counter += 1}: a graph's first node, or an eager step between replays (see CudaGraph#advance). */
    void replayTick(long counter) { Launch.args().ptr(counter).go(dev, graphReplayTick.get(), 1, 1); }

    /** The backend of device {@code index}; a clear {@link CudaException} when there is no such GPU. */
    public static CudaBackend of(int index) {
        if (index < 0 || index >= BACKENDS.length) throw new CudaException.NoDevice("cuda:" + index + " does not exist");
        CudaBackend b = BACKENDS[index];
        if (b != null) return b;
        synchronized (BACKENDS) {
            if (BACKENDS[index] == null) {
                if (!Cuda.isAvailable()) throw new CudaException.NoDevice("cuda:" + index + " is not available: " + Cuda.unavailableReason());
                BACKENDS[index] = new CudaBackend(CudaDevice.get(index));
            }
            return BACKENDS[index];
        }
    }

    public CudaDevice cudaDevice() { return dev; }

    @Override public Device device() { return device; }

    @Override public Storage allocate(DType dtype, long numel) { return CudaStorage.allocate(dev, dtype, numel); }

    // ------------------------------------------------------------------ helpers

    Tensor newTensor(int[] shape, DType dtype) { return new Tensor(CudaStorage.allocate(dev, dtype, Shape.numel(shape)), shape); }

    /** The device address of t's first element; fails clearly for a tensor of another device. */
    long ptr(Tensor t) {
        if (!(t.storage() instanceof CudaStorage s) || s.cudaDevice() != dev) {
            throw new IllegalArgumentException("expected a tensor on " + device + ", got one on " + t.device()
                    + " (shape " + Shape.str(t.shape()) + "); move it with .to(" + device + ")");
        }
        return s.address() + (long) t.offset() * t.dtype().byteSize();
    }

    int grid(long n) { return (int) Math.max(1, Math.min((n + BLOCK - 1) / BLOCK, (long) dev.multiprocessorCount() * 32)); }

    /** A new contiguous copy (in dtype), or t itself when it is already contiguous and of that dtype. */
    Tensor contiguous(Tensor t, DType dtype) {
        if (t.isContiguous() && t.dtype() == dtype) return t;
        Tensor c = newTensor(t.shape(), dtype);
        copy(c, t);
        return c;
    }

    Tensor contiguous(Tensor t) { return contiguous(t, t.dtype()); }

    /** A new channels-last (N, C, H, W) tensor: memory order N, H, W, C. */
    Tensor newChannelsLast(int[] shape, DType dtype) {
        return new Tensor(CudaStorage.allocate(dev, dtype, Shape.numel(shape)), shape, Shape.channelsLastStrides(shape), 0);
    }

    /** A channels-last copy (in dtype), or t itself when it is already channels-last and of that dtype. */
    Tensor channelsLast(Tensor t, DType dtype) { return t.isChannelsLast() && t.dtype() == dtype ? t : channelsLastCopy(t, dtype); }

    Tensor channelsLast(Tensor t) { return channelsLast(t, t.dtype()); }

    /**
     * As {@link #channelsLast(Tensor, DType)}, and starting on a 16-byte boundary, as the 16-byte kernels' wide loads need
     * (a view can start anywhere; a new tensor starts on an allocator block).
     */
    Tensor alignedChannelsLast(Tensor t, DType dtype) {
        return t.isChannelsLast() && t.dtype() == dtype && ptr(t) % 16 == 0 ? t : channelsLastCopy(t, dtype);
    }

    private Tensor channelsLastCopy(Tensor t, DType dtype) {
        Tensor c = newChannelsLast(t.shape(), dtype);
        copy(c, t);
        return c;
    }

    /** Releases a temporary made by {@link #contiguous} or {@link #channelsLast} (not the caller's tensor). */
    static void drop(Tensor temp, Tensor original) {
        if (temp != original) temp.storage().release();
    }

    // ------------------------------------------------------------------ transfers

    private static ValueLayout carrier(DType t) {
        return switch (t) {
            case FLOAT32 -> ValueLayout.JAVA_FLOAT;
            case FLOAT64 -> ValueLayout.JAVA_DOUBLE;
            case INT64 -> ValueLayout.JAVA_LONG;
            case INT32 -> ValueLayout.JAVA_INT;
            case UINT8, BOOL -> ValueLayout.JAVA_BYTE;
            case BFLOAT16, FLOAT16 -> ValueLayout.JAVA_SHORT;
        };
    }

    @Override public Tensor fromHost(Object array, DType dtype, int[] shape) {
        long n = Shape.numel(shape);
        Object expected = HostArrays.allocate(dtype, 0);
        if (array.getClass() != expected.getClass()) {
            throw new IllegalArgumentException("fromHost: a " + array.getClass().getSimpleName() + " cannot hold " + dtype + " values");
        }
        if (HostArrays.length(array) < n) {
            throw new IllegalArgumentException("fromHost: " + HostArrays.length(array) + " values for shape " + Shape.str(shape));
        }
        Tensor out = newTensor(shape, dtype);
        long bytes = n * dtype.byteSize();
        if (bytes == 0) return out;
        long dst = ptr(out);
        ValueLayout layout = carrier(dtype);
        dev.withStaging(bytes, seg -> {
            copyArray(array, seg, layout, (int) n);
            Driver.memcpyHtoDAsync(dst, seg, bytes, dev.stream());
            return null;
        });
        return out;
    }

    private static void copyArray(Object array, MemorySegment seg, ValueLayout layout, int n) {
        switch (array) {
            case float[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfFloat) layout, 0, n);
            case double[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfDouble) layout, 0, n);
            case long[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfLong) layout, 0, n);
            case int[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfInt) layout, 0, n);
            case short[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfShort) layout, 0, n);
            case byte[] a -> MemorySegment.copy(a, 0, seg, (ValueLayout.OfByte) layout, 0, n);
            default -> throw new IllegalArgumentException("fromHost: unsupported array type " + array.getClass());
        }
    }

    @Override public Object toHost(Tensor t) {
        dev.requireNotCapturing("toHost / item() cannot read values");
        int n = Math.toIntExact(t.numel());
        Object out = HostArrays.allocate(t.dtype(), n);
        Tensor c = contiguous(t);
        long bytes = (long) n * t.dtype().byteSize();
        long src = bytes == 0 ? 0 : ptr(c);
        ValueLayout layout = carrier(t.dtype());
        long[] error = dev.withStaging(Math.max(bytes, 32), seg -> {
            MemorySegment stream = dev.stream();
            if (bytes > 0) Driver.memcpyDtoHAsync(seg, src, bytes, stream);
            Driver.streamSynchronize(stream);
            if (bytes > 0) copyBack(seg, out, layout, n);
            return indexKernelsQueued ? readIndexError(seg) : null;
        });
        drop(c, t);
        if (error != null) throw indexError(error);
        return out;
    }

    private static void copyBack(MemorySegment seg, Object array, ValueLayout layout, int n) {
        switch (array) {
            case float[] a -> MemorySegment.copy(seg, (ValueLayout.OfFloat) layout, 0, a, 0, n);
            case double[] a -> MemorySegment.copy(seg, (ValueLayout.OfDouble) layout, 0, a, 0, n);
            case long[] a -> MemorySegment.copy(seg, (ValueLayout.OfLong) layout, 0, a, 0, n);
            case int[] a -> MemorySegment.copy(seg, (ValueLayout.OfInt) layout, 0, a, 0, n);
            case short[] a -> MemorySegment.copy(seg, (ValueLayout.OfShort) layout, 0, a, 0, n);
            case byte[] a -> MemorySegment.copy(seg, (ValueLayout.OfByte) layout, 0, a, 0, n);
            default -> throw new IllegalStateException(array.getClass().toString());
        }
    }

    // ------------------------------------------------------------------ index errors

    /** The device address of the index-error word; marks that a check is due at the next wait. */
    long errorWord() {
        CudaAllocator.Block b = errorWord;
        if (b == null) {
            synchronized (this) {
                if (errorWord == null) {
                    CudaAllocator.Block nb = dev.allocator().allocate(32);
                    dev.zero(nb.address(), 32);
                    errorWord = nb;
                }
                b = errorWord;
            }
        }
        indexKernelsQueued = true;
        return b.address();
    }

    /** After a stream sync: the recorded bad index {value, size, op} (and clears it), or null. */
    private long[] readIndexError(MemorySegment seg) {
        long addr = errorWord.address();
        Driver.memcpyDtoHAsync(seg, addr, 32, dev.stream());
        Driver.streamSynchronize(dev.stream());
        indexKernelsQueued = false;
        if (seg.get(JAVA_LONG, 0) == 0) return null;
        long[] e = {seg.get(JAVA_LONG, 8), seg.get(JAVA_LONG, 16), seg.get(JAVA_LONG, 24)};
        dev.zero(addr, 32);
        return e;
    }

    private static IndexOutOfBoundsException indexError(long[] e) {
        IndexErrorOp[] ops = IndexErrorOp.values();
        String op = e[2] >= 0 && e[2] < ops.length ? ops[(int) e[2]].opName : "index op " + e[2];
        return new IndexOutOfBoundsException(op + ": index " + e[0] + " is out of bounds for a dimension of size " + e[1]
                + " (reported by the GPU at the next wait; the op's other elements were computed)");
    }

    // ------------------------------------------------------------------ dispatch: one family class per op family

    @Override public void fill(Tensor out, double value) { elementwise.fill(out, value); }

    @Override public void copy(Tensor dst, Tensor src) { elementwise.copy(dst, src); }

    @Override public Tensor unary(UnaryOp op, Tensor x) { return elementwise.unary(op, x); }

    @Override public Tensor binary(BinaryOp op, Tensor a, Tensor b) { return elementwise.binary(op, a, b); }

    @Override public Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst) { return elementwise.binaryScalar(op, a, s, scalarFirst); }

    @Override public Tensor where(Tensor cond, Tensor a, Tensor b) { return elementwise.where(cond, a, b); }

    @Override public void uniform(Tensor out, long seed, double lo, double hi) { random.uniform(out, seed, lo, hi); }

    @Override public void normal(Tensor out, long seed, double mean, double std) { random.normal(out, seed, mean, std); }

    @Override public Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim) { return reductions.reduce(op, x, dims, keepdim); }

    @Override public Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim) { return reductions.argReduce(max, x, dim, keepdim); }
    @Override public Tensor cumsum(Tensor x, int dim, boolean reverse) { return reductions.cumsum(x, dim, reverse); }
    @Override public Tensor argsort(Tensor x, int dim, boolean descending, int k) { return sorting.argsort(x, dim, descending, k); }

    @Override public Tensor matmul(Tensor a, Tensor b) { return matmul.matmul(a, b); }

    @Override public Tensor linear(Tensor x, Tensor w, Tensor bias, Tensor residual) { return matmul.linear(x, w, bias, residual); }

    @Override public void linearBackwardWeight(Tensor g, Tensor x, Tensor dw, Tensor db) { matmul.linearBackwardWeight(g, x, dw, db); }

    @Override public Tensor linearAfterBackwardInput(BinaryOp activationBackward, Tensor g, Tensor w, Tensor h) {
        Tensor dh = matmul.linearAfterBackwardInput(activationBackward, g, w, h);
        return dh != null ? dh : Backend.super.linearAfterBackwardInput(activationBackward, g, w, h);
    }

    @Override public Tensor conv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu) {
        return convolution.conv2d(x, w, bias, residual, p, relu);
    }

    @Override public Tensor[] conv2dBackwardWeightAndBias(Tensor g, Tensor y, Tensor x, int[] weightShape, Conv2dParams p,
                                                          boolean relu, boolean biasGrad) {
        return convolution.conv2dBackwardWeightAndBias(g, y, x, weightShape, p, relu, biasGrad);
    }

    @Override public Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad) { return convolution.biasReluBackward(g, y, relu, biasGrad); }

    @Override public Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p, Tensor addend) {
        return convolution.conv2dBackwardInput(gradOut, w, inputShape, p, addend);
    }

    @Override public Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p) {
        return convolution.conv2dBackwardInput(gradOut, w, inputShape, p, null);
    }

    @Override public Tensor conv2dBackwardWeight(Tensor gradOut, Tensor x, int[] weightShape, Conv2dParams p) {
        return convolution.conv2dBackwardWeight(gradOut, x, weightShape, p);
    }

    @Override public Tensor[] maxPool2d(Tensor x, Pool2dParams p) { return pooling.maxPool2d(x, p); }

    @Override public Tensor maxPool2dBackward(Tensor gradOut, Tensor indices, int[] inputShape, Pool2dParams p) {
        return pooling.maxPool2dBackward(gradOut, indices, inputShape, p);
    }

    @Override public Tensor avgPool2d(Tensor x, Pool2dParams p) { return pooling.avgPool2d(x, p); }

    @Override public Tensor avgPool2dBackward(Tensor gradOut, int[] inputShape, Pool2dParams p) { return pooling.avgPool2dBackward(gradOut, inputShape, p); }

    @Override public boolean supportsAttention(DType dtype, int headDim, int valueDim) {
        // the tensor-core backward adds query gradients atomically: deterministic mode composes all but float64 attention
        if (Cuda.deterministic() && dtype != DType.FLOAT64) return false;
        return AttentionCuda.supports(dtype, headDim, valueDim);
    }

    @Override public Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale) { return attention.attention(q, k, v, mask, causal, scale); }

    @Override public Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask, boolean causal, double scale) {
        return attention.attentionBackward(g, q, k, v, out, logSumExp, mask, causal, scale);
    }

    @Override public Tensor softmax(Tensor x, int dim, boolean log) { return softmax.softmax(x, dim, log); }

    @Override public Tensor softmaxBackward(Tensor gradOut, Tensor y, int dim, boolean log) { return softmax.softmaxBackward(gradOut, y, dim, log); }

    @Override public Tensor quantizedLinear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        return quantized.linear(format, x, codes, weightScale, bias, inputScale, relu);
    }

    @Override public Tensor quantizedConv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams geometry, Tensor weightScale, Tensor bias, double inputScale,
                                            boolean relu) {
        return quantized.conv2d(format, x, codes, geometry, weightScale, bias, inputScale, relu);
    }

    @Override public Tensor gather(Tensor x, int dim, Tensor index) { return indexing.gather(x, dim, index); }

    @Override public Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src) { return indexing.scatterAdd(shape, dim, index, src); }

    @Override public Tensor indexSelect(Tensor x, int dim, Tensor index) { return indexing.indexSelect(x, dim, index); }

    @Override public Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src) { return indexing.indexAdd(shape, dim, index, src); }
    @Override public Tensor cropImages(Tensor x, Tensor boxes, int outH, int outW) { return indexing.cropImages(x, boxes, outH, outW); }

    @Override public void lstmCell(Tensor gates, Tensor c, Tensor h, Tensor cNew, Tensor act) { recurrent.lstmCell(gates, c, h, cNew, act); }

    @Override public void lstmCellBackward(Tensor dh, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc) {
        recurrent.lstmCellBackward(dh, dcNew, c, cNew, act, dGates, dc);
    }

    @Override public void gruCell(Tensor gatesX, Tensor gatesH, Tensor h, Tensor hNew, Tensor act) { recurrent.gruCell(gatesX, gatesH, h, hNew, act); }

    @Override public void gruCellBackward(Tensor dhNew, Tensor h, Tensor act, Tensor dGatesX, Tensor dGatesH, Tensor dh) {
        recurrent.gruCellBackward(dhNew, h, act, dGatesX, dGatesH, dh);
    }

    @Override public Tensor dropout(Tensor x, double p, long key) { return dropout.dropout(x, p, key); }

    @Override public Tensor[] crossEntropyRows(Tensor logits, Tensor target, double labelSmoothing, long ignoreIndex) {
        return losses.crossEntropyRows(logits, target, labelSmoothing, ignoreIndex);
    }

    @Override public Tensor crossEntropyRowsBackward(Tensor logits, Tensor target, Tensor logSumExp, Tensor gradRows,
                                                     double labelSmoothing, long ignoreIndex) {
        return losses.crossEntropyRowsBackward(logits, target, logSumExp, gradRows, labelSmoothing, ignoreIndex);
    }

    @Override public Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex) { return losses.meanOverKept(values, target, ignoreIndex); }

    @Override public void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, java.util.function.DoubleSupplier lr,
                                   double beta1, double beta2, double eps, double weightDecay, boolean decoupled, long step, Tensor skip,
                                   List<Tensor> skipped) {
        optim.adamStep(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, decoupled, step, skip, skipped);
    }

    @Override public void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBufs, java.util.function.DoubleSupplier lr, double momentum,
                                  double dampening, double weightDecay, boolean nesterov, boolean first, Tensor skip) {
        optim.sgdStep(params, grads, momentumBufs, lr, momentum, dampening, weightDecay, nesterov, first, skip);
    }

    @Override public void ampUnscale(List<Tensor> grads, Tensor scale, Tensor foundInf) { optim.ampUnscale(grads, scale, foundInf); }

    @Override public void ampUpdateScale(Tensor scale, Tensor cleanSteps, Tensor skippedSteps, Tensor foundInf, double growthFactor,
                                         double backoffFactor, int growthInterval) {
        optim.ampUpdateScale(scale, cleanSteps, skippedSteps, foundInf, growthFactor, backoffFactor, growthInterval);
    }

    @Override public Tensor[] layerNorm(Tensor x, Tensor weight, Tensor bias, int n, double eps, DType out) {
        return normalization.layerNorm(x, weight, bias, n, eps, out);
    }

    @Override public Tensor layerNormBackward(Tensor g, Tensor x, Tensor weight, Tensor mean, Tensor invstd, int n, boolean inputGrad, Tensor addend,
                                              Tensor dweight, Tensor dbias) {
        return normalization.layerNormBackward(g, x, weight, mean, invstd, n, inputGrad, addend, dweight, dbias);
    }

    @Override public Tensor[] batchNorm(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked,
                                        Tensor residual, BatchNormParams p) {
        return normalization.batchNorm(x, weight, bias, runningMean, runningVar, batchesTracked, residual, p.training(), p.momentum(), p.eps(),
                p.relu());
    }

    @Override public Tensor[] batchNormBackward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor bias, Tensor mean, Tensor invstd,
                                                BatchNormParams p, boolean residual, boolean inputGrad, Tensor dweight, Tensor dbias) {
        return normalization.batchNormBackward(g, y, x, weight, bias, mean, invstd, p.training(), p.relu(), residual, inputGrad, dweight, dbias);
    }

    @Override public Tensor[] batchNormReluMaxPool(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar,
                                                   Tensor batchesTracked, BatchNormParams p, Pool2dParams pool) {
        Tensor[] fused = normalization.batchNormReluMaxPool(x, weight, bias, runningMean, runningVar, batchesTracked, p.training(), p.momentum(),
                p.eps(), pool);
        return fused != null ? fused : Backend.super.batchNormReluMaxPool(x, weight, bias, runningMean, runningVar, batchesTracked, p, pool);
    }

    @Override public Tensor[] batchNormReluMaxPoolBackward(Tensor g, Tensor indices, Tensor y, Tensor x, Tensor weight, Tensor bias, Tensor mean,
                                                           Tensor invstd, BatchNormParams p, Pool2dParams pool, boolean inputGrad,
                                                           Tensor dweight, Tensor dbias) {
        if (y != null) { // a stored activation (not the fused forward's output): the two ops' backward reads it
            return Backend.super.batchNormReluMaxPoolBackward(g, indices, y, x, weight, bias, mean, invstd, p, pool, inputGrad, dweight, dbias);
        }
        return normalization.batchNormReluMaxPoolBackward(g, indices, x, weight, bias, mean, invstd, p.training(), pool, inputGrad, dweight, dbias);
    }
}
