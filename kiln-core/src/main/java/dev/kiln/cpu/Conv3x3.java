package dev.kiln.cpu;

import dev.kiln.backend.Conv2dParams;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Part of the Convolution family: float32 3x3 convolutions with many channels (a ResNet's blocks, the small CNNs'
 * second layers), stride 1 or 2, forward and both gradients, without im2col. Each image is copied once into a
 * zero-padded plane per channel, and {@link Conv3x3Kernel} multiplies the packed weights by that copy's rows in place:
 * output position q of a padded row (q = oy·Wp + ox) takes tap (ki, kj) of channel ch from ch·plane + q + ki·Wp + kj.
 * The positions past each row's last output column are computed and dropped when the rows are copied out, where
 * im2col + GEMM wrote and packed a (9·C x P) matrix per image: half of a 32-channel layer's time on two cores.
 * <p>
 * Stride 2 copies each padded plane as its four phase planes (even and odd rows x even and odd columns), where every
 * tap is again a stride-1 read ({@link Conv3x3Kernel.Taps#STRIDE_2}). The input gradient of stride 1 is the same
 * convolution of the output gradient padded by 2 - pad, with the weights transposed and turned half a circle; of
 * stride 2 (pad 1), four products, one per phase of the input, of the output gradient with the 1, 2, 2 and 4 taps that
 * reach that phase, interleaved on the way out. The weight gradient multiplies the same rows by the transposed output
 * gradient. The same phase planes carry the forward of two more stride-2 shapes of a ResNet ({@link #appliesForward}):
 * the stem's 7x7 (49 taps, up to three rows on) and a shortcut's 1x1 (plane P00 alone). A bound {@link WeightCache}
 * keeps the forward's packed weights from call to call. Images go to threads, one at a time each; with fewer images than threads, one image at a time goes to all
 * of them (its blocks of output channels and runs of tiles; for the weight gradient, its input channels).
 */
final class Conv3x3 {
    private Conv3x3() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** This machine's kernel, or null (no machine code here, or kiln.cpu.asm off): then im2col + GEMM runs. */
    static final Conv3x3Kernel KERNEL = Conv3x3Kernel.PREFERRED;
    /** Fewer input channels take {@link DirectConv} or im2col, whose columns are then few. */
    static final int MIN_CHANNELS = 8;

    /**
     * Whether the forward of a convolution with c input channels goes here: those of {@link #applies}, a ResNet stem's
     * 7x7 at stride 2 with pad 3 (any channels: 49 taps each) and a shortcut's 1x1 at stride 2 with many; their
     * gradients take im2col.
     */
    static boolean appliesForward(int c, int kh, int kw, Conv2dParams p) {
        if (applies(c, kh, kw, p)) return true;
        if (KERNEL == null || kh != kw || p.strideH() != 2 || p.strideW() != 2 || p.dilationH() != 1 || p.dilationW() != 1 || p.groups() != 1) return false;
        return kh == 7 && p.padH() == 3 && p.padW() == 3 || kh == 1 && c >= MIN_CHANNELS && p.padH() == 0 && p.padW() == 0;
    }

    /** Whether a convolution with c input channels goes here (also for its gradients): stride 1 with pads up to 2, or stride 2 with pad 1. */
    static boolean applies(int c, int kh, int kw, Conv2dParams p) {
        if (KERNEL == null || kh != 3 || kw != 3 || p.dilationH() != 1 || p.dilationW() != 1 || p.groups() != 1 || c < MIN_CHANNELS) return false;
        if (p.strideH() == 1 && p.strideW() == 1) return p.padH() <= 2 && p.padW() <= 2;
        return p.strideH() == 2 && p.strideW() == 2 && p.padH() == 1 && p.padW() == 1;
    }

    /**
     * What the rows' copy-out adds and applies: bias[bOff + oc], a residual of the output's shape (contiguous, element i
     * at residual[rOff + i]), a ReLU.
     */
    record Epilogue(float[] bias, int bOff, float[] residual, int rOff, boolean relu) {
        static final Epilogue NONE = new Epilogue(null, 0, null, 0, false);
    }

    /**
     * One image's operand as the kernel reads it: an input of h x w per channel copied into planes of rows x rowLen
     * (split: four such phase planes a channel) with top rows and left columns of zeros; its product has oh rows of
     * rowLen positions, the first ow of each kept.
     */
    private record Layout(int h, int w, boolean split, int top, int left, int rowLen, int rows, int oh, int ow, Conv3x3Kernel.Taps taps) {
        /** Stride 1 (3x3): planes padded by ph and pw. */
        static Layout padded(int h, int w, int ph, int pw) {
            return new Layout(h, w, false, ph, pw, w + 2 * pw, h + 2 * ph, h + 2 * ph - 2, w + 2 * pw - 2, Conv3x3Kernel.Taps.STRIDE_1);
        }

        /**
         * Stride 2 (k x k, k = 1, 3 or 7): the planes padded by ph and pw, split into phases; each phase plane (k - 1) / 2
         * rows and columns past the output, as far as the taps read.
         */
        static Layout split(int h, int w, int k, int ph, int pw) {
            int oh = (h + 2 * ph - k) / 2 + 1, ow = (w + 2 * pw - k) / 2 + 1, past = (k - 1) / 2;
            Conv3x3Kernel.Taps taps = switch (k) {
                case 1 -> Conv3x3Kernel.Taps.STRIDE_2_1X1;
                case 3 -> Conv3x3Kernel.Taps.STRIDE_2;
                default -> Conv3x3Kernel.Taps.STRIDE_2_7X7;
            };
            return new Layout(h, w, true, ph, pw, ow + past, oh + past, oh, ow, taps);
        }

        int phase() { return split ? rows * rowLen : 0; }
        int plane() { return (split ? 4 : 1) * rows * rowLen; }
        int positions() { return oh * rowLen; }

        /** Floats of the copy of c channels with room for `last` positions past the first of the last channel's, as taps read. */
        int length(int c, int last, Conv3x3Kernel.Taps taps) {
            return Math.toIntExact(Math.max((long) c * plane(), (long) (c - 1) * plane() + taps.reach(rowLen, phase()) + last));
        }

        /** One image's c planes of h x w (from x[at]) into xp as this layout's planes, then zeros to `length`. */
        void fill(float[] x, int at, int c, float[] xp, int length) {
            fill(x, at, 0, c, xp);
            java.util.Arrays.fill(xp, c * plane(), length, 0f);
        }

        /** The same on all threads, a share of the channels each: for one image at a time (at batch 1 one thread's copy left the other idle). */
        void fillOnAllThreads(float[] x, int at, int c, float[] xp, int length) {
            Parallel.range(c, 1, (lo, hi) -> fill(x, at, lo, hi, xp));
            java.util.Arrays.fill(xp, c * plane(), length, 0f);
        }

        /** Channels [c0, c1) only. */
        private void fill(float[] x, int at, int c0, int c1, float[] xp) {
            if (split) splitInto(x, at, c0, c1, xp);
            else padInto(x, at, c0, c1, xp);
        }

        private void padInto(float[] x, int at, int c0, int c1, float[] xp) {
            int plane = plane();
            for (int ch = c0; ch < c1; ch++) {
                int d = ch * plane, s = at + ch * h * w;
                java.util.Arrays.fill(xp, d, d + top * rowLen + left, 0f);
                d += top * rowLen + left;
                for (int iy = 0; iy < h; iy++, d += rowLen, s += w) {
                    System.arraycopy(x, s, xp, d, w);
                    if (iy < h - 1) java.util.Arrays.fill(xp, d + w, d + rowLen, 0f);
                }
                java.util.Arrays.fill(xp, d - rowLen + w, (ch + 1) * plane, 0f);
            }
        }

        /**
         * Phase plane (a, b) of a channel, at (2a + b)·phase, holds padded[2m + a][2j + b] at m·rowLen + j: the planes
         * zeroed, then each input row's even and odd columns written to their column phases.
         */
        private void splitInto(float[] x, int at, int c0, int c1, float[] xp) {
            int phase = phase();
            java.util.Arrays.fill(xp, c0 * 4 * phase, c1 * 4 * phase, 0f);
            // input column 2t goes to phase b0 at column t + j0, column 2t + 1 to phase 1 - b0 at t + j1
            int b0 = left & 1, j0 = left >> 1, j1 = (left + 1) >> 1, l = F.length();
            // rows of up to 2L floats (most maps that stride 2 meets) take one step, its masks made once
            var first = F.indexInRange(0, w);
            var second = F.indexInRange(l, w);
            var evens = F.indexInRange(0, (w + 1) / 2);
            var odds = F.indexInRange(0, w / 2);
            for (int ch = c0; ch < c1; ch++) {
                for (int iy = 0; iy < h; iy++) {
                    int y = iy + top, row = ch * 4 * phase + 2 * (y & 1) * phase + (y >> 1) * rowLen, s = at + (ch * h + iy) * w;
                    int even = row + b0 * phase + j0, odd = row + (1 - b0) * phase + j1;
                    if (w > 2 * l) {
                        deinterleave(x, s, w, xp, even, odd);
                        continue;
                    }
                    FloatVector v0 = FloatVector.fromArray(F, x, s, first), v1 = w > l ? FloatVector.fromArray(F, x, s + l, second) : v0;
                    EVENS.selectFrom(v0, v1).intoArray(xp, even, evens);
                    ODDS.selectFrom(v0, v1).intoArray(xp, odd, odds);
                }
            }
        }
    }

    /** The layout of a k x k convolution's input at stride 1 or 2. */
    private static Layout layout(int h, int w, int k, int stride, int ph, int pw) {
        return stride == 1 ? Layout.padded(h, w, ph, pw) : Layout.split(h, w, k, ph, pw);
    }

    /**
     * y (n, o, oh, ow), contiguous, = the convolution of x (n, c, h, w, contiguous from xOff) with wt (o, c, k, k,
     * contiguous from wOff; k = 3, or 1 or 7 at stride 2) at stride 1 (oh = h + 2ph - 2) or 2 (oh = (h + 2ph - k) / 2 + 1),
     * then the epilogue: + bias, + residual, ReLU (NaN kept), each where given.
     */
    static void forward(Conv3x3Kernel kernel, float[] x, int xOff, int n, int c, int h, int w, float[] wt, int wOff, int o, int k,
                        int stride, int ph, int pw, Epilogue epilogue, float[] y) {
        if (k != 3 && (k != 7 && k != 1 || stride != 2)) throw new IllegalArgumentException("Conv3x3: a " + k + "x" + k + " filter at stride " + stride);
        Layout l = layout(h, w, k, stride, ph, pw);
        int oh = l.oh(), ow = l.ow();
        int[] at = new int[1];
        int[][] taps = {l.taps().weight};
        WeightCache cache = WeightCache.active();   // one part: at[0] stays 0 when the cache has it
        float[] packed = cache == null ? pack(kernel, wt, wOff, o, c, k, false, taps, at, false)
                : cache.get(wt, new WeightCache.Key(wOff, o, c, java.util.List.of(kernel, l.taps())), () -> pack(kernel, wt, wOff, o, c, k, false, taps, at, true));
        convolve(kernel, x, xOff, n, c, l, new Conv3x3Kernel.Taps[]{l.taps()}, packed, at, o,
                (rows, ldc, part, img, from, to) -> copyOut(rows, ldc, l.rowLen(), from, to, oh, ow, epilogue, y, img * o * oh * ow, false));
    }

    /**
     * gx (x's shape (n, c, h, w), contiguous from gxOff) = (or += when add) the input gradient of that convolution, from
     * gy (n, o, oh, ow, contiguous from gyOff) and the same weights.
     */
    static void backwardInput(Conv3x3Kernel kernel, float[] gy, int gyOff, int n, int o, float[] wt, int wOff, int c, int h, int w,
                              int stride, int ph, int pw, float[] gx, int gxOff, boolean add) {
        Layout fwd = layout(h, w, 3, stride, ph, pw);
        int oh = fwd.oh(), ow = fwd.ow();
        if (stride == 1) {
            Layout l = Layout.padded(oh, ow, 2 - ph, 2 - pw);
            int[] turned = new int[9];
            for (int t = 0; t < 9; t++) turned[t] = 8 - t;
            int[] at = new int[1];
            float[] packed = pack(kernel, wt, wOff, c, o, 3, true, new int[][]{turned}, at, false);
            convolve(kernel, gy, gyOff, n, o, l, new Conv3x3Kernel.Taps[]{Conv3x3Kernel.Taps.STRIDE_1}, packed, at, c,
                    (rows, ldc, part, img, from, to) -> copyOut(rows, ldc, l.rowLen(), from, to, h, w, Epilogue.NONE, gx, gxOff + img * c * h * w, add));
            return;
        }
        // stride 2, pad 1: input rows 2m and 2m + 1 (and columns) read the output gradient's row m and m + 1
        Layout l = new Layout(oh, ow, false, 0, 0, ow + 1, oh + 1, oh, ow, Conv3x3Kernel.Taps.STRIDE_1);
        Conv3x3Kernel.Taps[] taps = Conv3x3Kernel.Taps.STRIDE_2_INPUT;
        int[] at = new int[4];
        float[] packed = pack(kernel, wt, wOff, c, o, 3, true, new int[][]{taps[0].weight, taps[1].weight, taps[2].weight, taps[3].weight}, at, false);
        convolve(kernel, gy, gyOff, n, o, l, taps, packed, at, c,
                (rows, ldc, part, img, from, to) -> interleave(rows, ldc, part, l.rowLen(), from, to, h, w, gx, gxOff + img * c * h * w, add));
    }

    /**
     * gw (o, c, 3, 3), overwritten, = the weight gradient of that convolution, from x (n, c, h, w, contiguous from xOff)
     * and gy (n, o, oh, ow, contiguous from gyOff): per image, gy transposed to (block of NW output channels, position, NW)
     * with the dropped positions zero, and for each block {@link Conv3x3Kernel#weights} over all input channels. Each worker
     * sums its images into its own accumulator; they are added in chunk order.
     */
    static void backwardWeight(Conv3x3Kernel kernel, float[] x, int xOff, int n, int c, int h, int w, float[] gy, int gyOff, int o,
                               int stride, int ph, int pw, float[] gw) {
        Layout l = layout(h, w, 3, stride, ph, pw);
        Conv3x3Kernel.Taps taps = l.taps();
        int oh = l.oh(), ow = l.ow(), wp = l.rowLen(), plane = l.plane(), phase = l.phase(), positions = l.positions();
        int ld = (o + kernel.nw - 1) / kernel.nw * kernel.nw, padded = l.length(c, positions, taps);
        if (n < Parallel.THREADS) {
            // one image at a time, its input channels (disjoint rows of one accumulator) on all threads
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, padded), gyT = ThreadBuffers.get(ThreadBuffers.CONV_GY, positions * ld);
            float[] acc = new float[9 * c * ld];
            for (int img = 0; img < n; img++) {
                l.fillOnAllThreads(x, xOff + img * c * h * w, c, xp, padded);
                transpose(gy, gyOff + img * o * oh * ow, o, oh, ow, wp, kernel.nw, gyT, positions);
                Parallel.range(c, 1, (lo, hi) -> {
                    for (int b = 0; b < ld; b += kernel.nw)
                        kernel.weights(taps, xp, lo * plane, hi - lo, wp, plane, phase, gyT, b * positions, ld, positions, acc, 9 * lo * ld + b);
                });
            }
            ConvolutionCpu.addTransposed(java.util.List.of(acc), gw, 1, o, 9 * c, ld);
            return;
        }
        var accs = new java.util.concurrent.ConcurrentSkipListMap<Integer, float[]>();
        Parallel.balanced(n, (lo, hi) -> {
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, padded), gyT = ThreadBuffers.get(ThreadBuffers.CONV_GY, positions * ld);
            float[] acc = new float[9 * c * ld];
            for (int img = lo; img < hi; img++) {
                l.fill(x, xOff + img * c * h * w, c, xp, padded);
                transpose(gy, gyOff + img * o * oh * ow, o, oh, ow, wp, kernel.nw, gyT, positions);
                for (int b = 0; b < ld; b += kernel.nw) kernel.weights(taps, xp, 0, c, wp, plane, phase, gyT, b * positions, ld, positions, acc, b);
            }
            accs.put(lo, acc);
        });
        ConvolutionCpu.addTransposed(new java.util.ArrayList<>(accs.values()), gw, 1, o, 9 * c, ld);
    }

    /**
     * One image's gy (o, oh, ow) into gyT as blocks of nw output channels, each a row of nw per padded-row position
     * (oy·wp + ox), zero where nothing is kept and past o: a gather of L output channels (one plane apart) a position,
     * stored as one vector (a float at a time took a quarter of a 32-channel weight gradient).
     */
    private static void transpose(float[] gy, int at, int o, int oh, int ow, int wp, int nw, float[] gyT, int positions) {
        java.util.Arrays.fill(gyT, 0, (o + nw - 1) / nw * nw * positions, 0f);
        int l = F.length(), map = oh * ow;
        if (l > nw) {
            // a vector wider than a block: only the 256-bit kernel's tests on a 512-bit machine
            for (int oc = 0; oc < o; oc++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) gyT[oc / nw * nw * positions + (oy * wp + ox) * nw + oc % nw] = gy[at + (oc * oh + oy) * ow + ox];
            return;
        }
        int[] planes = new int[l];
        for (int oc = 0; oc < o; oc += l) {
            // the lanes past the last channel read its plane (the gather checks every lane) and are not stored
            for (int i = 0; i < l; i++) planes[i] = Math.min(i, o - 1 - oc) * map;
            var some = F.indexInRange(oc, o);
            boolean all = oc + l <= o;
            for (int oy = 0, s = at + oc * map; oy < oh; oy++) {
                for (int ox = 0, d = oc / nw * nw * positions + oy * wp * nw + oc % nw; ox < ow; ox++, s++, d += nw) {
                    if (all) FloatVector.fromArray(F, gy, s, planes, 0).intoArray(gyT, d);
                    else FloatVector.fromArray(F, gy, s, planes, 0).intoArray(gyT, d, some);
                }
            }
        }
    }

    /**
     * The weights for `outs` output channels from `ins` input channels in the kernel's A layout, for each part p one
     * after another from at[p]: for each block of output channels ({@link Conv3x3Kernel#blocks}: R = MR or SHORT of
     * them), for each (ch, t), R values (rows past outs zero), t multiplying weight tap taps[p][t] of the k x k filter.
     * transposed: the input gradient's weights, w'[oc][ch] = wt[ch][oc].
     * Packed on all threads (at batch 1 one thread's packing took a quarter of a ResNet-18's time) into a new array to
     * keep, or else into the calling thread's CONV_WEIGHTS buffer.
     */
    private static float[] pack(Conv3x3Kernel kernel, float[] wt, int wOff, int outs, int ins, int k, boolean transposed, int[][] taps, int[] at,
                                boolean keep) {
        int[] heights = kernel.blocks(outs), first = firsts(heights);
        int blocks = heights.length, rows = first[blocks], parts = taps.length, total = 0;
        for (int p = 0; p < parts; p++) {
            at[p] = total;
            total += rows * taps[p].length * ins;
        }
        float[] packed = keep ? new float[total] : ThreadBuffers.get(ThreadBuffers.CONV_WEIGHTS, total);
        Parallel.range(parts * blocks, 1, (lo, hi) -> {
            for (int pb = lo; pb < hi; pb++) {
                int p = pb / blocks, b = pb % blocks, n = taps[p].length, depth = n * ins, mr = heights[b];
                for (int i = 0; i < mr; i++) {
                    int oc = first[b] + i, base = at[p] + first[b] * depth + i;
                    for (int ch = 0; ch < ins; ch++) {
                        int w = wOff + (transposed ? ch * outs + oc : oc * ins + ch) * k * k;
                        for (int t = 0; t < n; t++) packed[base + (n * ch + t) * mr] = oc < outs ? wt[w + taps[p][t]] : 0f;
                    }
                }
            }
        });
        return packed;
    }

    /** The first row of each block of these heights, and past the last their sum. */
    private static int[] firsts(int[] heights) {
        int[] first = new int[heights.length + 1];
        for (int b = 0; b < heights.length; b++) first[b + 1] = first[b] + heights[b];
        return first;
    }

    /** Takes output channels [from, to) of image img out of the rows (part p's at p·part). */
    private interface CopyOut {
        void copy(float[] rows, int ldc, int part, int img, int from, int to);
    }

    /**
     * Per image: its cin channels copied into layout l, then for each part p (its taps, its packed weights from
     * packed[at[p]], `outs` output channels) the rows of all tiles, then `out` takes them.
     */
    private static void convolve(Conv3x3Kernel kernel, float[] in, int inOff, int n, int cin, Layout l, Conv3x3Kernel.Taps[] taps,
                                 float[] packed, int[] at, int outs, CopyOut out) {
        int rowLen = l.rowLen(), plane = l.plane(), phase = l.phase(), image = cin * l.h() * l.w(), parts = taps.length;
        int[] heights = kernel.blocks(outs), first = firsts(heights);
        int tiles = (l.positions() + kernel.nr - 1) / kernel.nr, ldc = tiles * kernel.nr, blocks = heights.length;
        int padded = 0, part = first[blocks] * ldc;
        for (Conv3x3Kernel.Taps t : taps) padded = Math.max(padded, l.length(cin, ldc, t));
        int length = padded;
        if (n < Parallel.THREADS) {
            // one image at a time, its parts' blocks' runs of tiles on all threads
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, length);
            float[] rows = ThreadBuffers.get(ThreadBuffers.CONV_OUT, parts * part);
            for (int img = 0; img < n; img++) {
                l.fillOnAllThreads(in, inOff + img * image, cin, xp, length);
                Parallel.range(parts * blocks * tiles, 1, (lo, hi) -> {
                    for (int t = lo; t < hi; ) {
                        int p = t / (blocks * tiles), b = t / tiles % blocks, tile = t % tiles, count = Math.min(tiles - tile, hi - t);
                        kernel.row(taps[p], heights[b], packed, at[p] + first[b] * taps[p].count() * cin, cin, xp, tile * kernel.nr, rowLen, plane,
                                phase, rows, p * part + first[b] * ldc + tile * kernel.nr, ldc, count);
                        t += count;
                    }
                });
                int i = img;
                Parallel.range(outs, 1, (lo, hi) -> out.copy(rows, ldc, part, i, lo, hi));
            }
            return;
        }
        Parallel.balanced(n, (lo, hi) -> {
            float[] xp = ThreadBuffers.get(ThreadBuffers.CONV_COLS, length);
            float[] rows = ThreadBuffers.get(ThreadBuffers.CONV_OUT, parts * part);
            for (int img = lo; img < hi; img++) {
                l.fill(in, inOff + img * image, cin, xp, length);
                for (int p = 0; p < parts; p++) {
                    for (int b = 0; b < blocks; b++) {
                        kernel.row(taps[p], heights[b], packed, at[p] + first[b] * taps[p].count() * cin, cin, xp, 0, rowLen, plane, phase, rows,
                                p * part + first[b] * ldc, ldc, tiles);
                    }
                }
                out.copy(rows, ldc, part, img, 0, outs);
            }
        });
    }

    /**
     * out[oc][oy][0..ow) = (or += when add) rows[oc·ldc + oy·wp + 0..ow), then the epilogue, for oc in [from, to): each
     * padded row's kept positions. The epilogue's sums run in the order of the separate passes it replaces (conv + bias,
     * + residual, ReLU), so the values are theirs.
     */
    private static void copyOut(float[] rows, int ldc, int wp, int from, int to, int oh, int ow, Epilogue e, float[] out, int at, boolean add) {
        float[] bias = e.bias(), res = e.residual();
        for (int oc = from; oc < to; oc++) {
            float b = bias == null ? 0f : bias[e.bOff() + oc];
            for (int oy = 0; oy < oh; oy++) {
                int s = oc * ldc + oy * wp, d = at + (oc * oh + oy) * ow;
                if (add) Sgemm.addRow(rows, s, out, d, ow);
                else if (bias != null) biasRow(rows, s, b, out, d, ow);
                else System.arraycopy(rows, s, out, d, ow);
            }
            // the rest over the channel's whole plane: rows of 7-30 floats left most of a vector loop to its scalar tail
            int plane = at + oc * oh * ow;
            if (res != null) Sgemm.addRow(res, e.rOff() + plane, out, plane, oh * ow);
            if (e.relu()) ConvolutionCpu.reluRow(out, plane, oh * ow);
        }
    }

    /**
     * gx[ch][y][x] for ch in [from, to) = (or += when add) the stride-2 input gradient's part (y % 2, x % 2) at
     * (y / 2)·rowLen + x / 2 of channel ch's rows (part p at p·blocks·MR·ldc, blocks of the channels).
     */
    private static void interleave(float[] rows, int ldc, int part, int rowLen, int from, int to, int h, int w, float[] gx, int at, boolean add) {
        int l = F.length();
        // rows of up to 2L floats take one step, its masks made once (as Layout.splitInto)
        var evens = F.indexInRange(0, (w + 1) / 2);
        var odds = F.indexInRange(0, w / 2);
        var first = F.indexInRange(0, w);
        var second = F.indexInRange(l, w);
        for (int ch = from; ch < to; ch++) {
            for (int y = 0; y < h; y++) {
                int even = (y & 1) * 2 * part + ch * ldc + (y >> 1) * rowLen, d = at + (ch * h + y) * w;
                if (w > 2 * l) {
                    interleave(rows, even, even + part, gx, d, w, add);
                    continue;
                }
                FloatVector e = FloatVector.fromArray(F, rows, even, evens), o = FloatVector.fromArray(F, rows, even + part, odds);
                FloatVector lo = ZIP_LOWER.selectFrom(e, o);
                if (add) lo = lo.add(FloatVector.fromArray(F, gx, d, first));
                lo.intoArray(gx, d, first);
                if (w > l) {
                    FloatVector hi = ZIP_UPPER.selectFrom(e, o);
                    if (add) hi = hi.add(FloatVector.fromArray(F, gx, d + l, second));
                    hi.intoArray(gx, d + l, second);
                }
            }
        }
    }

    /** Lane indices into two vectors (the second's from L on): their even lanes, odd lanes, and the zip of their lower and of their upper halves. */
    private static final FloatVector EVENS = lanes(i -> 2 * i), ODDS = lanes(i -> 2 * i + 1),
            ZIP_LOWER = lanes(i -> i / 2 + i % 2 * F.length()), ZIP_UPPER = lanes(i -> F.length() / 2 + i / 2 + i % 2 * F.length());

    private static FloatVector lanes(java.util.function.IntUnaryOperator index) {
        float[] ix = new float[F.length()];
        for (int i = 0; i < ix.length; i++) ix[i] = index.applyAsInt(i);
        return FloatVector.fromArray(F, ix, 0);
    }

    /**
     * x[s + 2t] to dst[even + t], x[s + 2t + 1] to dst[odd + t], for n >= 2L floats from x[s]: whole steps, the last
     * one ending at the last pair (rewriting what the one before wrote: no masked stores, which 256-bit code does not
     * all compile), and an odd last float alone.
     */
    private static void deinterleave(float[] x, int s, int n, float[] dst, int even, int odd) {
        int l = F.length(), pairs = n / 2;
        for (int t = 0; ; t += l) {
            int at = Math.min(t, pairs - l);
            FloatVector v0 = FloatVector.fromArray(F, x, s + 2 * at), v1 = FloatVector.fromArray(F, x, s + 2 * at + l);
            EVENS.selectFrom(v0, v1).intoArray(dst, even + at);
            ODDS.selectFrom(v0, v1).intoArray(dst, odd + at);
            if (at + l >= pairs) break;
        }
        if (n % 2 == 1) dst[even + pairs] = x[s + n - 1];
    }

    /**
     * dst[d + 2t] = (or +=) src[even + t], dst[d + 2t + 1] = (or +=) src[odd + t], for n >= 2L floats of dst: whole steps,
     * then the rest as deinterleave does, or (adding) one float at a time.
     */
    private static void interleave(float[] src, int even, int odd, float[] dst, int d, int n, boolean add) {
        int l = F.length(), i = 0;
        for (; i + 2 * l <= n; i += 2 * l) {
            FloatVector e = FloatVector.fromArray(F, src, even + i / 2), o = FloatVector.fromArray(F, src, odd + i / 2);
            FloatVector lo = ZIP_LOWER.selectFrom(e, o), hi = ZIP_UPPER.selectFrom(e, o);
            if (add) {
                lo = lo.add(FloatVector.fromArray(F, dst, d + i));
                hi = hi.add(FloatVector.fromArray(F, dst, d + i + l));
            }
            lo.intoArray(dst, d + i);
            hi.intoArray(dst, d + i + l);
        }
        if (i < n && !add) {
            // the last pairs as one whole step ending there (rewriting what the step before wrote), an odd last float alone
            int at = (n / 2 - l) * 2;
            FloatVector e = FloatVector.fromArray(F, src, even + at / 2), o = FloatVector.fromArray(F, src, odd + at / 2);
            ZIP_LOWER.selectFrom(e, o).intoArray(dst, d + at);
            ZIP_UPPER.selectFrom(e, o).intoArray(dst, d + at + l);
            if (n % 2 == 1) dst[d + n - 1] = src[even + n / 2];
        } else {
            for (; i < n; i++) dst[d + i] += src[((i & 1) == 0 ? even : odd) + i / 2];   // adding: fewer than 2L left, one by one
        }
    }

    /** dst[d..d+len) = src[s..s+len) + b. */
    private static void biasRow(float[] src, int s, float b, float[] dst, int d, int len) {
        FloatVector bv = FloatVector.broadcast(F, b);
        int j = 0;
        for (; j + F.length() <= len; j += F.length()) FloatVector.fromArray(F, src, s + j).add(bv).intoArray(dst, d + j);
        for (; j < len; j++) dst[d + j] = src[s + j] + b;
    }
}
