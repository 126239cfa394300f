package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Settings;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.ReduceOp;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/** Convolutions on CUDA (convolution.cu): cuDNN where it is present ({@link Dnn}), else im2col + GEMM; direct kernels for
 * an image model's first layer ({@link SmallConv}, {@link StemConv}); the bias + ReLU epilogue and its backward in one
 * pass each. */
final class ConvolutionCuda extends CudaFamily {
    private final MatmulCuda matmul;
    private final ReductionsCuda reductions;
    private final Kernels.Table im2col, col2im, biasRelu, biasReluV4, biasReluClV4, biasReluBwd, biasReluBwdV4, biasReluBwdCl, biasGradFinish;

    ConvolutionCuda(CudaBackend backend, MatmulCuda matmul, ReductionsCuda reductions) {
        super(backend);
        this.matmul = matmul;
        this.reductions = reductions;
        im2col = new Kernels.Table(dev, "convolution.cu", "im2col");
        col2im = new Kernels.Table(dev, "convolution.cu", "col2im");
        biasRelu = new Kernels.Table(dev, "convolution.cu", "bias_relu");
        biasReluV4 = new Kernels.Table(dev, "convolution.cu", "bias_relu_v4");
        biasReluClV4 = new Kernels.Table(dev, "convolution.cu", "bias_relu_cl_v4");
        biasReluBwd = new Kernels.Table(dev, "convolution.cu", "bias_relu_bwd");
        biasReluBwdV4 = new Kernels.Table(dev, "convolution.cu", "bias_relu_bwd_v4");
        biasReluBwdCl = new Kernels.Table(dev, "convolution.cu", "bias_relu_bwd_cl");
        biasGradFinish = new Kernels.Table(dev, "convolution.cu", "bias_grad_finish");
        tapPick = TimedPick.on(dev, "conv_tap_wgrad", "cudnn", () -> KernelCache.sourceHash("convolution.cu") + "-" + Cudnn.version());
    }

    private int[] convP(int[] xShape, int kh, int kw, Conv2dParams p) {
        int h = xShape[2], w = xShape[3];
        return new int[]{xShape[1], h, w, kh, kw, p.strideH(), p.strideW(), p.padH(), p.padW(), p.dilationH(), p.dilationW(),
                p.outH(h, kh), p.outW(w, kw)};
    }

    private Tensor im2col(Tensor xc, int[] cp) {
        int n = xc.shape()[0];
        long rows = (long) cp[0] * cp[3] * cp[4], q = (long) cp[11] * cp[12];
        Tensor cols = newTensor(new int[]{n, (int) rows, (int) q}, xc.dtype());
        long total = n * rows * q;
        if (total > 0) Launch.args().ptr(ptr(cols)).ptr(ptr(xc)).i64(total).ints(cp).go(dev, im2col.get(xc.dtype()), grid(total), BLOCK);
        return cols;
    }

