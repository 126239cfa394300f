package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.contiguousArray;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Convolution family: conv2d (with its bias + ReLU epilogue), its input and weight
 * gradients, and the bias + ReLU backward. float32 runs as im2col + packed GEMM on plain float[]. Per image and
 * group g:
 * <pre>
 *   forward:         y_g  (og x P)       = W_g (og x R) · cols (R x P)          R = cg*kh*kw, P = oh*ow
 *   backward-input:  cols (R x P)        = W_gᵀ · gy_g,  then col2im adds cols into gx
 *   backward-weight: gW_gᵀ (R x og)     += cols · gy_gᵀ, summed over images
 * </pre>
 * Work is split over (image, group) pairs, each worker with its own buffers, so each GEMM runs single-threaded;
 * with fewer pairs than threads the GEMM splits instead. Transposed operands are strided views, which GEMM packing
 * reads directly. Forward and backward-input pack the weights once per call (not once per image) and pack the
 * per-image operand whole; forward writes im2col straight into packed panels. With few output channels the
 * packing costs as much as the arithmetic, so that is where the time went (bench/results/cpu-2026-11-21.md). Two
 * shapes skip im2col: few input channels ({@link DirectConv}, forward) and 3x3 layers of stride 1 or 2 with
 * many ({@link Conv3x3}, all three directions); weight gradients of small maps put several images in one product.
 * Other dtypes take {@link ConvolutionAny}'s general path, which is also the reference the float32 one is tested against.
 */
final class ConvolutionCpu {
    private ConvolutionCpu() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final Sgemm GEMM = Sgemm.PREFERRED;
    /** Few input channels go to {@link DirectConv} (-Dkiln.conv.direct=false: im2col + GEMM for every shape). */
    static final boolean DIRECT = !"false".equals(System.getProperty("kiln.conv.direct"));

    /** x (N, C, H, W), w (O, C/groups, kH, kW), bias (O) or null, plus residual (y's shape) unless null; then relu (NaN kept). */
    static Tensor conv2d(Tensor x, Tensor w, Tensor bias, Tensor residual, Conv2dParams p, boolean relu) {
        Geo g = Geo.of(x.shape(), w.shape(), p);
        if (x.dtype() == DType.FLOAT32 && Conv3x3.appliesForward(g.c, g.kh, g.kw, p) && (residual == null || residual.dtype() == DType.FLOAT32
                && residual.isContiguous() && java.util.Arrays.equals(residual.shape(), new int[]{g.n, g.o, g.oh, g.ow}))) {
            return conv3x3(g, x, w, bias, residual, relu);
        }
        Tensor y = x.dtype() == DType.FLOAT32 ? conv2dF32(x, w, bias, p) : ConvolutionAny.conv2d(x, w, bias, p);
        if (residual != null && y.dtype() == DType.FLOAT32 && residual.dtype() == DType.FLOAT32 && residual.isContiguous()
                && java.util.Arrays.equals(residual.shape(), y.shape())) {
            // y is fresh: the residual added into it and the ReLU in one pass (the separate passes' values)
            float[] ya = data(y), ra = data(residual);
            int yo = y.offset(), ro = residual.offset();
            Parallel.range((int) y.numel(), Parallel.GRAIN, (lo, hi) -> {
                Sgemm.addRow(ra, ro + lo, ya, yo + lo, hi - lo);
                if (relu) reluRow(ya, yo + lo, hi - lo);
            });
            return y;
        }
        if (residual != null) y = ElementwiseCpu.binary(BinaryOp.ADD, y, residual);   // fresh and contiguous, as the ReLU wants
        if (relu) reluInPlace(y);
        return y;
    }

    static Tensor conv2dBackwardInput(Tensor gy, Tensor w, int[] xShape, Conv2dParams p) {
        return gy.dtype() == DType.FLOAT32 ? backwardInputF32(gy, w, xShape, p, null) : ConvolutionAny.backwardInput(gy, w, xShape, p);
    }

    /**
     * The input gradient plus addend: float32 summed into the addend (col2im adds into its target; a strided addend into
     * a contiguous copy, so both layouts add in one order), anything else through a separate add.
     */
    static Tensor conv2dBackwardInput(Tensor gy, Tensor w, int[] xShape, Conv2dParams p, Tensor addend) {
        if (addend != null && gy.dtype() == DType.FLOAT32 && addend.dtype() == DType.FLOAT32) {
            return backwardInputF32(gy, w, xShape, p, addend.isContiguous() ? addend : addend.detach().contiguousCopy());
        }
        Tensor gx = conv2dBackwardInput(gy, w, xShape, p);
        return addend == null ? gx : ElementwiseCpu.binary(dev.kiln.backend.BinaryOp.ADD, addend, gx);
    }

