package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.Pool2dParams;

/**
 * Batch norm on CUDA (normalization.cu): the statistics in two launches (per-channel partial sums over blocks that
 * split each channel, then one thread per channel), the normalisation with the residual add and ReLU in a third;
 * backward likewise. Activations may be 16-bit (autocast); parameters and statistics are then float32. A channels-last
 * input keeps its layout: the sums take rows of channels (coalesced, {@code _cl} kernels), the elementwise passes see
 * it as (N*H*W, C, 1).
 */
final class NormalizationCuda extends CudaFamily {
    private final Kernels.Table stats, statsCl, statsFinish, evalStats, apply, grad, gradCl, gradFinish, inputGradKernel;
    private final Kernels.Table statsV, gradV, applyV, inputGradV;
    private final Kernels.Table reluMaxPoolV, reluMaxPoolGradV, reluMaxPoolInputGradV, reluMaxPoolInputGradQuadsV;   // batch norm, ReLU and max pool in one
    private final Kernels.Table lnForward, lnForwardTo, lnInputGrad, lnParamGrad, lnParamGradFinish;
    private final Kernels.Table lnInputGradFrom, lnParamGradFrom;   // float32 rows, the 16-bit gradient of layer_norm_fwd_to's output
    private final Kernels.Single lnForwardV, lnInputGradV;          // float32 rows of 128·k (k <= 8) held in registers

    NormalizationCuda(CudaBackend backend) {
        super(backend);
        stats = new Kernels.Table(dev, "normalization.cu", "batch_norm_stats");
        statsCl = new Kernels.Table(dev, "normalization.cu", "batch_norm_stats_cl");
        statsFinish = new Kernels.Table(dev, "normalization.cu", "batch_norm_stats_finish");
        evalStats = new Kernels.Table(dev, "normalization.cu", "batch_norm_eval_stats");
        apply = new Kernels.Table(dev, "normalization.cu", "batch_norm_apply");
        grad = new Kernels.Table(dev, "normalization.cu", "batch_norm_grad");
        gradCl = new Kernels.Table(dev, "normalization.cu", "batch_norm_grad_cl");
        gradFinish = new Kernels.Table(dev, "normalization.cu", "batch_norm_grad_finish");
        inputGradKernel = new Kernels.Table(dev, "normalization.cu", "batch_norm_input_grad");
        statsV = new Kernels.Table(dev, "normalization.cu", "batch_norm_stats_v");
        gradV = new Kernels.Table(dev, "normalization.cu", "batch_norm_grad_v");
        applyV = new Kernels.Table(dev, "normalization.cu", "batch_norm_apply_v");
        inputGradV = new Kernels.Table(dev, "normalization.cu", "batch_norm_input_grad_v");
        reluMaxPoolV = new Kernels.Table(dev, "normalization.cu", "batch_norm_relu_max_pool_v");
        reluMaxPoolGradV = new Kernels.Table(dev, "normalization.cu", "batch_norm_relu_max_pool_grad_v");
        reluMaxPoolInputGradV = new Kernels.Table(dev, "normalization.cu", "batch_norm_relu_max_pool_input_grad_v");
        reluMaxPoolInputGradQuadsV = new Kernels.Table(dev, "normalization.cu", "batch_norm_relu_max_pool_input_grad_quads_v");
        lnForward = new Kernels.Table(dev, "normalization.cu", "layer_norm_fwd");
        lnForwardTo = new Kernels.Table(dev, "normalization.cu", "layer_norm_fwd_to", true);
        lnInputGrad = new Kernels.Table(dev, "normalization.cu", "layer_norm_input_grad");
        lnParamGrad = new Kernels.Table(dev, "normalization.cu", "layer_norm_param_grad");
        lnParamGradFinish = new Kernels.Table(dev, "normalization.cu", "layer_norm_param_grad_finish");
        lnInputGradFrom = new Kernels.Table(dev, "normalization.cu", "layer_norm_input_grad_from", true);
        lnParamGradFrom = new Kernels.Table(dev, "normalization.cu", "layer_norm_param_grad_from", true);
        lnForwardV = new Kernels.Single(dev, "normalization.cu", "layer_norm_fwd_v_f32");
        lnInputGradV = new Kernels.Single(dev, "normalization.cu", "layer_norm_input_grad_v_f32");
    }