    Tensor conv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu) {
        Tensor y;
        StemConv stem = stemConv(x, w.shape(), p, true);
        SmallConv small = stem != null ? null : smallConv(x.shape(), w.shape(), p, x.dtype());
        if (stem != null || small != null) {   // their kernels add the bias and apply the ReLU; a residual comes after
            y = stem != null ? stem.forward(x, w, bias, relu && residual == null) : small.forward(x, w, bias, relu && residual == null);
            if (residual != null) biasReluInPlace(y, null, residual, relu);
            return y;
        }
        if (bias != null || residual != null || relu) {
            y = pointwiseConv2d(x, w, bias, residual, p, relu);
            if (y != null) return y;
        }
        y = Dnn.available(x.dtype()) ? dnnConv2d(x, w, p) : im2colConv2d(x, w, p);
        if (bias != null || residual != null || relu) biasReluInPlace(y, bias, residual, relu);
        return y;
    }

    /**
     * A 1x1 convolution of stride 1 without padding over channels-last activations is one product, y (N·H·W, K) = x
     * (N·H·W, C) · wᵀ, and cuBLASLt adds the bias, the residual (its C operand) and the ReLU in its epilogue, with no
     * pass of their own over y (ResNet-50's bottlenecks are two thirds such convolutions; its ReLU keeps NaN, as Kiln's
     * does: ReluNaNGpuTest). Null where that does not apply or cuBLASLt has no algorithm for it; the caller then takes
     * cuDNN and the epilogue kernel.
     */
    private Tensor pointwiseConv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu) {
        int[] xs = x.shape(), ws = w.shape();
        DType t = x.dtype();
        if (ws[2] != 1 || ws[3] != 1 || p.groups() != 1 || p.strideH() != 1 || p.strideW() != 1 || p.padH() != 0 || p.padW() != 0
                || !channelsLastConv(x) || !x.isChannelsLast()) return null;
        long rows = (long) xs[0] * xs[2] * xs[3];
        if (rows == 0 || xs[1] == 0) return null;
        Tensor wc = krsc(w), bc = bias == null ? null : contiguous(bias), z = residual == null ? null : channelsLast(residual, t);
        Tensor y = newChannelsLast(new int[]{xs[0], ws[0], xs[2], xs[3]}, t);
        CublasLt.Epilogue e = bc != null ? (relu ? CublasLt.Epilogue.RELU_BIAS : CublasLt.Epilogue.BIAS)
                : relu ? CublasLt.Epilogue.RELU : CublasLt.Epilogue.DEFAULT;
        // column-major: yᵀ (K x rows) = wᵀ-read (K x C) · xᵀ (C x rows), x's and w's rows C apart
        boolean done = Blas.tryLtTo(dev, dev.allowTf32Conv(), t, t, e, true, false, ws[0], rows, xs[1], ptr(wc), xs[1], ptr(x), xs[1],
                z == null ? 0 : ptr(z), ptr(y), ws[0], bc == null ? 0 : ptr(bc));
        drop(wc, w);
        if (bc != null) drop(bc, bias);
        if (z != null) drop(z, residual);
        if (!done) {
            y.storage().release();
            return null;
        }
        return y;
    }

    Tensor[] conv2dBackwardWeightAndBias(Tensor g, Tensor y, Tensor x, int[] weightShape, Conv2dParams p,
                                                          boolean relu, boolean biasGrad) {
        StemConv stem = stemConv(x, weightShape, p, false);
        if (stem != null) {
            Tensor[] pre = relu || biasGrad ? biasReluBackward(g, y, relu, biasGrad) : new Tensor[]{g, null};
            return new Tensor[]{stem.weightGrad(pre[0], x, weightShape), pre[1]};
        }
        SmallConv small = smallConv(x.shape(), weightShape, p, x.dtype());
        // one input channel only: with three, each thread's window is reloaded for every block of output channels
        // and the kernel measured slower than cuDNN's (H200: 0.32 vs ~0.2 ms for CIFAR's first layer at batch 1024);
        // conv2dBackwardWeight's tensor-core kernel takes three channels where TF32 is allowed
        if (small != null && (small.c == 1 || smallConvWeightGradAll)) return small.weightAndBiasGrad(g, y, x, relu, biasGrad);
        // as Backend's default: the primitives
        Tensor[] pre = relu || biasGrad ? biasReluBackward(g, y, relu, biasGrad) : new Tensor[]{g, null};
        return new Tensor[]{conv2dBackwardWeight(pre[0], x, weightShape, p), pre[1]};
    }

    /** Whether the direct kernels for few input channels are on (KILN_SMALL_CONV=0 sends every conv to cuDNN). */
    private static volatile boolean smallConvEnabled = Settings.get().smallConv() != Settings.SmallConv.OFF;

    static void setSmallConvEnabled(boolean on) { smallConvEnabled = on; }

    /** KILN_SMALL_CONV=all: the direct weight gradient for three input channels too (measured slower at batch 1024). */
    private static final boolean smallConvWeightGradAll = Settings.get().smallConv() == Settings.SmallConv.ALL;

    /**
     * A convolution the direct kernels of convolution.cu take (conv_small_*): 1 or 3 input channels, a 3x3 or 5x5 kernel,
     * stride 1, no dilation or groups, equal padding on both axes: an image model's first layer, where cuDNN's
     * general algorithms spend most of their time reshaping. One thread per output pixel, every output channel.
     */
    private final class SmallConv {
        final int n, c, h, w, o, k, pad, oh, ow, ob;
        final DType t;

        private SmallConv(int[] xs, int[] ws, Conv2dParams p, DType t) {
            this.n = xs[0];
            this.c = xs[1];
            this.h = xs[2];
            this.w = xs[3];
            this.o = ws[0];
            this.k = ws[2];
            this.pad = p.padH();
            this.oh = p.outH(h, k);
            this.ow = p.outW(w, k);
            this.t = t;
            int v = c * k * k + 1;
            this.ob = v <= 12 ? 4 : v <= 28 ? 2 : 1; // as SMALL_CONV_ALL in convolution.cu
        }

        private String variant() { return "c" + c + "k" + k; }

        private long sharedBytes() { return (long) o * (c * k * k + 1) * accBytes(); }

        private int accBytes() { return t == DType.FLOAT64 ? 8 : 4; }

        /** cl: the activations channels-last (the kernels read and write them so; the filter is contiguous either way). */
        private Launch geometry(Launch l, boolean cl) { return l.ints(n, h, w, oh, ow, o, pad, cl ? 1 : 0); }

        /** A pixel's channels spread over threads (the _lanes kernels of convolution.cu): channels-last, o a power of two, 4 to 256. */
        private boolean lanes(boolean cl) { return cl && o >= 4 && o <= BLOCK && Integer.bitCount(o) == 1; }

        private Kernels.Fn kernel(String kind, boolean cl) { return smallConvKernel("conv_small_" + kind + (lanes(cl) ? "_lanes_" : "_") + variant(), t); }

        /** The output channels-last when the input is (so are the layers after it), else contiguous. */
        Tensor forward(Tensor x, Tensor wt, Tensor bias, boolean relu) {
            boolean cl = x.prefersChannelsLast();
            Tensor xc = cl ? x : contiguous(x), wc = contiguous(wt), bc = bias == null ? null : contiguous(bias);
            Tensor y = cl ? newChannelsLast(new int[]{n, o, oh, ow}, t) : newTensor(new int[]{n, o, oh, ow}, t);
            long pixels = (long) n * oh * ow;
            if (pixels > 0) {
                geometry(Launch.args().ptr(ptr(y)).ptr(ptr(xc)).ptr(ptr(wc)).ptr(bc == null ? 0 : ptr(bc)), cl).i32(relu ? 1 : 0)
                        .go(dev, kernel("fwd", cl), grid(lanes(cl) ? pixels * (o / 4) : pixels), 1, 1, BLOCK, (int) sharedBytes());
            }
            drop(xc, x);
            drop(wc, wt);
            if (bc != null) drop(bc, bias);
            return y;
        }

        Tensor[] weightAndBiasGrad(Tensor g, Tensor y, Tensor x, boolean relu, boolean biasGrad) {
            boolean cl = x.prefersChannelsLast() || g.prefersChannelsLast() && x.isChannelsLast();
            Tensor gc = cl ? channelsLast(g) : contiguous(g), xc = cl ? x : contiguous(x);
            Tensor yc = !relu ? null : cl ? channelsLast(y, g.dtype()) : contiguous(y, g.dtype());
            int ckk = c * k * k, groups = lanes(cl) ? 1 : o / ob;
            long pixels = (long) n * oh * ow, perBlock = lanes(cl) ? BLOCK / (o / ob) : BLOCK;
            // every block sums its share of the pixels. A thread per pixel: about sixteen blocks per multiprocessor in
            // all (each thread's sums are many registers, so few threads fit at once; more blocks keep more loads in
            // flight); lanes: about one wave (sm_90, one input channel: three blocks fit)
            long wave = (lanes(cl) ? 4L : 16L) * dev.multiprocessorCount();
            int blocks = (int) Math.max(1, Math.min((pixels + perBlock - 1) / perBlock, (wave + groups - 1) / groups));
            Tensor partial = newTensor(new int[]{o * (ckk + 1) * blocks}, t.accumulation());
            Tensor dw = newTensor(new int[]{o, c, k, k}, t), db = biasGrad ? newTensor(new int[]{o}, t) : null;
            geometry(Launch.args().ptr(ptr(partial)).ptr(ptr(gc)).ptr(relu ? ptr(yc) : ptr(gc)).ptr(ptr(xc)), cl).i32(relu ? 1 : 0)
                    .go(dev, kernel("wgrad", cl), blocks, groups, 1, BLOCK, 0);
            Launch.args().ptr(ptr(dw)).ptr(db == null ? 0 : ptr(db)).ptr(ptr(partial)).i32(o).i32(ckk).i32(blocks)
                    .go(dev, smallConvKernel("conv_small_wgrad_finish", t), grid(32L * o * (ckk + 1)), BLOCK);   // a warp a sum
            partial.storage().release();
            drop(gc, g);
            if (yc != null) drop(yc, y);
            drop(xc, x);
            return new Tensor[]{dw, db};
        }
    }

    /** The direct kernels' view of this convolution, or null when they do not take it. */
    private SmallConv smallConv(int[] xs, int[] ws, Conv2dParams p, DType t) {
        if (!smallConvEnabled || !t.isFloating()) return null;
        int c = xs[1], k = ws[2];
        if ((c != 1 && c != 3) || (k != 3 && k != 5) || ws[3] != k || ws[1] != c) return null;
        if (p.groups() != 1 || p.strideH() != 1 || p.strideW() != 1 || p.dilationH() != 1 || p.dilationW() != 1 || p.padH() != p.padW()) return null;
        SmallConv sc = new SmallConv(xs, ws, p, t);
        if (sc.oh < 1 || sc.ow < 1 || sc.o % sc.ob != 0 || sc.sharedBytes() > 48 * 1024) return null;
        if ((long) sc.n * c * sc.h * sc.w >= Integer.MAX_VALUE || (long) sc.n * sc.o * sc.oh * sc.ow >= Integer.MAX_VALUE) return null;
        return sc;
    }

    private final ConcurrentHashMap<String, Kernels.Table> smallConvTables = new ConcurrentHashMap<>();

    private Kernels.Fn smallConvKernel(String prefix, DType t) {
        return smallConvTables.computeIfAbsent(prefix, k -> new Kernels.Table(dev, "convolution.cu", k)).get(t);
    }

    /**
     * ResNet's first layer (3 input channels, a 7x7 filter, stride up to 2, any padding, output channels a multiple of 64,
     * channels-last activations) on tensor cores: the conv_stem_* kernels of convolution.cu, one implicit GEMM each way
     * where cuDNN's algorithms spend most of the layer reshaping its three channels. float32 where TF32 is allowed (the
     * products cuDNN's would take; 16-bit types stay with cuDNN's faster kernels); an sm_80 or later device.
     * KILN_SMALL_CONV=0 sends it to cuDNN too.
     */
    private final class StemConv {
        static final int TILE_ROWS = 8, TILE_COLS = 16, CHANNELS_PER_BLOCK = 64, THREADS = 128;
        final int n, h, w, k, r, s, oh, ow, ks;
        final Conv2dParams p;
        final DType t;

        private StemConv(int[] xs, int[] ws, Conv2dParams p, DType t) {
            n = xs[0];
            h = xs[2];
            w = xs[3];
            k = ws[0];
            r = ws[2];
            s = ws[3];
            oh = p.outH(h, r);
            ow = p.outW(w, s);
            ks = (3 * r * s + 7) / 8;
            this.p = p;
            this.t = t;
        }

        private String name(String kind) { return "conv_stem_" + kind + "_c3k" + r; }

        /** The weight gradient's shared memory: ks * 8 unused ints, the patch (a multiple of 4 floats), the gradient tile. */
        private long wgradShared() {
            return 4L * (ks * 8 + ((patchFloats() + 3) & ~3) + (long) TILE_ROWS * TILE_COLS * (CHANNELS_PER_BLOCK + 8));
        }

        private int patchFloats() { return ((TILE_ROWS - 1) * p.strideH() + r) * ((TILE_COLS - 1) * p.strideW() + s) * 3 + 1; }

        /** The geometry (StemG) and the input's strides, as both kernels take them. */
        private Launch geometry(Launch l, Tensor x) {
            int[] st = x.strides();
            return l.ints(n, h, w, oh, ow, k, p.strideH(), p.strideW(), p.padH(), p.padW()).i64(st[0]).i64(st[1]).i64(st[2]).i64(st[3]);
        }

        private long tiles() { return (long) n * ((oh + TILE_ROWS - 1) / TILE_ROWS) * ((ow + TILE_COLS - 1) / TILE_COLS); }

        Tensor forward(Tensor x, Tensor wt, Tensor bias, boolean relu) {
            Tensor y = newChannelsLast(new int[]{n, k, oh, ow}, t);
            Tensor bc = bias == null ? null : contiguous(bias);
            int[] wst = wt.strides();
            // 211 registers a thread: two blocks a multiprocessor, each looping over its share of the tiles; shared:
            // the offsets, the filter's fragments (ks x 8 x 32 float pairs), the patch
            int blocks = (int) Math.min(tiles(), 2L * dev.multiprocessorCount());
            long shared = 4L * (ks * 8 + ks * 8 * 32 * 2 + patchFloats());
            geometry(Launch.args().ptr(ptr(y)).ptr(ptr(x)).ptr(ptr(wt)).ptr(bc == null ? 0 : ptr(bc)), x)
                    .i64(wst[0]).i64(wst[1]).i64(wst[2]).i64(wst[3]).i32(relu ? 1 : 0)
                    .go(dev, kernel("fwd"), blocks, k / CHANNELS_PER_BLOCK, 1, THREADS, (int) shared);
            if (bc != null) drop(bc, bias);
            return y;
        }

        /** The weight gradient, laid out as cuDNN's channels-last one (KRSC memory). */
        Tensor weightGrad(Tensor gy, Tensor x, int[] weightShape) {
            Tensor gc = alignedChannelsLast(gy, t);
            // two blocks a multiprocessor (255 registers a thread: the next tile's operands wait in them), at least
            // four tiles each
            int blocks = (int) Math.max(1, Math.min(tiles() / 4, 2L * dev.multiprocessorCount()));
            int kk = ks * 8;
            Tensor partial = newTensor(new int[]{blocks * k * kk}, DType.FLOAT32);
            geometry(Launch.args().ptr(ptr(partial)).ptr(ptr(gc)).ptr(ptr(x)), x)
                    .go(dev, kernel("wgrad"), blocks, k / CHANNELS_PER_BLOCK, 1, THREADS, (int) wgradShared());
            Tensor dw = newChannelsLast(weightShape.clone(), t);
            int[] st = dw.strides();
            Launch.args().ptr(ptr(dw)).ptr(ptr(partial)).i32(k).i32(blocks).i64(st[0]).i64(st[1]).i64(st[2]).i64(st[3])
                    .go(dev, kernel("wgrad_finish"), (int) (((long) k * 3 * r * s + 31) / 32), 1, 1, 256, 0);
            partial.storage().release();
            drop(gc, gy);
            return dw;
        }

        private Kernels.Fn kernel(String kind) { return smallConvKernel(name(kind), t); }
    }

    /**
     * The tensor-core first layer's view of this convolution, or null when it does not take it: float32 with TF32
     * allowed, and bfloat16's forward (exact in TF32; its weight gradient stays with cuDNN).
     */
    private StemConv stemConv(Tensor x, int[] ws, Conv2dParams p, boolean forward) {
        DType t = x.dtype();
        if (!smallConvEnabled || dev.computeCapabilityMajor() < 8 || !channelsLastConv(x)) return null;
        if (!(t == DType.FLOAT32 && dev.allowTf32Conv()) && !(t == DType.BFLOAT16 && forward)) return null;
        int[] xs = x.shape();
        if (xs[1] != 3 || ws[1] != 3 || ws[2] != 7 || ws[3] != 7 || ws[0] % 64 != 0) return null;
        // the patch under a tile grows with the stride: up to 2 fits the kernels' registers and 48 KB of shared memory
        if (p.groups() != 1 || p.dilationH() != 1 || p.dilationW() != 1 || p.strideH() > 2 || p.strideW() > 2) return null;
        StemConv sc = new StemConv(xs, ws, p, t);
        return sc.oh < 1 || sc.ow < 1 ? null : sc;
    }

    /**
     * The weight gradient of a 3x3 convolution of stride 1 with 32 or 64 output channels and 32, 64 or up to 8 input
     * channels, channels-last, float32 where TF32 is allowed (the products cuDNN's would take), on tensor cores:
     * conv_tap_wgrad of convolution.cu, a block every filter tap of 32 x 32 (or 32 x 8) channels over its share of 8 x
     * 8-pixel tiles, its sums added by a column sum. cuDNN's algorithms for the small CNNs' layers ran at about a tenth
     * of the tensor cores' rate. Under the timed search each geometry's first call times it against cuDNN's pick and
     * keeps the faster (cuDNN has fast kernels for some of these shapes too). Null where it does not apply or cuDNN
     * won (KILN_SMALL_CONV=0: always); cuDNN then takes it.
     */
    private Tensor tapWeightGrad(Tensor gy, Tensor x, int[] ws, Conv2dParams p) {
        int[] xs = x.shape();
        int c = xs[1], k = ws[0];
        if (!smallConvEnabled || x.dtype() != DType.FLOAT32 || gy.dtype() != DType.FLOAT32 || !dev.allowTf32Conv()
                || dev.computeCapabilityMajor() < 8 || !channelsLastConv(x)) return null;
        if (ws[2] != 3 || ws[3] != 3 || (k != 32 && k != 64) || (c > 8 && c != 32 && c != 64) || p.groups() != 1
                || p.strideH() != 1 || p.strideW() != 1 || p.dilationH() != 1 || p.dilationW() != 1) return null;
        if (p.outH(xs[2], 3) < 1 || p.outW(xs[3], 3) < 1) return null;
        List<Integer> key = List.of(xs[0], c, xs[2], xs[3], k, p.padH(), p.padW());
        Boolean tap = tapPick.kept(key);
        if (tap == null && Cuda.cudnnBenchmark() && Dnn.available(DType.FLOAT32) && !dev.allocator().capturing()) {
            tap = tapPick.choose(key, () -> released(tapRun(gy, x, ws, p)), () -> released(dnnBackwardWeight(gy, x, ws, p)));
        }
        return tap == Boolean.FALSE ? null : tapRun(gy, x, ws, p);
    }

    /** Per weight-gradient geometry (n, c, h, w, k, padding), whether the timed search kept conv_tap_wgrad. */
    private final TimedPick<List<Integer>> tapPick;

    /** True, once t's memory is back with the allocator (a timed run's result). */
    private static boolean released(Tensor t) {
        t.storage().release();
        return true;
    }

    private Tensor tapRun(Tensor gy, Tensor x, int[] ws, Conv2dParams p) {
        int[] xs = x.shape();
        int c = xs[1], k = ws[0], cw = c <= 8 ? 8 : 32, oh = p.outH(xs[2], 3), ow = p.outW(xs[3], 3);
        Tensor gc = alignedChannelsLast(gy, DType.FLOAT32), xc = alignedChannelsLast(x, DType.FLOAT32);
        long tiles = (long) xs[0] * ((oh + 7) / 8) * ((ow + 7) / 8), cols = (long) k * 9 * c;
        int groups = k / 32 * ((c + cw - 1) / cw);
        // two blocks a multiprocessor (123 registers a thread), each looping over its share of the tiles
        int blocks = (int) Math.max(1, Math.min(tiles, (2L * dev.multiprocessorCount() + groups - 1) / groups));
        Tensor partial = newTensor(new int[]{blocks, (int) cols}, DType.FLOAT32);
        Launch.args().ptr(ptr(partial)).ptr(ptr(gc)).ptr(ptr(xc)).ints(xs[0], xs[2], xs[3], oh, ow, k, c, p.padH(), p.padW())
                .go(dev, smallConvKernel(cw == 8 ? "conv_tap_wgrad_c8k3" : "conv_tap_wgrad_k3", DType.FLOAT32), blocks, groups, 1, 256, 0);
        Tensor dw = newChannelsLast(ws.clone(), DType.FLOAT32);   // KRSC, as the partial sums are laid out
        reductions.colReduce(ReduceOp.SUM, ptr(dw), DType.FLOAT32, ptr(partial), DType.FLOAT32, blocks, cols);
        partial.storage().release();
        drop(gc, gy);
        drop(xc, x);
        return dw;
    }

    /** The convolution without bias through im2col and the own GEMM (no cuDNN, or KILN_CUDNN=0). */
    private Tensor im2colConv2d(Tensor x, Tensor w, Conv2dParams p) {
        Tensor xc = contiguous(x), wc = contiguous(w);
        int n = x.shape()[0], o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int[] cp = convP(x.shape(), kh, kw, p);
        int oh = cp[11], ow = cp[12], cg = cp[0] / g, og = o / g;
        long kg = (long) cg * kh * kw, q = (long) oh * ow, rows = (long) cp[0] * kh * kw;
        Tensor cols = im2col(xc, cp);
        Tensor out = newTensor(new int[]{n, o, oh, ow}, x.dtype());
        int es = x.dtype().byteSize();
        for (int gi = 0; gi < g; gi++) {
            matmul.gemm(x.dtype(), n, og, q, kg,
                    ptr(wc) + gi * og * kg * es, 0, kg, 1,
                    ptr(cols) + gi * kg * q * es, rows * q, q, 1,
                    ptr(out) + gi * og * q * es, (long) o * q, q, false);
        }
        drop(xc, x);
        drop(wc, w);
        cols.storage().release();
        return out;
    }

    /**
     * y = relu?(y + bias[channel] + residual) in place over dim 1 of a fresh contiguous or channels-last (N, C, ...)
     * tensor (bias, residual may be null; the residual is read in y's layout and dtype, copied there if it is not).
     */
    private void biasReluInPlace(Tensor y, Tensor bias, Tensor residual, boolean relu) {
        Tensor bc = bias == null ? null : contiguous(bias);
        boolean cl = y.prefersChannelsLast();
        Tensor z = residual == null ? null : cl ? channelsLast(residual, y.dtype()) : contiguous(residual, y.dtype());
        long n = y.numel();
        int[] s = y.shape();
        // channels-last is (N*H*W, C, 1): one "image" per pixel, the channel innermost
        long inner = n == 0 || cl ? 1 : n / ((long) s[0] * s[1]);
        if (n > 0) {
            boolean aligned = ptr(y) % 16 == 0 && (z == null || ptr(z) % 16 == 0);
            Kernels.Table fn = !aligned ? biasRelu : cl && s[1] % 4 == 0 ? biasReluClV4 : !cl && inner % 4 == 0 ? biasReluV4 : biasRelu;
            long work = fn == biasRelu ? n : n / 4;
            Launch.args().ptr(ptr(y)).ptr(bc == null ? 0 : ptr(bc)).ptr(z == null ? 0 : ptr(z)).i64(work).i64(inner).i64(s[1]).i32(relu ? 1 : 0)
                    .go(dev, fn.get(y.dtype()), grid(work), BLOCK);
        }
        if (bc != null) drop(bc, bias);
        if (z != null) drop(z, residual);
    }

    Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad) {
        requireAnyFloat("bias_relu_backward", g.dtype());
        boolean cl = (relu ? y : g).prefersChannelsLast();   // as the forward's output: (N*H*W, C, 1)
        Tensor gc = cl ? channelsLast(g) : contiguous(g), yc = !relu ? null : cl ? channelsLast(y, g.dtype()) : contiguous(y, g.dtype());
        int[] s = g.shape();
        long n = g.numel();
        int c = s[1], images = cl ? (int) (n / Math.max(c, 1)) : s[0];
        long inner = n == 0 ? 1 : n / ((long) images * c);
        Tensor dz = relu ? (cl ? newChannelsLast(s, g.dtype()) : newTensor(s, g.dtype())) : gc, db = null;
        if (biasGrad) db = newTensor(new int[]{c}, g.dtype());
        if (n > 0 && (relu || biasGrad)) {
            long align = 4L * g.dtype().byteSize();
            boolean packs = cl && c % 4 == 0 && c <= 4 * BLOCK && ptr(gc) % align == 0 && (!relu || ptr(yc) % align == 0 && ptr(dz) % align == 0);
            // about four blocks per multiprocessor in all: each a run of rows with every channel (channels-last in
            // 4-channel packs; images are then the N*H*W rows), else a channel's share of the images
            int splits = packs ? (int) Math.max(1, Math.min(((long) images + BLOCK / (c / 4) - 1) / (BLOCK / (c / 4)), 4L * dev.multiprocessorCount()))
                    : (int) Math.max(1, Math.min(images, (4L * dev.multiprocessorCount() + c - 1) / c));
            Tensor partial = biasGrad ? newTensor(new int[]{c * splits}, g.dtype().accumulation()) : null;
            Launch args = Launch.args().ptr(relu ? ptr(dz) : 0).ptr(biasGrad ? ptr(partial) : 0).ptr(ptr(gc)).ptr(relu ? ptr(yc) : ptr(gc));
            if (packs) args.i64(images).i64(c).i32(relu ? 1 : 0).i32(relu ? 1 : 0).go(dev, biasReluBwdCl.get(g.dtype()), splits, BLOCK);
            else args.i64(images).i64(inner).i64(c).i32(relu ? 1 : 0).i32(relu ? 1 : 0)
                    .go(dev, (inner % 4 == 0 ? biasReluBwdV4 : biasReluBwd).get(g.dtype()), c, splits, 1, BLOCK, 0);
            if (biasGrad) {
                Launch.args().ptr(ptr(db)).ptr(ptr(partial)).i64(c).i64(splits).go(dev, biasGradFinish.get(g.dtype()), grid(32L * c), BLOCK);   // a warp a channel
                partial.storage().release();
            }
        } else if (biasGrad) {
            backend.fill(db, 0);
        }
        if (relu) {
            drop(gc, g);
            drop(yc, y);
        }
        return new Tensor[]{dz, db};
    }

    /** The input gradient, plus addend when given (cuDNN accumulates into it when its layout is the result's). */
    Tensor conv2dBackwardInput(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p, Tensor addend) {
        if (Dnn.available(gradOut.dtype())) return dnnBackwardInput(gradOut, w, inputShape, p, addend);
        Tensor gx = conv2dBackwardInputIm2col(gradOut, w, inputShape, p);
        return addend == null ? gx : backend.binary(BinaryOp.ADD, addend, gx);
    }

    private Tensor conv2dBackwardInputIm2col(Tensor gradOut, Tensor w, int[] inputShape, Conv2dParams p) {
        Tensor gy = contiguous(gradOut), wc = contiguous(w);
        int n = inputShape[0], o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3], g = p.groups();
        int[] cp = convP(inputShape, kh, kw, p);
        int cg = cp[0] / g, og = o / g;
        long kg = (long) cg * kh * kw, q = (long) cp[11] * cp[12], rows = (long) cp[0] * kh * kw;
        DType t = gradOut.dtype();
        int es = t.byteSize();
        Tensor cols = newTensor(new int[]{n, (int) rows, (int) q}, t);
        for (int gi = 0; gi < g; gi++) {
            matmul.gemm(t, n, kg, q, og,
                    ptr(wc) + gi * og * kg * es, 0, 1, kg,
                    ptr(gy) + gi * og * q * es, (long) o * q, q, 1,
                    ptr(cols) + gi * kg * q * es, rows * q, q, false);
        }
        Tensor gx = newTensor(inputShape.clone(), t);
        long total = Shape.numel(inputShape);
        if (total > 0) Launch.args().ptr(ptr(gx)).ptr(ptr(cols)).i64(total).ints(cp).go(dev, col2im.get(t), grid(total), BLOCK);
        cols.storage().release();
        drop(gy, gradOut);
        drop(wc, w);
        return gx;
    }

    Tensor conv2dBackwardWeight(Tensor gradOut, Tensor x, int[] weightShape, Conv2dParams p) {
        StemConv stem = stemConv(x, weightShape, p, false);
        if (stem != null) return stem.weightGrad(gradOut, x, weightShape);
        Tensor tap = tapWeightGrad(gradOut, x, weightShape, p);
        if (tap != null) return tap;
        if (Dnn.available(gradOut.dtype())) return dnnBackwardWeight(gradOut, x, weightShape, p);
        Tensor gy = contiguous(gradOut), xc = contiguous(x);
        int n = x.shape()[0], o = weightShape[0], kh = weightShape[2], kw = weightShape[3], g = p.groups();
        int[] cp = convP(x.shape(), kh, kw, p);
        int cg = cp[0] / g, og = o / g;
        long kg = (long) cg * kh * kw, q = (long) cp[11] * cp[12], rows = (long) cp[0] * kh * kw;
        DType t = gradOut.dtype();
        int es = t.byteSize();
        Tensor cols = im2col(xc, cp);
        // per image, then summed over images: gw[g] = sum_n gy[n, g] x cols[n, g]^T
        Tensor perImage = newTensor(new int[]{n, o * (int) kg}, t);
        for (int gi = 0; gi < g; gi++) {
            matmul.gemm(t, n, og, kg, q,
                    ptr(gy) + gi * og * q * es, (long) o * q, q, 1,
                    ptr(cols) + gi * kg * q * es, rows * q, 1, q,
                    ptr(perImage) + gi * og * kg * es, (long) o * kg, kg, false);
        }
        Tensor gw = newTensor(weightShape.clone(), t);
        long cols2 = (long) o * kg;
        reductions.colReduce(ReduceOp.SUM, ptr(gw), t, ptr(perImage), t, n, cols2);
        perImage.storage().release();
        cols.storage().release();
        drop(gy, gradOut);
        drop(xc, x);
        return gw;
    }

    // ------------------------------------------------------------------ through cuDNN

    /**
     * Whether cuDNN runs this convolution channels-last: its input (forward, weight gradient) or output gradient
     * (input gradient) is channels-last and not also contiguous. Activations then stay channels-last; the filter is
     * KRSC: a channels-last (K, C, R, S) tensor as it is (the op layer makes the step's filter so), anything else
     * copied; the filter gradient comes out channels-last. float64 stays NCHW (cuDNN's NHWC kernels are for the
     * tensor-core types and float32).
     */
    private static boolean channelsLastConv(Tensor t) { return t.prefersChannelsLast() && t.dtype() != DType.FLOAT64; }

    /** w (K, C, R, S) in KRSC memory (channels-last): the filter layout of channels-last convolutions. */
    private Tensor krsc(Tensor w) {
        if (w.isChannelsLast()) return w;
        int[] s = w.shape(), st = w.strides();
        Tensor out = newTensor(new int[]{s[0], s[2], s[3], s[1]}, w.dtype());
        backend.copy(out, new Tensor(w.storage(), out.shape(), new int[]{st[0], st[2], st[3], st[1]}, w.offset()));
        return out;
    }

    /** The convolution without bias: the caller adds bias (and ReLU) in one epilogue pass of its own. */
    private Tensor dnnConv2d(Tensor x, Tensor w, Conv2dParams p) {
        boolean cl = channelsLastConv(x);
        Tensor xc = cl ? x : contiguous(x), wc = cl ? krsc(w) : contiguous(w);
        int[] ws = w.shape(), xs = x.shape();
        int[] ys = {xs[0], ws[0], p.outH(xs[2], ws[2]), p.outW(xs[3], ws[3])};
        Tensor y = cl ? newChannelsLast(ys, x.dtype()) : newTensor(ys, x.dtype());
        Dnn.forward(dev, x.dtype(), xs, ws, p, cl, ptr(xc), ptr(wc), ptr(y));
        drop(xc, x);
        drop(wc, w);
        return y;
    }

    private Tensor dnnBackwardInput(Tensor gy, Tensor w, int[] inputShape, Conv2dParams p, Tensor addend) {
        boolean cl = channelsLastConv(gy);
        Tensor gc = cl ? gy : contiguous(gy), wc = cl ? krsc(w) : contiguous(w);
        // the input's gradient from its other consumers (a residual block's skip path) is added by cuDNN (beta = 1)
        // when it is laid out as the result, instead of in an add pass of its own
        boolean into = addend != null && addend.dtype() == gy.dtype() && (cl ? addend.isChannelsLast() : addend.isContiguous());
        Tensor gx = into ? addend : cl ? newChannelsLast(inputShape.clone(), gy.dtype()) : newTensor(inputShape.clone(), gy.dtype());
        Dnn.backwardData(dev, gy.dtype(), inputShape, w.shape(), p, cl, ptr(gc), ptr(wc), ptr(gx), into ? 1 : 0);
        drop(gc, gy);
        drop(wc, w);
        return addend == null || into ? gx : backend.binary(BinaryOp.ADD, addend, gx);
    }

    private Tensor dnnBackwardWeight(Tensor gy, Tensor x, int[] weightShape, Conv2dParams p) {
        boolean cl = channelsLastConv(x);
        Tensor gc = cl ? channelsLast(gy) : contiguous(gy), xc = cl ? x : contiguous(x);
        Tensor gw = cl ? newChannelsLast(weightShape.clone(), gy.dtype()) : newTensor(weightShape.clone(), gy.dtype());
        Dnn.backwardFilter(dev, gy.dtype(), x.shape(), weightShape, p, cl, ptr(xc), ptr(gc), ptr(gw));
        drop(gc, gy);
        drop(xc, x);
        return gw;
    }
}