    static Tensor conv2dBackwardWeight(Tensor gy, Tensor x, int[] wShape, Conv2dParams p) {
        return gy.dtype() == DType.FLOAT32 ? backwardWeightF32(gy, x, wShape, p) : ConvolutionAny.backwardWeight(gy, x, wShape, p);
    }

    // ---------------------------------------------------------------- float32 geometry and work split

    /** The sizes of one convolution: input (n, c, h, w), weight (o, cg, kh, kw), output (n, o, oh, ow). */
    private record Geo(int n, int c, int h, int w, int o, int kh, int kw, int oh, int ow, int groups, Conv2dParams p) {
        static Geo of(int[] xs, int[] ws, Conv2dParams p) {
            return new Geo(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], p.outH(xs[2], ws[2]), p.outW(xs[3], ws[3]), p.groups(), p);
        }

        int cg() { return c / groups; }

        int og() { return o / groups; }

        /** GEMM depth: one row of cols per (input channel, kernel row, kernel column). */
        int rows() { return cg() * kh * kw; }

        int pixels() { return oh * ow; }

        /** A 1x1, stride-1, unpadded convolution: cols would be the input itself. */
        boolean pointwise() {
            return kh == 1 && kw == 1 && p.strideH() == 1 && p.strideW() == 1 && p.padH() == 0 && p.padW() == 0;
        }

        /** Image img's input channels of group gi, offset into a contiguous (n, c, h, w) array starting at base. */
        int inputAt(int base, int img, int gi) { return base + (img * c + gi * cg()) * h * w; }