    /** Blocks per channel for the per-channel sums: enough blocks to fill the GPU, each at least 4,096 elements. */
    private int splits(long channels, long m) {
        long wanted = Math.max(1, dev.multiprocessorCount() * 4L / Math.max(channels, 1));
        return (int) Math.max(1, Math.min(Math.min(wanted, (m + 4095) / 4096), 65535));
    }

    private long ptrOrNull(Tensor t) { return t == null ? 0 : ptr(t); }

    /**
     * The per-channel sums' blocks for channels-last: 32 channels by row splits, about eight blocks per multiprocessor,
     * each at least 256 rows.
     */
    private int splitsCl(long channels, long m) {
        long tiles = (channels + 31) / 32;
        long wanted = Math.max(1, dev.multiprocessorCount() * 8L / tiles);
        return (int) Math.max(1, Math.min(Math.min(wanted, (m + 255) / 256), 65535));
    }

    /**
     * The 16-byte channels-last kernels' tiling (the {@code _v} kernels of normalization.cu), or null where they do not
     * apply: channels-last, c a multiple of the 16 / element-size channels a thread moves, every pointer 16-byte aligned.
     */
    private record VecTiles(int perThread, int tpr, int rows, int channelBlocks) {}

    private VecTiles vecTiles(boolean cl, long c, DType t, Tensor... operands) {
        int v = 16 / t.byteSize();
        if (!cl || c % v != 0) return null;
        for (Tensor o : operands) if (o != null && ptr(o) % 16 != 0) return null;
        long vectors = c / v;
        int tpr = (int) Math.min(vectors, 32);
        return new VecTiles(v, tpr, BLOCK / tpr, (int) ((vectors + tpr - 1) / tpr));
    }

    /** Row splits of the _v sums: about eight blocks per multiprocessor, each thread at least eight rows. */
    private int splitsV(VecTiles vt, long m) {
        long wanted = Math.max(1, dev.multiprocessorCount() * 8L / vt.channelBlocks());
        return (int) Math.max(1, Math.min(Math.min(wanted, (m + vt.rows() * 8L - 1) / (vt.rows() * 8L)), 65535));
    }

    /** Row blocks of the _v elementwise passes: about sixteen blocks per multiprocessor in all. */
    private int rowBlocksV(VecTiles vt, long m) {
        long wanted = Math.max(1, dev.multiprocessorCount() * 16L / vt.channelBlocks());
        return (int) Math.max(1, Math.min(Math.min(wanted, (m + vt.rows() - 1) / vt.rows()), 65535));
    }

    /** A tensor laid out as x: channels-last when x prefers it (the kernels then see (N*H*W, C, 1)), else contiguous. */
    private Tensor like(Tensor x, Tensor t, DType dtype) { return x.prefersChannelsLast() ? channelsLast(t, dtype) : contiguous(t, dtype); }

    /** Elements per thread of the elementwise passes: 4 when every group of 4 lies in one channel or covers 4 channels. */
    private static int vec(long total, long c, long s) { return total % 4 == 0 && (s == 1 ? c % 4 == 0 : s % 4 == 0) ? 4 : 1; }

    private Tensor newLike(Tensor x, int[] shape, DType dtype) { return x.prefersChannelsLast() ? newChannelsLast(shape, dtype) : newTensor(shape, dtype); }

