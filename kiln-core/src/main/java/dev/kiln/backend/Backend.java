package dev.kiln.backend;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Storage;
import dev.kiln.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * The kernels a device provides. The op layer ({@code dev.kiln.ops}) checks shapes and dtypes, broadcasts
 * (by stride-0 views), records gradients and then calls one of these; a backend only computes. Inputs may be
 * any strided view; outputs are new contiguous tensors unless the method writes into {@code out}. Nothing here
 * may wait for the device, except {@link #toHost}.
 */
public interface Backend {
    Device device();

    /** Uninitialised memory for {@code numel} elements. */
    Storage allocate(DType dtype, long numel);

    // ---- transfers
    /** Copies a Java array (float[], double[], long[], int[], byte[] for uint8/bool, short[] for 16-bit floats) into a new tensor. */
    Tensor fromHost(Object array, DType dtype, int[] shape);

    /** The tensor's elements in logical (row-major) order as a new Java array of the dtype's carrier type. Waits for the device. */
    Object toHost(Tensor t);

    // ---- filling and copying
    void fill(Tensor out, double value);

    /** {@code dst[...] = src[...]}, elementwise, same shape; dtypes may differ (converted). dst may be a strided view. */
    void copy(Tensor dst, Tensor src);

    /** Fills {@code out} (contiguous, floating) with U(lo, hi) from a counter-based generator keyed by seed. */
    void uniform(Tensor out, long seed, double lo, double hi);

    /** Fills {@code out} (contiguous, floating) with N(mean, std^2) from a counter-based generator keyed by seed. */
    void normal(Tensor out, long seed, double mean, double std);

    // ---- elementwise
    Tensor unary(UnaryOp op, Tensor x);

    /** a and b have the same shape and dtype (broadcast inputs come as stride-0 views). */
    Tensor binary(BinaryOp op, Tensor a, Tensor b);

    /** {@code op(a, s)}, or {@code op(s, a)} when scalarFirst. */
    Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst);

    /** cond ? a : b; all three of one shape, a and b of one dtype. */
    Tensor where(Tensor cond, Tensor a, Tensor b);

    // ---- reductions
    /** Reduces over the listed dimensions (sorted, distinct). */
    Tensor reduce(ReduceOp op, Tensor x, int[] dims, boolean keepdim);

    /** Index (int64) of the max (or min) along dim; the first one on ties. */
    Tensor argReduce(boolean max, Tensor x, int dim, boolean keepdim);

    /**
     * Running sums along dim, x's shape and dtype, contiguous: out[.., j, ..] sums x[.., 0..j, ..], or with reverse
     * x[.., j..n-1, ..]. x is floating (summed in double) or int64.
     */
    Tensor cumsum(Tensor x, int dim, boolean reverse);

    // ---- linear algebra
    /** Batched product of a (B, M, K) and b (B, K, N) into (B, M, N); inputs may be transposed or stride-0 views. */
    Tensor matmul(Tensor a, Tensor b);

    /**
     * linear's fused forward: x (N, in) times w (out, in) transposed, plus bias (out) when not null, plus residual (N, out)
     * when not null; x and w may be transposed views. With a residual the output takes its dtype (float32 beside 16-bit x
     * and w under autocast; the bias then in that dtype too) and is the only new memory, with no pass of its own for the add.
     */
    Tensor linear(Tensor x, Tensor w, Tensor bias, Tensor residual);

    /**
     * linear's weight gradient: gᵀ·x for g (N, out) and x (N, in) written into dw (out, in), and when db is not null the
     * bias gradient, g's column sums, into db (out). dw and db are contiguous, of g's dtype or float32 beside a 16-bit g
     * (the float32 parameters' gradients of a product run under autocast, written without a cast of their own), and may
     * be views into larger memory (a data-parallel bucket).
     */
    void linearBackwardWeight(Tensor g, Tensor x, Tensor dw, Tensor db);

    /**
     * linearAfter's input gradient, {@code activationBackward(g·w, h)}: g (N, out) the output's gradient, w (out, in), h
     * (N, in) the activation's input, activationBackward its gradient op (GELU_TANH_BACKWARD, ...); (N, in) in h's dtype.
     * The default runs the product, then the op; CUDA folds GELU_TANH_BACKWARD into the product's epilogue.
     */
    default Tensor linearAfterBackwardInput(BinaryOp activationBackward, Tensor g, Tensor w, Tensor h) {
        int n = g.shape()[0], in = w.shape()[1];
        Tensor product = matmul(batchOfOne(g), batchOfOne(w));
        Tensor dh = binary(activationBackward, new Tensor(product.storage(), new int[]{n, in}), h);
        product.storage().release();
        return dh;
    }

    // ---- neural-network kernels
    /** x (N, C, H, W), w (O, C/groups, kH, kW), bias (O) or null. */
    default Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p) { return conv2d(x, w, bias, p, false); }

    /** As {@link #conv2d(Tensor, Tensor, Tensor, Tensor, Conv2dParams, boolean)} without a residual. */
    default Tensor conv2d(Tensor x, Tensor w, Tensor bias, Conv2dParams p, boolean relu) { return conv2d(x, w, bias, null, p, relu); }

    /**
     * {@code relu?(conv2d(x, w, bias) + residual)}: residual (null: none) has the output's shape (a residual block's
     * shortcut), and when {@code relu}, {@code max(v, 0)} (NaN kept, as {@link UnaryOp#RELU}). The bias, residual and
     * ReLU are the convolution's epilogue (one pass over the output on CUDA instead of three).
     */
    Tensor conv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu);

    /**
     * The backward of {@code y = relu?(z + bias)} over channel dim 1 of (N, C, ...): {dz, dbias}, where dz = relu ?
     * g·[y > 0] : g (g itself when not relu) and dbias = dz summed over every dim but 1 (null unless biasGrad). One
     * pass over g (and y) on CUDA instead of a mask pass and a reduction.
     */
    Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad);

    /**
     * The weight and bias gradients of {@code y = relu?(conv2d(x, w) + bias)} from g = dL/dy when x needs none:
     * {dw, dbias (null unless biasGrad)}. A backend may fuse the ReLU mask and the bias sum into the weight
     * gradient (CUDA does for a first layer of few input channels); the default composes the primitives.
     */
    default Tensor[] conv2dBackwardWeightAndBias(Tensor g, Tensor y, Tensor x, int[] weightShape, Conv2dParams p, boolean relu, boolean biasGrad) {
        Tensor[] pre = relu || biasGrad ? biasReluBackward(g, y, relu, biasGrad) : new Tensor[]{g, null};
        return new Tensor[]{conv2dBackwardWeight(pre[0], x, weightShape, p), pre[1]};
    }

    Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p);

    /**
     * The input gradient plus {@code addend} (the input's gradient from its other consumers, which the caller lets
     * this call overwrite): a backend may accumulate into addend in place and return it (CUDA: cuDNN's output
     * scaling), sparing a separate add pass; the default adds the two.
     */
    default Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p, Tensor addend) {
        Tensor gx = conv2dBackwardInput(gradOut, w, inputShape, p);
        return addend == null ? gx : binary(BinaryOp.ADD, addend, gx);
    }

    Tensor conv2dBackwardWeight(Tensor gradOut, Tensor x, int[] weightShape, Conv2dParams p);

    /**
     * Returns {output, argmax indices}: the backend's own, read only by its {@link #maxPool2dBackward} (the CPU's int64,
     * flat over H*W per plane; CUDA's channels-last 16-byte kernels keep a byte, the place in the window).
     */
    Tensor[] maxPool2d(Tensor x, Pool2dParams p);

    /** {@link #maxPool2d}'s output alone, when no gradient will be asked for (a backend may skip the indices). */
    default Tensor maxPool2dValues(Tensor x, Pool2dParams p) { return maxPool2d(x, p)[0]; }

    /** The gradient of {@link #maxPool2d} for its input, from the indices it returned and the same geometry. */
    Tensor maxPool2dBackward(Tensor gradOut, Tensor indices, int[] inputShape, Pool2dParams p);

    Tensor avgPool2d(Tensor x, Pool2dParams p);

    Tensor avgPool2dBackward(Tensor gradOut, int[] inputShape, Pool2dParams p);

    // ---- normalization
    /**
     * Batch norm of x (N, C, *) over every dim but 1, with a residual block's add and ReLU fused in:
     * {@code y = relu?((x - mean[c]) * invstd[c] * weight[c] + bias[c] + residual)}. Training: the batch's mean and
     * (biased) variance, and runningMean/runningVar (when not null) moved towards them in place, the variance unbiased;
     * eval: the running statistics. weight/bias may be null (1 and 0), residual (x's shape) too. batchesTracked (an
     * int64 scalar, or null) is incremented by one (training only). Returns {y (x's dtype), mean (C), invstd (C)};
     * parameters and statistics are float32 for 16-bit x, else x's dtype.
     */
    Tensor[] batchNorm(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked, Tensor residual,
                       BatchNormParams p);

    /**
     * The gradients of {@link #batchNorm} from g = dL/dy: {dx (null unless inputGrad), dweight, dbias, dresidual (the
     * ReLU-masked g; null unless residual)}; the parameter gradients are written into dweight and dbias when they are
     * not null (contiguous, C elements of the parameters' dtype: gradient buffers or new tensors; both or neither, and
     * only with a weight). y is the forward's output, read for the ReLU mask unless the backend recomputes the mask
     * from x, weight and bias (CUDA, where no residual was added); mean and invstd are what the forward returned.
     */
    Tensor[] batchNormBackward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor bias, Tensor mean, Tensor invstd, BatchNormParams p,
                               boolean residual, boolean inputGrad, Tensor dweight, Tensor dbias);

    /**
     * {@code maxPool2d(batchNorm(x) with its ReLU, pool)} (p.relu() set, no residual: a ResNet stem's tail). Returns
     * {pooled output, mean, invstd, the pooling's indices, the batch norm's output}, the last null where the backend
     * fused the passes and never stored it (CUDA on channels-last x). The default runs the two.
     */
    default Tensor[] batchNormReluMaxPool(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked,
                                          BatchNormParams p, Pool2dParams pool) {
        Tensor[] bn = batchNorm(x, weight, bias, runningMean, runningVar, batchesTracked, null, p);
        Tensor[] pooled = maxPool2d(bn[0], pool);
        return new Tensor[]{pooled[0], bn[1], bn[2], pooled[1], bn[0]};
    }

    /**
     * The gradients of {@link #batchNormReluMaxPool} from g, the pooled output's: {dx (null unless inputGrad), dweight,
     * dbias} as {@link #batchNormBackward}'s; indices, y, mean and invstd are what the forward returned (y null only
     * where this backend's batchNormBackward recomputes the ReLU's mask from x).
     */
    default Tensor[] batchNormReluMaxPoolBackward(Tensor g, Tensor indices, Tensor y, Tensor x, Tensor weight, Tensor bias, Tensor mean,
                                                  Tensor invstd, BatchNormParams p, Pool2dParams pool, boolean inputGrad, Tensor dweight,
                                                  Tensor dbias) {
        Tensor gy = maxPool2dBackward(g, indices, x.shape(), pool);
        Tensor[] r = batchNormBackward(gy, y, x, weight, bias, mean, invstd, p, false, inputGrad, dweight, dbias);
        return new Tensor[]{r[0], r[1], r[2]};
    }

    /**
     * Layer norm of x over its trailing n elements (rows = numel / n): {@code y = (x - mean) * invstd * weight + bias}
     * with the biased variance. weight and bias (n) may be null; they are float32 for 16-bit x, else x's dtype. Returns
     * {y (x's shape, dtype {@code out}), mean (rows), invstd (rows)}, the statistics float32 (float64 for float64 x).
     * {@code out} is x's dtype, or a 16-bit one for float32 x (a pre-norm block under autocast: see F.layerNorm).
     */
    Tensor[] layerNorm(Tensor x, Tensor weight, Tensor bias, int n, double eps, DType out);

    /**
     * The gradients of {@link #layerNorm} from g = dL/dy (x's dtype, or the 16-bit dtype a float32 x was normalised
     * into) and the forward's mean and invstd: returns dx (null unless inputGrad), plus {@code addend} when it is not null
     * (x's pending gradient, added in the same pass); when dbias is not null writes the parameter gradients, dbias and
     * (when weight is not null) dweight, into those contiguous n-element tensors of the parameters' dtype (gradient
     * buffers, or new tensors).
     */
    Tensor layerNormBackward(Tensor g, Tensor x, Tensor weight, Tensor mean, Tensor invstd, int n, boolean inputGrad, Tensor addend,
                             Tensor dweight, Tensor dbias);

    /** softmax (or log_softmax when log) along dim. */
    Tensor softmax(Tensor x, int dim, boolean log);

    /** Gradient of softmax/log_softmax given its output y. */
    Tensor softmaxBackward(Tensor gradOut, Tensor y, int dim, boolean log);

    /**
     * Quantized inference product: out (M, N) float32 = q(x) · codesᵀ · inputScale · weightScale[n] + bias[n], x float32
     * (M, K), codes (N, K) of the format carried as uint8, q the format's rounding of x / inputScale (int8: half away from
     * zero, ±127; FP8: nearest even, saturating at 448); bias may be null; {@code relu}: max(out, 0) (NaN stays NaN), the
     * ReLU that follows the layer folded in.
     */
    Tensor quantizedLinear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale, boolean relu);

    /**
     * Quantized convolution (groups 1): x float32 (N, C, H, W), codes (O, C, kh, kw) of the format carried as uint8; out
     * float32 (N, O, OH, OW) = the same products as {@link #quantizedLinear} over the im2col rows of q(x) (zero padding is code 0).
     */
    Tensor quantizedConv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams geometry, Tensor weightScale, Tensor bias, double inputScale,
                           boolean relu);

    // ---- attention
    /** Whether {@link #attention} takes this dtype and these head sizes (else the op layer composes it). */
    boolean supportsAttention(DType dtype, int headDim, int valueDim);

    /**
     * Fused scaled-dot-product attention of q (B, H, L, d), k (B, H, S, d), v (B, H, S, dv), any strides: out =
     * softmax(scale·q·kᵀ + mask)·v with key j hidden from query i when causal and j &gt; i, without forming the (L, S)
     * scores. mask is null or additive (float32, float64 for float64 q), a (B, H, L, S) view (stride 0 where it
     * broadcasts). Returns {out (B, H, L, dv), logsumexp of each query's scaled scores (B, H, L), float32 or float64};
     * out may be a permuted view of its storage (CUDA lays it out as (B, L, H, dv), so merging the heads is free).
     */
    Tensor[] attention(Tensor q, Tensor k, Tensor v, Tensor mask, boolean causal, double scale);

    /**
     * The gradients {dq, dk, dv} of {@link #attention} from g = dL/dout, recomputing the scores tile by tile. When q, k
     * and v are {@link #packedHeads}, the three may be views of one new (B, L, 3H, d) buffer, the projection's gradient
     * as it is (CausalSelfAttention's split then hands it on without assembling it).
     */
    Tensor[] attentionBackward(Tensor g, Tensor q, Tensor k, Tensor v, Tensor out, Tensor logSumExp, Tensor mask,
                               boolean causal, double scale);

    /** Whether q, k and v (B, H, L, d) are the heads of one (B, L, 3H, d) tensor, in that order (self-attention's split). */
    static boolean packedHeads(Tensor q, Tensor k, Tensor v) {
        int b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3);
        int[] packed = {l * 3 * h * d, d, 3 * h * d, 1};
        return q.storage() == k.storage() && k.storage() == v.storage() && Arrays.equals(q.shape(), k.shape())
                && Arrays.equals(q.shape(), v.shape()) && b > 0 && h > 0 && l > 0 && d > 0
                && Arrays.equals(q.strides(), packed) && Arrays.equals(k.strides(), packed)
                && Arrays.equals(v.strides(), packed) && k.offset() == q.offset() + h * d && v.offset() == q.offset() + 2 * h * d;
    }

    // ---- sorting
    /**
     * The first k of the int64 indices that order x along dim (x's shape with k along dim, contiguous; k = the size:
     * all of them): stable, so equal values keep their order, and NaN greater than every number (last ascending, first
     * descending), as PyTorch's stable sort.
     */
    Tensor argsort(Tensor x, int dim, boolean descending, int k);

    // ---- indexing
    /** out[i][j] = x[index[i][j]][j] for dim 0 (and likewise for other dims); index int64, same rank as x. */
    Tensor gather(Tensor x, int dim, Tensor index);

    /** A zero tensor of {@code shape} with src added at the positions gather would read. */
    Tensor scatterAdd(int[] shape, int dim, Tensor index, Tensor src);

    /** Selects slices along dim by a 1-D int64 index. */
    Tensor indexSelect(Tensor x, int dim, Tensor index);

    /** A zero tensor of {@code shape} with src's slices added at index along dim (index_select's adjoint). */
    Tensor indexAdd(int[] shape, int dim, Tensor index, Tensor src);

    /**
     * A window of each image of x (N, C, H, W), as data augmentation's crops and flips: out (N, C, outH, outW),
     * out[n, c, i, j] = x[n, c, top + i, left + (mirror ? outW - 1 - j : j)], zero where the window leaves the image;
     * boxes int32 (N, 3) of {top, left, mirror} on x's device.
     */
    Tensor cropImages(Tensor x, Tensor boxes, int outH, int outW);

    // ---- recurrent cells: one elementwise pass per step of an LSTM or GRU. Any floating dtype, one per call (16-bit
    // values are computed in float32); inputs may be strided; results go into the given contiguous tensors (views of
    // the sequence op's buffers, so a layer's steps allocate nothing). B rows, hidden size H.

    /**
     * One LSTM step from the pre-activation gates (B, 4H), PyTorch's order i, f, g, o, and the cell state c (B, H):
     * {@code c' = σ(f)·c + σ(i)·tanh(g)}, {@code h' = σ(o)·tanh(c')}. Writes h' and c' (B, H) and the activated gates
     * σ(i), σ(f), tanh(g), σ(o) into act (B, 4H), which the backward reads.
     */
    void lstmCell(Tensor gates, Tensor c, Tensor h, Tensor cNew, Tensor act);

    /**
     * The step products of a recurrent layer, h·B + addend for a new h (M, K) and addend (M, N) (or null) on every step
     * of a sequence with one B (K, N) (W_hhᵀ forward, W_hh backward): returns the function that computes them, each as
     * a new contiguous (M, N) tensor. The CPU packs a float32 B once into its GEMM's panels (packed again on every step,
     * it cost as much as the product at 64 rows) and adds by starting the product from the addend; the default
     * multiplies B as it is, then adds.
     */
    default java.util.function.BinaryOperator<Tensor> stepProducts(Tensor b) {
        return (h, addend) -> {
            Tensor product = matmul(batchOfOne(h), batchOfOne(b));
            Tensor p = new Tensor(product.storage(), new int[]{h.shape()[0], b.shape()[1]});
            if (addend == null) return p;
            Tensor sum = binary(BinaryOp.ADD, addend, p);
            product.storage().release();
            return sum;
        };
    }

    /**
     * The steps of one LSTM layer over a sequence with one W_hh (4H, H), each way in one call: for backends that fuse
     * the step product with the cell (the CPU: each thread multiplies and activates its own hidden units' four gates,
     * so a step is one parallel loop and its gates never leave the thread's cache). The default composes
     * {@link #stepProducts} with {@link #lstmCell} and {@link #lstmCellBackward}, each product's B made on first use.
     */
    default LstmSteps lstmSteps(Tensor wHh) {
        return new LstmSteps() {
            private java.util.function.BinaryOperator<Tensor> forward, backward;

            @Override public void forward(Tensor h, Tensor xGates, Tensor c, Tensor hNew, Tensor cNew, Tensor act) {
                if (forward == null) forward = stepProducts(wHh.t());
                Tensor gates = forward.apply(h, xGates);
                lstmCell(gates, c, hNew, cNew, act);
                gates.close();
            }

            @Override public void backward(Tensor dGatesNext, Tensor dhOut, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc) {
                Tensor dh = dGatesNext == null ? dhOut : hiddenGradient(dGatesNext, dhOut);
                lstmCellBackward(dh, dcNew, c, cNew, act, dGates, dc);
                if (dh != dhOut) dh.close();
            }

            @Override public Tensor hiddenGradient(Tensor dGates, Tensor addend) {
                if (backward == null) backward = stepProducts(wHh);
                return backward.apply(dGates, addend);
            }
        };
    }

    /** What {@link #lstmSteps} returns: a layer's step each way, B rows, hidden size H; outputs contiguous, inputs strided rows. */
    interface LstmSteps {
        /** gates = h·W_hhᵀ + xGates (B, 4H), then {@link #lstmCell}: writes hNew, cNew (B, H) and act (B, 4H). */
        void forward(Tensor h, Tensor xGates, Tensor c, Tensor hNew, Tensor cNew, Tensor act);

        /**
         * dh = dGatesNext·W_hh + dhOut (the later step's gates' gradient through h, plus the output's; dhOut alone when
         * dGatesNext is null), then {@link #lstmCellBackward} with dh: writes dGates (B, 4H) and dc (B, H).
         */
        void backward(Tensor dGatesNext, Tensor dhOut, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc);

        /** dGates·W_hh + addend (or null): a new (B, H) tensor, the gradient of the h the step started from (h_0's last). */
        Tensor hiddenGradient(Tensor dGates, Tensor addend);
    }

    /** A matrix (M, N), any strides, as the batch of one (1, M, N) that {@link #matmul} takes, in the same memory. */
    private static Tensor batchOfOne(Tensor t) {
        int[] st = t.strides();
        return new Tensor(t.storage(), new int[]{1, t.shape()[0], t.shape()[1]}, new int[]{0, st[0], st[1]}, t.offset());
    }

    /** The gradients of {@link #lstmCell} from dh = dL/dh' and dcNew = dL/dc': writes dGates (B, 4H) and dc = dL/dc (B, H). */
    void lstmCellBackward(Tensor dh, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc);

    /**
     * One GRU step from the input part gatesX = x·W_ihᵀ + b_ih and the hidden part gatesH = h·W_hhᵀ + b_hh (B, 3H),
     * PyTorch's order r, z, n, and h (B, H): {@code r = σ(x_r + h_r)}, {@code z = σ(x_z + h_z)},
     * {@code n = tanh(x_n + r·h_n)}, {@code h' = (1 - z)·n + z·h}. Writes h' (B, H) and r, z, n, h_n into act (B, 4H).
     */
    void gruCell(Tensor gatesX, Tensor gatesH, Tensor h, Tensor hNew, Tensor act);

    /**
     * The gradients of {@link #gruCell} from dhNew = dL/dh': writes dGatesX, dGatesH (B, 3H) and dh (B, H), the part of
     * dL/dh that does not pass through gatesH (dhNew·z).
     */
    void gruCellBackward(Tensor dhNew, Tensor h, Tensor act, Tensor dGatesX, Tensor dGatesH, Tensor dh);

    // ---- fused kernels: each replaces a chain of the primitives above with one pass (tests compare it with that
    // chain). They take float32 or float64 tensors; the op layer falls back to the chain for anything else.

    /**
     * One Adam step, in place, for every tensor of the lists (index k of each list belongs to parameter k; all
     * contiguous, one dtype, one shape per k), with PyTorch's formulas: g += wd·p (L2) or p *= 1 - lr·wd
     * (decoupled); m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²; p -= lr/(1-b1^step) · m / (sqrt(v)/sqrt(1-b2^step) + eps).
     * Allocates nothing and does not wait. {@code lr} is read when the step is queued; inside a CUDA graph capture the
     * kernel reads it from the graph's live scalar instead, which each replay sets to its value then.
     * <p>{@code skip} (null, or a one-element float64 tensor on the device) is read when the step runs: not zero, the
     * step changes no parameter or moment and adds one to each parameter's {@code skipped} count (one-element float64
     * tensors), so the step number used for parameter k is {@code step - skipped[k]}: the steps it took.
     */
    void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, java.util.function.DoubleSupplier lr, double beta1,
                  double beta2, double eps, double weightDecay, boolean decoupled, long step, Tensor skip, List<Tensor> skipped);

    /**
     * One SGD step, in place, with PyTorch's formulas: g += wd·p; with momentum, buf = first ? g :
     * momentum·buf + (1-dampening)·g and g = nesterov ? g + momentum·buf : buf; p -= lr·g. momentumBufs is null
     * when momentum is 0. Allocates nothing and does not wait. {@code lr} as for {@link #adamStep}; {@code skip} (null
     * or one float64 element, read when the step runs): not zero, nothing changes.
     */
    void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBufs, java.util.function.DoubleSupplier lr, double momentum, double dampening,
                 double weightDecay, boolean nesterov, boolean first, Tensor skip);

    /**
     * Dynamic loss scaling's unscale and overflow check (PyTorch's {@code _amp_foreach_non_finite_check_and_unscale_}),
     * in place: every gradient (contiguous, one float dtype) is multiplied by {@code 1/scale} and {@code foundInf} set to 1
     * where an unscaled element is not finite (left as it was otherwise). scale and foundInf: one-element float64 tensors,
     * read and written on the device, so nothing waits.
     */
    void ampUnscale(List<Tensor> grads, Tensor scale, Tensor foundInf);

    /**
     * Dynamic loss scaling's update (PyTorch's {@code _amp_update_scale_}), one-element float64 tensors in place: after an
     * overflow ({@code foundInf} not zero) scale *= backoffFactor, cleanSteps = 0 and skippedSteps += 1; otherwise
     * cleanSteps += 1 and at growthInterval scale *= growthFactor and cleanSteps = 0. Then foundInf = 0 for the next step.
     */
    void ampUpdateScale(Tensor scale, Tensor cleanSteps, Tensor skippedSteps, Tensor foundInf, double growthFactor, double backoffFactor,
                        int growthInterval);

    /**
     * Inverted dropout in one pass: {@code out[i] = x[i] · (u(key, i) >= p ? 1/(1-p) : 0)}, u the counter-based
     * uniform of {@link dev.kiln.Generator#uniformAt} and i the row-major element index. Its gradient is the same
     * call on the incoming gradient with the same key, so no mask is stored. 0 &le; p &lt; 1.
     */
    Tensor dropout(Tensor x, double p, long key);

    /**
     * Softmax cross-entropy per row of logits (N, C) against int64 class indices (N). Returns {loss (N),
     * logsumexp (N)}; loss[i] = (1-s)·(lse - x[i, t]) + (s/C)·sum_c (lse - x[i, c]), and 0 (with lse 0) where
     * t == ignoreIndex. A target outside [0, C) that is not ignoreIndex is an index error.
     */
    Tensor[] crossEntropyRows(Tensor logits, Tensor target, double labelSmoothing, long ignoreIndex);

    /**
     * The gradient of {@link #crossEntropyRows}' loss with respect to the logits, from the logsumexp it returned:
     * {@code (softmax(x[i]) - (1-s)·onehot(t) - s/C) · gradRows[i]}, 0 for ignored rows. gradRows is (N) and may be
     * a stride-0 view (a broadcast scalar).
     */
    Tensor crossEntropyRowsBackward(Tensor logits, Tensor target, Tensor logSumExp, Tensor gradRows, double labelSmoothing, long ignoreIndex);

    /**
     * The mean of values (N) over the rows whose target (N, int64) is not ignoreIndex, and how many those are:
     * {mean (scalar), count (scalar)}, both of the values' dtype; 0/0 (NaN) when every row is ignored, as PyTorch.
     * A loss's MEAN reduction in one pass, where the composite takes a compare, a cast and two sums.
     */
    Tensor[] meanOverKept(Tensor values, Tensor target, long ignoreIndex);
}