        /** Image img's output channels of group gi, offset into a contiguous (n, o, oh, ow) array. */
        int outputAt(int img, int gi) { return (img * o + gi * og()) * pixels(); }
    }

    /**
     * One (image, group) task. gemm computes C = A·B (or C += A·B) on however many threads the caller chose; cols is
     * the worker's im2col buffer and acc its private accumulator (see {@link #forEachImage}).
     */
    private interface Task {
        void run(int img, int gi, Gemm gemm, float[] cols, float[] acc);
    }

    /** Sgemm.gemm or Sgemm.batched for one matrix. */
    private interface Gemm {
        void run(int m, int n, int k, Sgemm.Mat a, Sgemm.Mat b, float[] c, int co, int ldc, boolean accumulate);
    }

    /**
     * Runs body over all (image, group) tasks. With at least as many tasks as threads, tasks go to threads and each
     * GEMM runs on its worker alone (one scratch and cols buffer per worker); otherwise tasks run in turn and each
     * GEMM is split over all threads, so a single image still uses every core. Each chunk of tasks sums into a zeroed
     * float[accLen]; done gets them in chunk order, not finishing order (which made training runs differ at a seed).
     */
    private static void forEachImage(Geo g, int accLen, Task body, java.util.function.Consumer<java.util.List<float[]>> done) {
        int tasks = g.n * g.groups;
        int colsLen = g.pointwise() ? 0 : g.rows() * g.pixels();
        if (tasks < Parallel.THREADS) {
            float[] cols = new float[colsLen], acc = new float[accLen];
            Gemm all = (m, n, k, a, b, c, co, ldc, add) -> GEMM.batched(1, m, n, k, a, 0, b, 0, c, co, ldc, add);
            for (int t = 0; t < tasks; t++) body.run(t / g.groups, t % g.groups, all, cols, acc);
            done.accept(java.util.List.of(acc));
            return;
        }
        var accs = new java.util.concurrent.ConcurrentSkipListMap<Integer, float[]>();   // by the chunk's first task
        Parallel.balanced(tasks, (lo, hi) -> {
            Sgemm.Scratch s = GEMM.localScratch();
            Gemm one = (m, n, k, a, b, c, co, ldc, add) -> GEMM.gemm(m, n, k, a, b, c, co, ldc, add, s);
            float[] cols = ThreadBuffers.get(ThreadBuffers.CONV_COLS, colsLen), acc = new float[accLen];
            for (int t = lo; t < hi; t++) body.run(t / g.groups, t % g.groups, one, cols, acc);
            accs.put(lo, acc);
        });
        done.accept(new java.util.ArrayList<>(accs.values()));
    }

    private static void forEachImage(Geo g, Task body) { forEachImage(g, 0, body, accs -> {}); }

    private static float[] data(Tensor t) { return (float[]) arrayOf(t); }

    /** Something done for one (image, group) pair. */
    private interface PerImage {
        void run(int img, int gi);
    }

    // ---------------------------------------------------------------- float32 forward

    private static Tensor conv2dF32(Tensor x, Tensor w, Tensor bias, Conv2dParams p) {
        Geo g = Geo.of(x.shape(), w.shape(), p);
        Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
        float[] xa = data(xc), wa = data(wc);
        Tensor bc = bias == null ? null : bias.detach().contiguous();
        float[] b = bc == null ? null : data(bc);
        int bOff = bc == null ? 0 : bc.offset();
        Tensor out = newTensor(new int[]{g.n, g.o, g.oh, g.ow}, x.dtype());
        float[] y = data(out);
        if (DIRECT && DirectConv.applies(g.c, g.kh, g.kw, p.strideH(), p.strideW(), p.dilationH(), p.dilationW(), g.groups)) {
            DirectConv.forward(DirectConv.ROWS, xa, xc.offset(), g.n, g.c, g.h, g.w, wa, wc.offset(), g.o, g.kh, g.kw,
                    p.padH(), p.padW(), b, bOff, y);
            return out;
        }
        int r = g.rows(), px = g.pixels(), og = g.og();
        // the bias goes in first and the product is accumulated onto it
        PerImage fillBias = (img, gi) -> {
            int yo = g.outputAt(img, gi);
            for (int oc = 0; oc < og; oc++) java.util.Arrays.fill(y, yo + oc * px, yo + (oc + 1) * px, b[bOff + gi * og + oc]);
        };
        if (g.n * g.groups >= Parallel.THREADS && !g.pointwise()) {
            forwardPacked(g, xa, xc.offset(), wa, wc.offset(), y, b == null ? null : fillBias);
            return out;
        }
        // fewer images than threads (one image's products on all threads): a bound WeightCache keeps the packed weights
        WeightCache cache = g.n * g.groups < Parallel.THREADS ? WeightCache.active() : null;
        forEachImage(g, (img, gi, gemm, cols, acc) -> {
            Sgemm.Mat in = input(g, xa, xc.offset(), img, gi, cols);
            int wOff = wc.offset() + gi * og * r;
            Sgemm.Mat wg = new Sgemm.Mat(wa, wOff, r, 1);
            if (b != null) fillBias.run(img, gi);
            if (cache == null) {
                gemm.run(og, px, r, wg, in, y, g.outputAt(img, gi), px, b != null);
                return;
            }
            float[] pa = cache.get(wa, new WeightCache.Key(wOff, og, r, java.util.List.of(GEMM, "conv2d weights as A")), () -> GEMM.packAllA(wg, og, r));
            GEMM.packedA(og, px, r, pa, in, y, g.outputAt(img, gi), px, b != null);
        });
        return out;
    }

    /** The forward through {@link Conv3x3}, its bias, residual (y's shape, float32, contiguous) and ReLU in the rows' copy-out. */
    private static Tensor conv3x3(Geo g, Tensor x, Tensor w, Tensor bias, Tensor residual, boolean relu) {
        Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous(), bc = bias == null ? null : bias.detach().contiguous();
        Tensor out = CpuStorage.unsetTensor(new int[]{g.n, g.o, g.oh, g.ow}, x.dtype());
        Conv3x3.Epilogue e = new Conv3x3.Epilogue(bc == null ? null : data(bc), bc == null ? 0 : bc.offset(),
                residual == null ? null : data(residual), residual == null ? 0 : residual.offset(), relu);
        Conv3x3.forward(Conv3x3.KERNEL, data(xc), xc.offset(), g.n, g.c, g.h, g.w, data(wc), wc.offset(), g.o, g.kh, g.p.strideH(), g.p.padH(), g.p.padW(), e, data(out));
        return out;
    }

    /**
     * Forward with both GEMM operands packed once: each group's weights before the loop (shared by all images),
     * each image's im2col straight into packed panels. This skips the cols copy and repacking the weights per
     * image, which cost as much as the arithmetic when there are few output channels to reuse them.
     */
    private static void forwardPacked(Geo g, float[] x, int xOff, float[] w, int wOff, float[] y, PerImage fillBias) {
        int r = g.rows(), px = g.pixels(), og = g.og();
        float[][] packedW = new float[g.groups][];
        for (int gi = 0; gi < g.groups; gi++) packedW[gi] = GEMM.packAllA(new Sgemm.Mat(w, wOff + gi * og * r, r, 1), og, r);
        Parallel.balanced(g.n * g.groups, (lo, hi) -> {
            float[] packedCols = ThreadBuffers.get(ThreadBuffers.CONV_COLS, Sgemm.packedLength(px, r, GEMM.NR));
            float[] row = ThreadBuffers.get(ThreadBuffers.CONV_ROW, Sgemm.roundUp(px, GEMM.NR));
            float[] tile = ThreadBuffers.get(ThreadBuffers.CONV_TILE, GEMM.MR * GEMM.NR);
            for (int t = lo; t < hi; t++) {
                int img = t / g.groups, gi = t % g.groups;
                im2colPacked(g, x, g.inputAt(xOff, img, gi), packedCols, row);
                if (fillBias != null) fillBias.run(img, gi);
                GEMM.gemmPacked(og, px, r, packedW[gi], packedCols, y, g.outputAt(img, gi), px, fillBias != null, tile);
            }
        });
    }

    /**
     * im2col into Sgemm's fully packed B layout (NR-pixel panels in KC-deep slabs, zero padded): each row is built
     * contiguously in an L1-sized buffer, then dealt out to the panels with vector copies.
     */
    private static void im2colPacked(Geo g, float[] x, int at, float[] dst, float[] row) {
        int nr = GEMM.NR, rows = g.rows(), px = g.pixels(), nPad = Sgemm.roundUp(px, nr);
        SgemmKernel kernel = GEMM.kernel;
        for (int q = 0; q < rows; q++) {
            int pc = q / GEMM.KC * GEMM.KC, kc = Math.min(GEMM.KC, rows - pc);
            im2colRow(g, x, at, q, row, 0);
            java.util.Arrays.fill(row, px, nPad, 0f);
            // pixel j of the row goes to panel j / nr, lane j % nr
            for (int j = 0, d = pc * nPad + (q - pc) * nr; j < nPad; j += nr, d += nr * kc) {
                kernel.copyPanelRow(row, j, dst, d);
            }
        }
    }

    /** The (R x P) matrix the GEMM multiplies by: the input itself for a pointwise conv, else im2col into cols. */
    private static Sgemm.Mat input(Geo g, float[] x, int xOff, int img, int gi, float[] cols) {
        int at = g.inputAt(xOff, img, gi);
        if (g.pointwise()) return new Sgemm.Mat(x, at, g.h * g.w, 1);
        im2col(g, x, at, cols);
        return new Sgemm.Mat(cols, 0, g.pixels(), 1);
    }

    /** cols[(ch*kh + ki)*kw + kj][oy*ow + ox] = x[ch][oy*sh - ph + ki*dh][ox*sw - pw + kj*dw], 0 outside the image. */
    private static void im2col(Geo g, float[] x, int at, float[] cols) {
        for (int row = 0, rows = g.rows(), px = g.pixels(); row < rows; row++) im2colRow(g, x, at, row, cols, row * px);
    }

    /** Row `row` of im2col (oh*ow values) into out[dst...]. */
    private static void im2colRow(Geo g, float[] x, int at, int row, float[] out, int dst) {
        Conv2dParams p = g.p;
        int ch = row / (g.kh * g.kw), ki = row / g.kw % g.kh, kj = row % g.kw;
        int plane = at + ch * g.h * g.w;
        int dx = kj * p.dilationW() - p.padW();
        // output columns whose input column lies inside the image: ox in [ox0, ox1)
        int ox0 = firstInside(dx, p.strideW()), ox1 = Math.max(ox0, lastInside(dx, p.strideW(), g.w, g.ow));
        for (int oy = 0; oy < g.oh; oy++, dst += g.ow) {
            int iy = oy * p.strideH() - p.padH() + ki * p.dilationH();
            if (iy < 0 || iy >= g.h) {
                java.util.Arrays.fill(out, dst, dst + g.ow, 0f);
                continue;
            }
            int src = plane + iy * g.w + dx;
            java.util.Arrays.fill(out, dst, dst + ox0, 0f);
            if (p.strideW() == 1) System.arraycopy(x, src + ox0, out, dst + ox0, ox1 - ox0);
            else for (int ox = ox0; ox < ox1; ox++) out[dst + ox] = x[src + ox * p.strideW()];
            java.util.Arrays.fill(out, dst + ox1, dst + g.ow, 0f);
        }
    }

    /** Smallest ox >= 0 with ox*stride + dx >= 0. */
    private static int firstInside(int dx, int stride) { return dx >= 0 ? 0 : (-dx + stride - 1) / stride; }

    /** One past the largest ox < ow with ox*stride + dx < w. */
    private static int lastInside(int dx, int stride, int w, int ow) {
        if (w - dx <= 0) return 0;
        return Math.min(ow, (w - dx - 1) / stride + 1);
    }

    // ---------------------------------------------------------------- float32 backward

    /** The input gradient written into a new zeroed tensor, or added into {@code into} (contiguous) when not null. */
    private static Tensor backwardInputF32(Tensor gy, Tensor w, int[] xShape, Conv2dParams p, Tensor into) {
        Geo g = Geo.of(xShape, w.shape(), p);
        Tensor gyc = gy.detach().contiguous(), wc = w.detach().contiguous();
        float[] ga = data(gyc), wa = data(wc);
        if (Conv3x3.applies(g.c, g.kh, g.kw, p)) {
            Tensor gx = into != null ? into : CpuStorage.unsetTensor(xShape.clone(), gy.dtype());
            Conv3x3.backwardInput(Conv3x3.KERNEL, ga, gyc.offset(), g.n, g.o, wa, wc.offset(), g.c, g.h, g.w, p.strideH(), p.padH(), p.padW(),
                    data(gx), gx.offset(), into != null);
            return gx;
        }
        Tensor gx = into != null ? into : newTensor(xShape.clone(), gy.dtype());
        float[] gxa = data(gx);
        int r = g.rows(), px = g.pixels(), og = g.og(), base = gx.offset();
        boolean add = into != null;   // col2im always adds; the pointwise product adds only into a given target
        if (g.n * g.groups >= Parallel.THREADS) {
            backwardInputPacked(g, ga, gyc.offset(), wa, wc.offset(), gxa, base, add);
            return gx;
        }
        forEachImage(g, (img, gi, gemm, cols, acc) -> {
            Sgemm.Mat wgT = new Sgemm.Mat(wa, wc.offset() + gi * og * r, 1, r);
            Sgemm.Mat gyg = new Sgemm.Mat(ga, gyc.offset() + g.outputAt(img, gi), px, 1);
            int at = g.inputAt(base, img, gi);
            gemm.run(r, px, og, wgT, gyg, g.pointwise() ? gxa : cols, g.pointwise() ? at : 0, px, g.pointwise() && add);
            if (!g.pointwise()) col2im(g, cols, gxa, at);
        });
        return gx;
    }

    /** Backward-input with each group's W_gᵀ packed once per call and each image's gy_g packed whole. */
    private static void backwardInputPacked(Geo g, float[] gy, int gyOff, float[] w, int wOff, float[] gx, int gxOff, boolean add) {
        int r = g.rows(), px = g.pixels(), og = g.og();
        float[][] packedWT = new float[g.groups][];
        for (int gi = 0; gi < g.groups; gi++) packedWT[gi] = GEMM.packAllA(new Sgemm.Mat(w, wOff + gi * og * r, 1, r), r, og);
        Parallel.balanced(g.n * g.groups, (lo, hi) -> {
            float[] packedGy = ThreadBuffers.get(ThreadBuffers.CONV_GY, Sgemm.packedLength(px, og, GEMM.NR));
            float[] cols = ThreadBuffers.get(ThreadBuffers.CONV_COLS, g.pointwise() ? 0 : r * px);
            float[] tile = ThreadBuffers.get(ThreadBuffers.CONV_TILE, GEMM.MR * GEMM.NR);
            for (int t = lo; t < hi; t++) {
                int img = t / g.groups, gi = t % g.groups, at = g.inputAt(gxOff, img, gi);
                GEMM.packAllB(new Sgemm.Mat(gy, gyOff + g.outputAt(img, gi), px, 1), og, px, packedGy);
                if (g.pointwise()) {
                    GEMM.gemmPacked(r, px, og, packedWT[gi], packedGy, gx, at, px, add, tile);
                    continue;
                }
                GEMM.gemmPacked(r, px, og, packedWT[gi], packedGy, cols, 0, px, false, tile);
                col2im(g, cols, gx, at);
            }
        });
    }

    /** Adds cols (R x P) back into the image planes at gx[at...]: im2col's adjoint (gx zeroed, or the addend). */
    private static void col2im(Geo g, float[] cols, float[] gx, int at) {
        Conv2dParams p = g.p;
        int px = g.pixels(), sw = p.strideW();
        for (int row = 0, rows = g.rows(); row < rows; row++) {
            int ch = row / (g.kh * g.kw), ki = row / g.kw % g.kh, kj = row % g.kw;
            int plane = at + ch * g.h * g.w, src = row * px;
            int dx = kj * p.dilationW() - p.padW();
            int ox0 = firstInside(dx, sw), ox1 = Math.max(ox0, lastInside(dx, sw, g.w, g.ow));
            for (int oy = 0; oy < g.oh; oy++, src += g.ow) {
                int iy = oy * p.strideH() - p.padH() + ki * p.dilationH();
                if (iy < 0 || iy >= g.h) continue;
                int dst = plane + iy * g.w + dx;
                if (sw == 1) {
                    // a unit-stride run: whole vectors, then a scalar tail (masked stores measured slower: the
                    // masked intoArray re-checks its bounds lane by lane)
                    int ox = ox0;
                    for (; ox + F.length() <= ox1; ox += F.length()) {
                        FloatVector.fromArray(F, gx, dst + ox)
                                .add(FloatVector.fromArray(F, cols, src + ox))
                                .intoArray(gx, dst + ox);
                    }
                    for (; ox < ox1; ox++) gx[dst + ox] += cols[src + ox];
                } else {
                    for (int ox = ox0; ox < ox1; ox++) gx[dst + ox * sw] += cols[src + ox];
                }
            }
        }
    }

    private static Tensor backwardWeightF32(Tensor gy, Tensor x, int[] wShape, Conv2dParams p) {
        Geo g = Geo.of(x.shape(), wShape, p);
        Tensor gyc = gy.detach().contiguous(), xc = x.detach().contiguous();
        float[] ga = data(gyc), xa = data(xc);
        int r = g.rows(), px = g.pixels(), og = g.og();
        Tensor out = newTensor(wShape.clone(), gy.dtype());
        float[] gw = data(out);
        if (Conv3x3.applies(g.c, g.kh, g.kw, p)) {
            Conv3x3.backwardWeight(Conv3x3.KERNEL, xa, xc.offset(), g.n, g.c, g.h, g.w, ga, gyc.offset(), g.o, p.strideH(), p.padH(), p.padW(), gw);
            return out;
        }
        int images = imagesPerWeightProduct(g);
        if (images > 1) {
            backwardWeightBatched(g, xa, xc.offset(), ga, gyc.offset(), gw, images);
            return out;
        }
        // Each worker sums gW_gᵀ (R x og) += cols · gy_gᵀ over its images into its own acc, laid out (groups, R, og).
        // Transposed, because then the big operand (cols, R x P) is a row-major A, which packs fastest, and only the
        // small one (gy_g, og x P) is read transposed. The accs are transposed back when they are added up.
        forEachImage(g, gw.length, (img, gi, gemm, cols, acc) -> {
            Sgemm.Mat in = input(g, xa, xc.offset(), img, gi, cols);
            Sgemm.Mat gyT = new Sgemm.Mat(ga, gyc.offset() + g.outputAt(img, gi), 1, px);
            gemm.run(r, og, px, in, gyT, acc, gi * og * r, og, true);
        }, accs -> addTransposed(accs, gw, g.groups, og, r));
        return out;
    }

    /**
     * gw (groups, og, R) = the sum of the workers' accumulators (groups, R, og), added in the order given (chunk order,
     * so a run repeats its bits), on all threads: with 16 workers one thread's transposing sum took longer than the products.
     */
    static void addTransposed(java.util.List<float[]> accs, float[] gw, int groups, int og, int r) { addTransposed(accs, gw, groups, og, r, og); }

    /** The same with the accumulators' rows ld floats apart (ld >= og: the columns past og are not read). */
    static void addTransposed(java.util.List<float[]> accs, float[] gw, int groups, int og, int r, int ld) {
        float[] sum = accs.get(0);
        Parallel.range(sum.length, Parallel.GRAIN, (lo, hi) -> {
            for (int a = 1; a < accs.size(); a++) Sgemm.addRow(accs.get(a), lo, sum, lo, hi - lo);
        });
        Parallel.range(groups * og, Math.max(1, Parallel.GRAIN / r), (lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                int base = row / og * ld * r, oc = row % og;
                for (int q = 0; q < r; q++) gw[row * r + q] = sum[base + q * ld + oc];
            }
        });
    }

    /** The depth, in pixels, a weight-gradient product should reach: below it C's tile is loaded and stored per few FMAs. */
    static final int WEIGHT_PRODUCT_DEPTH = 256;

    /**
     * Images whose columns go side by side into one weight-gradient product: one unless the images are small (7x7 and
     * 14x14 maps gave products 49 and 196 deep, where C's R x og tile, loaded and stored once a product, cost more than
     * the arithmetic), one group, and at least as many images as threads.
     */
    private static int imagesPerWeightProduct(Geo g) {
        if (g.groups != 1 || g.n < Parallel.THREADS) return 1;
        return Math.max(1, Math.min(g.n / Parallel.THREADS, (WEIGHT_PRODUCT_DEPTH + g.pixels() - 1) / g.pixels()));
    }

    /**
     * gWᵀ (R x O) += cols · gyᵀ over `images` images at once: their columns side by side (R x images·P) and their output
     * gradients likewise (O x images·P, read transposed), so each product is images·P deep. Each worker sums its images
     * into its own accumulator, added up in chunk order as {@link #forEachImage} does.
     */
    private static void backwardWeightBatched(Geo g, float[] x, int xOff, float[] gy, int gyOff, float[] gw, int images) {
        int r = g.rows(), px = g.pixels(), o = g.o;
        var accs = new java.util.concurrent.ConcurrentSkipListMap<Integer, float[]>();
        Parallel.balanced(g.n, (lo, hi) -> {
            Sgemm.Scratch s = GEMM.localScratch();
            float[] cols = ThreadBuffers.get(ThreadBuffers.CONV_COLS, r * images * px);
            float[] gyRows = ThreadBuffers.get(ThreadBuffers.CONV_GY, o * images * px), acc = new float[r * o];
            for (int first = lo; first < hi; first += images) {
                int k = Math.min(images, hi - first), depth = k * px;
                for (int i = 0; i < k; i++) {
                    int at = g.inputAt(xOff, first + i, 0), from = gyOff + g.outputAt(first + i, 0);
                    for (int q = 0; q < r; q++) im2colRow(g, x, at, q, cols, q * depth + i * px);
                    for (int oc = 0; oc < o; oc++) System.arraycopy(gy, from + oc * px, gyRows, oc * depth + i * px, px);
                }
                GEMM.gemm(r, o, depth, new Sgemm.Mat(cols, 0, depth, 1), new Sgemm.Mat(gyRows, 0, 1, depth), acc, 0, o, true, s);
            }
            accs.put(lo, acc);
        });
        addTransposed(new java.util.ArrayList<>(accs.values()), gw, 1, o, r);
    }

    // ---------------------------------------------------------------- bias (+ residual) + ReLU epilogue
    /** v[d..d+len) = max(v, 0) in place, NaN kept (as UnaryOp.RELU); also {@link Conv3x3}'s epilogue. */
    static void reluRow(float[] v, int d, int len) {
        FloatVector zero = FloatVector.zero(F);
        int j = 0;
        for (; j + F.length() <= len; j += F.length()) FloatVector.fromArray(F, v, d + j).max(zero).intoArray(v, d + j);
        for (; j < len; j++) v[d + j] = v[d + j] <= 0 ? 0f : v[d + j];
    }

    /** y = max(y, 0) in place (NaN kept, as UnaryOp.RELU); y contiguous, fresh. */
    private static void reluInPlace(Tensor y) {
        Object a = contiguousArray("relu", y);
        int n = (int) y.numel(), o = y.offset();
        switch (y.dtype()) {
            case FLOAT32 -> {
                float[] v = (float[]) a;
                Parallel.range(n, Parallel.GRAIN, (lo, hi) -> reluRow(v, o + lo, hi - lo));
            }
            case FLOAT64 -> {
                double[] v = (double[]) a;
                Parallel.range(n, Parallel.GRAIN, (lo, hi) -> {
                    for (int i = o + lo; i < o + hi; i++) v[i] = v[i] <= 0 ? 0.0 : v[i];
                });
            }
            default -> {
                DType t = y.dtype();
                Parallel.range(n, Parallel.GRAIN, (lo, hi) -> {
                    for (int i = o + lo; i < o + hi; i++) if (HostArrays.get(a, t, i) <= 0) HostArrays.set(a, t, i, 0);
                });
            }
        }
    }

    /**
     * {dz, db} for y = relu?(z + b) over dim 1 of (N, C, ...): dz = relu ? (y > 0 ? g : 0) : g, db[c] = sum of dz
     * over every dim but 1, accumulated in double, one channel per task (so the order is fixed).
     */
    static Tensor[] biasReluBackward(Tensor g, Tensor y, boolean relu, boolean biasGrad) {
        DTypeChecks.requireAnyFloat("bias_relu_backward", g.dtype());
        Tensor gc = g.isContiguous() ? g : g.detach().contiguousCopy();
        Tensor yc = !relu ? null : y.isContiguous() ? y : y.detach().contiguousCopy();
        int[] shape = g.shape();
        int images = shape[0], c = shape[1];
        int inner = images * c == 0 ? 0 : (int) (g.numel() / ((long) images * c));
        DType t = g.dtype();
        Tensor dz = relu ? newTensor(shape, t) : gc;
        Object ga = contiguousArray("bias_relu_backward", gc), da = contiguousArray("bias_relu_backward", dz);
        Object ya = relu ? contiguousArray("bias_relu_backward", yc) : null;
        int og = gc.offset(), oy = relu ? yc.offset() : 0, od = dz.offset();
        // rows (n, ch) in memory order across the threads, each row's sum kept; then per channel in image order
        double[] rowSums = new double[images * c];
        Parallel.range(images * c, Math.max(1, Parallel.GRAIN / Math.max(inner, 1)), (lo, hi) -> {
            for (int row = lo; row < hi; row++) {
                rowSums[row] = t == DType.FLOAT32
                        ? biasReluRowF32((float[]) ga, og, (float[]) ya, oy, (float[]) da, od, row * inner, inner, relu)
                        : biasReluRow(ga, og, ya, oy, da, od, t, row * inner, inner, relu);
            }
        });
        double[] sums = new double[c];
        for (int ch = 0; ch < c; ch++) {
            for (int n = 0; n < images; n++) sums[ch] += rowSums[n * c + ch];
        }
        Tensor db = null;
        if (biasGrad) {
            db = newTensor(new int[]{c}, t);
            Object ba = contiguousArray("bias_relu_backward", db);
            for (int ch = 0; ch < c; ch++) HostArrays.set(ba, t, ch, sums[ch]);
        }
        return new Tensor[]{dz, db};
    }

    /** One row of biasReluBackward in float32: dz written when relu, the row's sum of dz returned (lane partials). */
    private static double biasReluRowF32(float[] gs, int og, float[] ys, int oy, float[] ds, int od, int from, int inner, boolean relu) {
        FloatVector zero = FloatVector.zero(F), part = zero;
        int k = from, end = from + inner;
        for (; k <= end - F.length(); k += F.length()) {
            FloatVector v = FloatVector.fromArray(F, gs, og + k);
            if (relu) {
                v = v.blend(zero, FloatVector.fromArray(F, ys, oy + k).compare(VectorOperators.GT, 0f).not());
                v.intoArray(ds, od + k);
            }
            part = part.add(v);
        }
        float tail = 0;
        for (; k < end; k++) {
            float v = gs[og + k];
            if (relu) {
                v = ys[oy + k] > 0 ? v : 0f;
                ds[od + k] = v;
            }
            tail += v;
        }
        return Lanes.sum(part) + tail;
    }

    /** The same row for any float dtype, in double. */
    private static double biasReluRow(Object ga, int og, Object ya, int oy, Object da, int od, DType t, int from, int inner, boolean relu) {
        double acc = 0;
        for (int k = from; k < from + inner; k++) {
            double v = HostArrays.get(ga, t, og + k);
            if (relu) {
                if (!(HostArrays.get(ya, t, oy + k) > 0)) v = 0;
                HostArrays.set(da, t, od + k, v);
            }
            acc += v;
        }
        return acc;
    }
}