    /** batchesTracked (an int64 scalar, or null) is counted by the training statistics' finish kernel. */
    Tensor[] batchNorm(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked,
                       Tensor residual, boolean training, double momentum, double eps, boolean relu) {
        requireAnyFloat("batch_norm", x.dtype());
        boolean cl = x.prefersChannelsLast();
        Tensor xc = like(x, x, x.dtype()), rc = residual == null ? null : like(x, residual, x.dtype());
        int[] s = x.shape();
        long n = s[0], c = s[1], spatial = x.numel() / Math.max(1, n * c), total = x.numel(), m = n * spatial;
        Tensor y = newLike(x, s, x.dtype());
        VecTiles vt = vecTiles(cl, c, x.dtype(), xc, rc, y);
        Tensor[] stats = statistics(xc, vt, runningMean, runningVar, batchesTracked, training, momentum, eps);
        Tensor mean = stats[0], invstd = stats[1];
        if (total > 0 && vt != null) {
            Launch.args().ptr(ptr(y)).ptr(ptr(xc)).ptr(ptr(mean)).ptr(ptr(invstd)).ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias)).ptr(ptrOrNull(rc))
                    .i64(m).i64(c).i32(relu ? 1 : 0).i32(vt.tpr()).go(dev, applyV.get(x.dtype()), vt.channelBlocks(), rowBlocksV(vt, m), 1, BLOCK, 0);
        } else if (total > 0) {
            int vec = vec(total, c, cl ? 1 : spatial);
            Launch.args().ptr(ptr(y)).ptr(ptr(xc)).ptr(ptr(mean)).ptr(ptr(invstd)).ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias)).ptr(ptrOrNull(rc))
                    .i64(total).i64(c).i64(cl ? 1 : spatial).i32(relu ? 1 : 0).i32(vec).go(dev, apply.get(x.dtype()), grid(total / vec), BLOCK);
        }
        drop(xc, x);
        if (rc != null) drop(rc, residual);
        return new Tensor[]{y, mean, invstd};
    }

    /**
     * {mean, invstd} of xc (x as the kernels read it; vt its 16-byte tiling or null): the batch's in training (moving
     * the running statistics and counting batchesTracked in the finish kernel), else from the running ones.
     */
    private Tensor[] statistics(Tensor xc, VecTiles vt, Tensor runningMean, Tensor runningVar, Tensor batchesTracked, boolean training,
                                double momentum, double eps) {
        DType pt = xc.dtype().accumulation();
        boolean cl = xc.prefersChannelsLast();
        int[] s = xc.shape();
        long n = s[0], c = s[1], spatial = xc.numel() / Math.max(1, n * c), m = n * spatial;
        Tensor mean = newTensor(new int[]{(int) c}, pt), invstd = newTensor(new int[]{(int) c}, pt);
        if (training) {
            int splits = vt != null ? splitsV(vt, m) : cl ? splitsCl(c, m) : splits(c, m);
            long chunk = (m + splits - 1) / splits;
            CudaAllocator.Block partial = dev.allocator().allocate(c * splits * 16);
            if (vt != null) {
                Launch.args().ptr(partial.address()).ptr(ptr(xc)).i64(m).i64(c).i64(chunk).i32(vt.tpr())
                        .go(dev, statsV.get(xc.dtype()), vt.channelBlocks(), splits, 1, BLOCK, 2 * vt.perThread() * BLOCK * 8);
            } else if (cl) {
                Launch.args().ptr(partial.address()).ptr(ptr(xc)).i64(m).i64(c).i64(chunk)
                        .go(dev, statsCl.get(xc.dtype()), (int) ((c + 31) / 32), splits, 1, BLOCK, 0);
            } else {
                Launch.args().ptr(partial.address()).ptr(ptr(xc)).i64(n).i64(c).i64(spatial).i64(chunk)
                        .go(dev, stats.get(xc.dtype()), (int) c, splits, 1, BLOCK, 0);
            }
            // a warp per channel; the layer's batch count goes up in the same launch
            Launch.args().ptr(ptr(mean)).ptr(ptr(invstd)).ptr(ptrOrNull(runningMean)).ptr(ptrOrNull(runningVar)).ptr(partial.address())
                    .i64(c).i32(splits).i64(m).f64(momentum).f64(eps).ptr(ptrOrNull(batchesTracked))
                    .go(dev, statsFinish.get(xc.dtype()), grid(c * 32), BLOCK);
            dev.allocator().free(partial);
        } else {
            Launch.args().ptr(ptr(mean)).ptr(ptr(invstd)).ptr(ptr(runningMean)).ptr(ptr(runningVar)).i64(c).f64(eps)
                    .go(dev, evalStats.get(xc.dtype()), grid(c), BLOCK);
        }
        return new Tensor[]{mean, invstd};
    }

    /**
     * maxPool(relu(batchNorm(x))) on channels-last x where the 16-byte kernels apply: the statistics, then one pass that
     * normalises, applies the ReLU and pools (batch_norm_relu_max_pool_v), keeping max_pool_fwd_v's byte indices.
     * Returns {pooled, mean, invstd, indices, null}, or null where the kernels do not apply.
     */
    Tensor[] batchNormReluMaxPool(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, Tensor batchesTracked,
                                  boolean training, double momentum, double eps, Pool2dParams pool) {
        if (!x.prefersChannelsLast() || pool.kernelH() * pool.kernelW() >= 255) return null;
        int[] pp = PoolingCuda.poolP(x.shape(), pool, true);
        int[] os = {x.shape()[0], x.shape()[1], pp[2], pp[3]};
        Tensor out = newChannelsLast(os, x.dtype()), idx = newChannelsLast(os.clone(), DType.UINT8);
        VecTiles vt = vecTiles(true, x.shape()[1], x.dtype(), x, out);
        if (vt == null) {
            out.storage().release();
            idx.storage().release();
            return null;
        }
        Tensor[] stats = statistics(x, vt, runningMean, runningVar, batchesTracked, training, momentum, eps);
        long total = out.numel() / vt.perThread();   // V channels of one output pixel per thread
        if (total > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(idx)).ptr(ptr(x)).ptr(ptr(stats[0])).ptr(ptr(stats[1])).ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias))
                    .i64(total).ints(pp).go(dev, reluMaxPoolV.get(x.dtype()), grid(total), BLOCK);
        }
        return new Tensor[]{out, stats[0], stats[1], idx, null};
    }

    /**
     * Where the 16-byte kernels run and no residual was added, the ReLU's mask is recomputed from x and the parameters
     * as the forward's bn_apply_v made y (bit for bit, see bn_affine) rather than read from y: a pass over the
     * activations less in each of the two kernels.
     */
    Tensor[] batchNormBackward(Tensor g, Tensor y, Tensor x, Tensor weight, Tensor bias, Tensor mean, Tensor invstd, boolean training,
                               boolean relu, boolean residual, boolean inputGrad, Tensor dweight, Tensor dbias) {
        DType t = x.dtype(), pt = t.accumulation();
        boolean cl = x.prefersChannelsLast();
        Tensor gc = like(x, g, t), xc = like(x, x, t);
        int[] s = x.shape();
        long n = s[0], c = s[1], spatial = x.numel() / Math.max(1, n * c), total = x.numel(), m = n * spatial;
        boolean wantParams = dweight != null && weight != null;
        Tensor dw = wantParams ? dweight : null, db = wantParams ? dbias : null;
        if (wantParams && (!dw.isContiguous() || !db.isContiguous() || dw.dtype() != pt || db.dtype() != pt)) {
            throw new IllegalArgumentException("batchNormBackward: contiguous " + pt + " parameter gradients expected");
        }
        Tensor dx = inputGrad ? newLike(x, s, t) : null, dres = residual ? newLike(x, s, t) : null;
        boolean needSums = wantParams || (inputGrad && training);
        // per channel two coefficients of the training input gradient (see batch_norm_grad_finish)
        CudaAllocator.Block coef = needSums ? dev.allocator().allocate(Math.max(c, 1) * 2L * pt.byteSize()) : null;
        VecTiles vt = vecTiles(cl, c, t, gc, xc, dx, dres);
        boolean recompute = relu && !residual && vt != null;
        if (relu && !recompute && y == null) throw new IllegalArgumentException("batchNormBackward: the ReLU's mask needs the forward's output here");
        Tensor yc = relu && !recompute ? like(x, y, t) : null;
        if (vt != null && yc != null && ptr(yc) % 16 != 0) vt = null;
        if (needSums) {
            int splits = vt != null ? splitsV(vt, m) : cl ? splitsCl(c, m) : splits(c, m);
            long chunk = (m + splits - 1) / splits;
            CudaAllocator.Block partial = dev.allocator().allocate(c * splits * 16);
            if (vt != null) {
                Launch.args().ptr(partial.address()).ptr(ptr(gc)).ptr(yc == null ? 0 : ptr(yc)).ptr(ptr(xc)).ptr(ptr(mean)).ptr(ptr(invstd))
                        .ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias)).i64(m).i64(c).i64(chunk).i32(relu ? 1 : 0).i32(vt.tpr())
                        .go(dev, gradV.get(t), vt.channelBlocks(), splits, 1, BLOCK, 2 * vt.perThread() * BLOCK * 8);
            } else if (cl) {
                Launch.args().ptr(partial.address()).ptr(ptr(gc)).ptr(yc == null ? 0 : ptr(yc)).ptr(ptr(xc)).ptr(ptr(mean)).ptr(ptr(invstd))
                        .i64(m).i64(c).i64(chunk).i32(relu ? 1 : 0).go(dev, gradCl.get(t), (int) ((c + 31) / 32), splits, 1, BLOCK, 0);
            } else {
                Launch.args().ptr(partial.address()).ptr(ptr(gc)).ptr(yc == null ? 0 : ptr(yc)).ptr(ptr(xc)).ptr(ptr(mean)).ptr(ptr(invstd))
                        .i64(n).i64(c).i64(spatial).i64(chunk).i32(relu ? 1 : 0).go(dev, grad.get(t), (int) c, splits, 1, BLOCK, 0);
            }
            finishGrad(coef, dw, db, partial, weight, invstd, c, splits, m, t);
        }
        if ((dx != null || dres != null) && total > 0 && vt != null) {
            Launch.args().ptr(ptrOrNull(dx)).ptr(ptrOrNull(dres)).ptr(ptr(gc)).ptr(yc == null ? 0 : ptr(yc)).ptr(ptr(xc)).ptr(ptr(mean))
                    .ptr(ptr(invstd)).ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias)).ptr(coef == null ? 0 : coef.address()).i64(m).i64(c)
                    .i32(relu ? 1 : 0).i32(training ? 1 : 0).i32(vt.tpr()).go(dev, inputGradV.get(t), vt.channelBlocks(), rowBlocksV(vt, m), 1, BLOCK, 0);
        } else if ((dx != null || dres != null) && total > 0) {
            int vec = vec(total, c, cl ? 1 : spatial);
            Launch.args().ptr(ptrOrNull(dx)).ptr(ptrOrNull(dres)).ptr(ptr(gc)).ptr(yc == null ? 0 : ptr(yc)).ptr(ptr(xc)).ptr(ptr(mean))
                    .ptr(ptr(invstd)).ptr(ptrOrNull(weight)).ptr(coef == null ? 0 : coef.address()).i64(total).i64(c).i64(cl ? 1 : spatial)
                    .i32(relu ? 1 : 0).i32(training ? 1 : 0).i32(vec).go(dev, inputGradKernel.get(t), grid(total / vec), BLOCK);
        }
        if (coef != null) dev.allocator().free(coef);
        drop(gc, g);
        drop(xc, x);
        if (yc != null) drop(yc, y);
        return new Tensor[]{dx, dw, db, dres};
    }

    /**
     * The gradients of {@link #batchNormReluMaxPool} from g, the pooled output's: batch_norm_relu_max_pool_grad_v's sums
     * over the pooled pixels (each adds its gradient where its index points), then batch_norm_relu_max_pool_input_grad_v's
     * dx, gathering each input pixel's gradient from g through the byte indices: no input-sized gradient but dx.
     */
    Tensor[] batchNormReluMaxPoolBackward(Tensor g, Tensor indices, Tensor x, Tensor weight, Tensor bias, Tensor mean, Tensor invstd,
                                          boolean training, Pool2dParams pool, boolean inputGrad, Tensor dweight, Tensor dbias) {
        DType t = x.dtype(), pt = t.accumulation();
        Tensor gc = alignedChannelsLast(g, t);
        int[] s = x.shape(), pp = PoolingCuda.poolP(s, pool, true);
        long c = s[1], m = (long) s[0] * s[2] * s[3];
        boolean wantParams = dweight != null && weight != null;
        if (wantParams && (!dweight.isContiguous() || !dbias.isContiguous() || dweight.dtype() != pt || dbias.dtype() != pt)) {
            throw new IllegalArgumentException("batchNormReluMaxPoolBackward: contiguous " + pt + " parameter gradients expected");
        }
        Tensor dx = inputGrad ? newChannelsLast(s.clone(), t) : null;
        VecTiles vt = vecTiles(true, c, t, gc, x, dx);
        if (vt == null) {   // the fused forward ran on this x, so its kernels' conditions held there
            throw new IllegalStateException("batchNormReluMaxPoolBackward: x " + Shape.str(s) + " " + t + " is out of the fused kernels' reach");
        }
        CudaAllocator.Block coef = null;
        if (wantParams || (inputGrad && training)) {
            coef = dev.allocator().allocate(c * 2L * pt.byteSize());
            long pooled = (long) s[0] * pp[2] * pp[3];   // the sums' rows: the pooled pixels
            int splits = splitsV(vt, pooled);
            long chunk = (pooled + splits - 1) / splits;
            CudaAllocator.Block partial = dev.allocator().allocate(c * splits * 16);
            Launch.args().ptr(partial.address()).ptr(ptr(gc)).ptr(ptr(indices)).ptr(ptr(x)).ptr(ptr(mean)).ptr(ptr(invstd))
                    .ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias)).i64(pooled).i64(c).i64(chunk).i32(vt.tpr()).ints(pp)
                    .go(dev, reluMaxPoolGradV.get(t), vt.channelBlocks(), splits, 1, BLOCK, 2 * vt.perThread() * BLOCK * 8);
            finishGrad(coef, wantParams ? dweight : null, wantParams ? dbias : null, partial, weight, invstd, c, splits, m, t);
        }
        if (dx != null && m > 0) {
            // ResNet's stem pool: by 2x2 quads of input pixels, the four windows over a quad read once
            boolean quads = pool.kernelH() == 3 && pool.kernelW() == 3 && pool.strideH() == 2 && pool.strideW() == 2 && pool.padH() == 1
                    && pool.padW() == 1;
            long rows = quads ? (long) s[0] * ((s[2] + 1) / 2) * ((s[3] + 1) / 2) : m;
            Launch.args().ptr(ptr(dx)).ptr(ptr(gc)).ptr(ptr(indices)).ptr(ptr(x)).ptr(ptr(mean)).ptr(ptr(invstd)).ptr(ptrOrNull(weight))
                    .ptr(ptrOrNull(bias)).ptr(coef == null ? 0 : coef.address()).i64(rows).i64(c).i32(training ? 1 : 0).i32(vt.tpr()).ints(pp)
                    .go(dev, (quads ? reluMaxPoolInputGradQuadsV : reluMaxPoolInputGradV).get(t), vt.channelBlocks(), rowBlocksV(vt, rows), 1,
                            BLOCK, 0);
        }
        if (coef != null) dev.allocator().free(coef);
        drop(gc, g);
        return new Tensor[]{dx, wantParams ? dweight : null, wantParams ? dbias : null};
    }

    /** batch_norm_grad_finish over the sums' partials (a warp per channel), which it frees. */
    private void finishGrad(CudaAllocator.Block coef, Tensor dw, Tensor db, CudaAllocator.Block partial, Tensor weight, Tensor invstd, long c,
                            int splits, long m, DType t) {
        Launch.args().ptr(coef.address()).ptr(ptrOrNull(dw)).ptr(ptrOrNull(db)).ptr(partial.address()).ptr(ptrOrNull(weight)).ptr(ptr(invstd))
                .i64(c).i32(splits).i64(m).go(dev, gradFinish.get(t), grid(c * 32), BLOCK);   // a warp per channel
        dev.allocator().free(partial);
    }

    // ---- layer norm: a warp per row (128-thread blocks; float32 rows of 128·k in registers); parameter gradients as column
    // sums over row splits

    private int warpGrid(long rows) { return (int) Math.max(1, Math.min((rows + 3) / 4, dev.multiprocessorCount() * 32L)); }

    /** Whether float32 rows of n go to the _v kernels: n a multiple of 128 up to 1,024, every row and vector 16-byte aligned. */
    private static boolean vectorRows(DType t, int n, long... pointers) {
        if (t != DType.FLOAT32 || n % 128 != 0 || n > 1024) return false;
        for (long p : pointers) if (p % 16 != 0) return false;
        return true;
    }

    Tensor[] layerNorm(Tensor x, Tensor weight, Tensor bias, int n, double eps, DType out) {
        requireAnyFloat("layer_norm", x.dtype());
        boolean narrowing = out != x.dtype();
        if (narrowing && !(x.dtype() == DType.FLOAT32 && (out == DType.BFLOAT16 || out == DType.FLOAT16))) {
            throw new IllegalArgumentException("layer_norm: output in " + out + " from " + x.dtype() + " input (float32 into 16 bits only)");
        }
        DType pt = x.dtype().accumulation();
        Tensor xc = contiguous(x);
        long rows = x.numel() / n;
        Tensor y = newTensor(x.shape(), out), mean = newTensor(new int[]{(int) rows}, pt), invstd = newTensor(new int[]{(int) rows}, pt);
        if (rows > 0) {
            boolean v = !narrowing && vectorRows(x.dtype(), n, ptr(y), ptr(xc), ptrOrNull(weight), ptrOrNull(bias));
            Launch.args().ptr(ptr(y)).ptr(ptr(mean)).ptr(ptr(invstd)).ptr(ptr(xc)).ptr(ptrOrNull(weight)).ptr(ptrOrNull(bias)).i64(rows).i32(n).f64(eps)
                    .go(dev, v ? lnForwardV.get() : narrowing ? lnForwardTo.get(out, x.dtype()) : lnForward.get(x.dtype()), warpGrid(rows), 128);
        }
        drop(xc, x);
        return new Tensor[]{y, mean, invstd};
    }

    Tensor layerNormBackward(Tensor g, Tensor x, Tensor weight, Tensor mean, Tensor invstd, int n, boolean inputGrad, Tensor addend,
                             Tensor dweight, Tensor dbias) {
        DType t = x.dtype(), pt = t.accumulation();
        // the 16-bit gradient of float32 rows normalised into 16 bits is read as it is (no cast pass first)
        boolean from16 = t == DType.FLOAT32 && (g.dtype() == DType.BFLOAT16 || g.dtype() == DType.FLOAT16);
        Tensor gc = from16 ? contiguous(g) : contiguous(g, t), xc = contiguous(x);
        long rows = x.numel() / n;
        Tensor dx = inputGrad ? newTensor(x.shape(), t) : null;
        Tensor dw = weight != null ? dweight : null, db = dbias;
        if (db != null && (!db.isContiguous() || db.dtype() != pt || dw != null && (!dw.isContiguous() || dw.dtype() != pt))) {
            throw new IllegalArgumentException("layerNormBackward: contiguous " + pt + " parameter gradients expected");
        }
        if (dx != null && rows > 0) {
            Tensor ac = addend == null ? null : contiguous(addend, t);
            boolean v = !from16 && vectorRows(t, n, ptr(dx), ptr(gc), ptr(xc), ptrOrNull(weight), ptrOrNull(ac));
            Launch.args().ptr(ptr(dx)).ptr(ptr(gc)).ptr(ptr(xc)).ptr(ptrOrNull(weight)).ptr(ptr(mean)).ptr(ptr(invstd)).i64(rows).i32(n)
                    .ptr(ptrOrNull(ac)).go(dev, v ? lnInputGradV.get() : from16 ? lnInputGradFrom.get(g.dtype(), t) : lnInputGrad.get(t),
                            warpGrid(rows), 128);
            if (ac != null) drop(ac, addend);
        }
        if (db != null) {
            int colBlocks = (n + 127) / 128;
            int splits = (int) Math.max(1, Math.min(Math.min(rows / 16, 1024), dev.multiprocessorCount() * 8L / colBlocks));
            long chunk = (rows + splits - 1) / splits;
            CudaAllocator.Block partial = dev.allocator().allocate((long) splits * n * 2 * pt.byteSize());
            Launch.args().ptr(partial.address()).ptr(ptr(gc)).ptr(ptr(xc)).ptr(ptr(mean)).ptr(ptr(invstd)).i64(rows).i32(n).i64(chunk)
                    .go(dev, from16 ? lnParamGradFrom.get(g.dtype(), t) : lnParamGrad.get(t), colBlocks, splits, 1, 128, 0);
            Launch.args().ptr(ptrOrNull(dw)).ptr(ptr(db)).ptr(partial.address()).i32(n).i32(splits).go(dev, lnParamGradFinish.get(t), warpGrid(n), 128);
            dev.allocator().free(partial);
        }
        drop(gc, g);
        drop(xc, x);
        return dx;
    }
}
