package dev.kiln.cpu;

import jdk.incubator.vector.FloatVector;

/**
 * Part of the Matmul family: the float32 engine of {@link MatmulCpu} (also used by {@link ConvolutionCpu}).
 * GEMM in the Goto/BLIS shape: C = A·B is cut into KC-deep slabs; for each slab the rows of A (up to 2 MB of
 * them at once) are packed into MR-tall row panels, then each KC x NC block of B into NR-wide column panels, and
 * the micro-kernel ({@link SgemmKernel}) walks the panels. Packing reads any strides, so transposed views cost nothing extra, and
 * it makes every inner-loop load unit-stride. Each A micro-panel (MR x KC) stays in L1 while it sweeps the whole
 * packed B block, which stays in L2. (The BLIS order, a B micro-panel in L1, measured slower here: at NR = 32 the
 * KC x NR panel is 32 KB, all of L1.) The tile shape and block sizes come from the kernel, one per vector width;
 * {@link #PREFERRED} runs on the machine's preferred width, and tests build engines on the narrower ones.
 */
final class Sgemm {
    /** The engine on this machine's preferred vector width, machine code where it runs (see {@link SgemmKernel#forSpecies}). */
    static final Sgemm PREFERRED = new Sgemm(SgemmKernel.forSpecies(FloatVector.SPECIES_PREFERRED), 1 << 19, 1 << 22);

    private static final jdk.incubator.vector.VectorSpecies<Float> EIGHT = FloatVector.SPECIES_256;

    /** The micro-kernel, and its tile and block sizes copied into final fields. */
    final SgemmKernel kernel;
    final int MR, NR, KC, MC, NC;
    /** Floats of A packed at once, at least MC rows: 2 MB, one 256-deep slab of 2048 rows. */
    private final int aSlab;
    /** Floats of B packed at once for all threads (see {@link #rowsSharingB}): 16 MB, a 2048 x 2048 B in one go. */
    private final int sharedB;

    /** An engine on the given kernel: tests use this to run the narrower widths on any machine (and small blocks). */
    Sgemm(SgemmKernel kernel, int aSlab, int sharedB) {
        this.kernel = kernel;
        this.aSlab = aSlab;
        this.sharedB = sharedB;
        MR = kernel.mr;
        NR = kernel.nr;
        KC = kernel.kc;
        MC = kernel.mc;
        NC = kernel.nc;
    }

    /**
     * Below this many multiply-adds one thread does the whole product: a fork-join round trip costs 25-45 us here,
     * and 128x128x128 (2M) ran in 55 us on one thread against 60-90 us on two. 128x784x128 (13M) gains from two.
     */
    private static final long PARALLEL_MACS = 1 << 22;

    /** A float32 matrix view: element (i, j) is data[off + i*rs + j*cs]. */
    record Mat(float[] data, int off, int rs, int cs) {
        Mat at(int i, int j) { return new Mat(data, off + i * rs + j * cs, rs, cs); }
    }

    /** A fresh set of packing buffers for one thread. */
    Scratch scratch() { return new Scratch(MR * NR); }

    private final ThreadLocal<Scratch> scratches = ThreadLocal.withInitial(this::scratch);

    /**
     * The calling thread's packing buffers, kept from call to call (a fresh pair per call cost an allocation and
     * zeroing of up to 1 MB per thread per product). Not reentrant: hold it only across this engine's own gemm.
     */
    Scratch localScratch() { return scratches.get(); }

    /**
     * One thread's packing buffers, grown on demand and reused for every block that thread packs; {@code shared} holds
     * the B that {@link #rowsSharingB} packs for all threads when this thread calls it, {@code partials} the parts of
     * a {@link #splitK} product this thread calls.
     */
    static final class Scratch {
        float[] a = new float[0], b = new float[0], shared = new float[0];
        float[][] partials = new float[0][];
        final float[] tile;

        Scratch(int tileLen) { tile = new float[tileLen]; }

        void ensure(int aLen, int bLen) {
            if (a.length < aLen) a = new float[aLen];
            if (b.length < bLen) b = new float[bLen];
        }
    }

    /**
     * Batched product into a contiguous c of (batch, m, n). a's matrices start aBatch apart, b's bBatch apart (0 for
     * a broadcast operand). Work is split over threads by batch or, inside each matrix, by column or row strips.
     */
    void batched(int batch, int m, int n, int k, Mat a, int aBatch, Mat b, int bBatch, float[] c, int cOff) {
        batched(batch, m, n, k, a, aBatch, b, bBatch, c, cOff, n, false);
    }

    /** C = A·B (or C += A·B) on all threads; C's rows are ldc apart and its matrices m*ldc apart. */
    void batched(int batch, int m, int n, int k, Mat a, int aBatch, Mat b, int bBatch, float[] c, int cOff,
                        int ldc, boolean accumulate) {
        if (Sgemv.applies(m, b)) {
            Sgemv.product(batch, n, k, a, aBatch, b, bBatch, c, cOff, ldc, accumulate);
            return;
        }
        int threads = Parallel.THREADS;
        long macs = (long) batch * m * n * k;
        boolean splitInside = batch < 4 * threads && batch % threads != 0;
        int parts = macs < PARALLEL_MACS || !splitInside ? 1 : threads;
        // Splitting columns means every thread packs all of A; splitting rows, all of B: repack the smaller one,
        // B on a tie (its panels are whole-vector copies, A's a transpose: rows measured 2-4% ahead at 1024-2048)
        boolean byColumns = n > m ? n >= parts * NR : m < parts * MR;
        if (batch == 1 && parts > 1 && k >= SPLIT_K_FROM * Math.max(m, n) && k >= SPLIT_K_DEPTH * parts && (long) parts * m * n <= SPLIT_K_FLOATS) {
            splitK(m, n, k, a, b, c, cOff, ldc, accumulate, parts);
            return;
        }
        if (batch == 1 && parts >= SHARE_B_FROM && !byColumns) {
            rowsSharingB(m, n, k, a, b, c, cOff, ldc, accumulate, parts);
            return;
        }
        int tasks = batch * parts;
        int grain = macs < PARALLEL_MACS ? tasks : 1;
        Parallel.range(tasks, grain, (lo, hi) -> {
            Scratch s = localScratch();
            for (int t = lo; t < hi; t++) {
                int p = t / parts, part = t % parts;
                Mat ap = new Mat(a.data, a.off + p * aBatch, a.rs, a.cs), bp = new Mat(b.data, b.off + p * bBatch, b.rs, b.cs);
                int co = cOff + p * m * ldc;
                if (byColumns) {
                    int j0 = split(n, parts, part, NR), j1 = split(n, parts, part + 1, NR);
                    gemm(m, j1 - j0, k, ap, bp.at(0, j0), c, co + j0, ldc, accumulate, s);
                } else {
                    int i0 = split(m, parts, part, MR), i1 = split(m, parts, part + 1, MR);
                    gemm(i1 - i0, n, k, ap.at(i0, 0), bp, c, co + i0 * ldc, ldc, accumulate, s);
                }
            }
        });
    }

    /**
     * Threads from which a row split packs B once for all ({@link #rowsSharingB}). Two threads each packing B keep
     * their own block hot in L2: 3-4% ahead at 512 bits on this project's two cores, the same at 256.
     */
    private static final int SHARE_B_FROM = 4;

    /**
     * One product split into row strips over the threads, B packed once for all of them: strips that each packed all
     * of B read it once a thread (on a 16-core Xeon at 512 bits, 0.87 / 0.73x OpenBLAS at 1024 / 2048 shared against
     * 0.70-0.75 / 0.62-0.72x each on its own). Per group of columns (all of them
     * when k x n fits {@link #sharedB} floats), the threads pack B's panels between them, then each runs its rows
     * against the whole packed group. The buffer belongs to the calling thread, which waits for both.
     */
    void rowsSharingB(int m, int n, int k, Mat a, Mat b, float[] c, int co, int ldc, boolean accumulate, int parts) {
        int group = Math.max(NR, Math.min(roundUp(n, NR), sharedB / k / NR * NR));
        Scratch own = localScratch();
        if (own.shared.length < group * k) own.shared = new float[group * k];
        float[] pb = own.shared;
        int slabs = (k + KC - 1) / KC;
        for (int j0 = 0; j0 < n; j0 += group) {
            int cols = Math.min(group, n - j0), wPad = roundUp(cols, NR), panels = wPad / NR, first = j0;
            Parallel.range(slabs * panels, 1, (lo, hi) -> {
                for (int t = lo; t < hi; t++) {
                    int pc = t / panels * KC, jp = t % panels * NR, kc = Math.min(KC, k - pc);
                    packB(b, pc, first + jp, kc, Math.min(NR, cols - jp), pb, pc * wPad + jp * kc);
                }
            });
            Parallel.range(parts, 1, (lo, hi) -> {
                Scratch s = localScratch();
                for (int part = lo; part < hi; part++) {
                    int i0 = split(m, parts, part, MR), i1 = split(m, parts, part + 1, MR);
                    blocks(i1 - i0, cols, k, a.at(i0, 0), null, pb, wPad, 0, c, co + i0 * ldc + first, ldc, accumulate, s);
                }
            });
        }
    }

    /**
     * C (+)= A·B for B (k x n) packed whole beforehand ({@link #packAllB}), split over the threads by columns: for
     * products that reuse one B many times with few rows of A (an LSTM's h·W_hhᵀ every step), where packing B on
     * each call costs as much as the product.
     */
    void packedB(int m, int n, int k, Mat a, float[] pb, float[] c, int co, int ldc, boolean accumulate) {
        int nPad = roundUp(n, NR);
        int parts = (long) m * n * k < PARALLEL_MACS ? 1 : Math.max(1, Math.min(Parallel.THREADS, nPad / NR));
        Parallel.range(parts, 1, (lo, hi) -> {
            for (int part = lo; part < hi; part++) {
                int j0 = split(n, parts, part, NR), j1 = split(n, parts, part + 1, NR);
                packedColumns(m, j1 - j0, k, a, pb, nPad, j0, c, co + j0, ldc, accumulate);
            }
        });
    }

    /**
     * C (+)= A·B for A (m x k) packed whole beforehand ({@link #packAllA}: a kept weight), on all threads: by columns,
     * each thread packing its own columns of B, or (B narrower than a panel a thread) by rows against B packed once.
     * The same tiles and k order as {@link #blocks}, so the same sums as a product that packs A itself (but not as
     * {@link #splitK}'s).
     */
    void packedA(int m, int n, int k, float[] pa, Mat b, float[] c, int co, int ldc, boolean accumulate) {
        int mPad = roundUp(m, MR), parts = (long) m * n * k < PARALLEL_MACS ? 1 : Parallel.THREADS;
        if (n >= parts * NR) {
            Parallel.range(parts, 1, (lo, hi) -> {
                Scratch s = localScratch();
                for (int part = lo; part < hi; part++) {
                    int j0 = split(n, parts, part, NR), j1 = split(n, parts, part + 1, NR), nPad = roundUp(j1 - j0, NR);
                    s.ensure(0, nPad * k);
                    packAllB(b.at(0, j0), k, j1 - j0, s.b);
                    packedBoth(m, j1 - j0, k, pa, mPad, 0, s.b, nPad, 0, c, co + j0, ldc, accumulate, s.tile);
                }
            });
            return;
        }
        int nPad = roundUp(n, NR);
        Scratch own = localScratch();
        own.ensure(0, nPad * k);
        packAllB(b, k, n, own.b);
        Parallel.range(parts, 1, (lo, hi) -> {
            float[] tile = localScratch().tile;
            for (int part = lo; part < hi; part++) {
                int i0 = split(m, parts, part, MR), i1 = split(m, parts, part + 1, MR);
                packedBoth(i1 - i0, n, k, pa, mPad, i0, own.b, nPad, 0, c, co + i0 * ldc, ldc, accumulate, tile);
            }
        });
    }

    /**
     * C (+)= A·B on the calling thread for B (k x nPad) packed whole beforehand ({@link #packAllB} or panel by panel in
     * that layout), taking its columns [j0, j0 + n), j0 on a panel.
     */
    void packedColumns(int m, int n, int k, Mat a, float[] pb, int nPad, int j0, float[] c, int co, int ldc, boolean accumulate) {
        blocks(m, n, k, a, null, pb, nPad, j0, c, co, ldc, accumulate, localScratch());
    }

    /**
     * A product deeper than this many times its larger side is split along k ({@link #splitK}): a weight gradient
     * gᵀ·x over a batch of 16384 rows, 1536 x 16384 x 384, ran at 0.65x PyTorch's on 16 cores split by rows.
     */
    private static final int SPLIT_K_FROM = 4;

    /**
     * ... and each thread's slice of k at least this deep, so that its partial C is written and added back a few times
     * over a long product: an LSTM's dW_hh (2048 x 8192 x 512, 512 deep a thread on 16) ran slower split.
     */
    private static final int SPLIT_K_DEPTH = 1024;

    /** At most this many floats of partial products (64 MB) are kept for {@link #splitK}, by the calling thread. */
    private static final long SPLIT_K_FLOATS = 1 << 24;

    /**
     * One deep product split along k over the threads: each multiplies its slice of A's columns and B's rows into a
     * whole m x n partial C of its own (both slices small enough to pack and keep near its core), then the partials are
     * added into C in part order, so one input gives one result for a given thread count.
     */
    private void splitK(int m, int n, int k, Mat a, Mat b, float[] c, int co, int ldc, boolean accumulate, int parts) {
        Scratch own = localScratch();
        if (own.partials.length < parts) own.partials = java.util.Arrays.copyOf(own.partials, parts);
        float[][] partial = own.partials;
        for (int p = 0; p < parts; p++) if (partial[p] == null || partial[p].length < m * n) partial[p] = new float[m * n];
        Parallel.range(parts, 1, (lo, hi) -> {
            Scratch s = localScratch();
            for (int part = lo; part < hi; part++) {
                int k0 = split(k, parts, part, KC), k1 = split(k, parts, part + 1, KC);
                gemm(m, n, k1 - k0, a.at(0, k0), b.at(k0, 0), partial[part], 0, n, false, s);
            }
        });
        Parallel.range(m, Math.max(1, Parallel.GRAIN / Math.max(1, n)), (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                int ci = co + i * ldc, pi = i * n;
                if (!accumulate) System.arraycopy(partial[0], pi, c, ci, n);
                for (int p = accumulate ? 0 : 1; p < parts; p++) addRow(partial[p], pi, c, ci, n);
            }
        });
    }

    /** c[ci ..] += x[xi ..] over n values (also the convolutions' accumulators and epilogue). */
    static void addRow(float[] x, int xi, float[] c, int ci, int n) {
        var sp = FloatVector.SPECIES_PREFERRED;
        int j = 0;
        for (int bound = sp.loopBound(n); j < bound; j += sp.length()) {
            FloatVector.fromArray(sp, c, ci + j).add(FloatVector.fromArray(sp, x, xi + j)).intoArray(c, ci + j);
        }
        for (; j < n; j++) c[ci + j] += x[xi + j];
    }

    /** Start of strip `part` of `parts` over [0, len), on a multiple of unit so strips hold whole tiles. */
    static int split(int len, int parts, int part, int unit) {
        if (part >= parts) return len;
        int units = (len + unit - 1) / unit;
        return Math.min(len, (int) ((long) units * part / parts) * unit);
    }

    /**
     * C = A·B, or C += A·B when accumulate, on the calling thread. C is row-major with row stride ldc starting at
     * c[co]; A (m x k) and B (k x n) are any strided views.
     */
    void gemm(int m, int n, int k, Mat a, Mat b, float[] c, int co, int ldc, boolean accumulate, Scratch s) {
        blocks(m, n, k, a, b, null, 0, 0, c, co, ldc, accumulate, s);
    }

    /**
     * The blocked product on the calling thread: B packed block by block into the scratch, or (b null) already packed
     * in the fully packed layout in pb, nPad columns wide (see {@link #packedLength}), from packed column pbCol on.
     */
    private void blocks(int m, int n, int k, Mat a, Mat b, float[] pb, int nPad, int pbCol, float[] c, int co, int ldc, boolean accumulate, Scratch s) {
        if (m == 0 || n == 0) return;
        if (k == 0) {
            if (!accumulate) for (int i = 0; i < m; i++) java.util.Arrays.fill(c, co + i * ldc, co + i * ldc + n, 0f);
            return;
        }
        int kcMax = Math.min(k, KC);
        // A is packed once per slab for all of B's column blocks, in blocks of up to aSlab floats: packing it
        // again for every NC columns (the textbook jc-pc-ic order) cost 3-5% at 1024-2048 on one 256-bit core
        int rows = Math.max(MC, aSlab / kcMax / MR * MR);
        s.ensure(roundUp(Math.min(m, rows), MR) * kcMax, b == null ? 0 : roundUp(Math.min(n, NC), NR) * kcMax);
        for (int pc = 0; pc < k; pc += KC) {
            int kc = Math.min(KC, k - pc);
            for (int ic = 0; ic < m; ic += rows) {
                int mc = Math.min(rows, m - ic);
                packA(a, ic, pc, mc, kc, s.a);
                for (int jc = 0; jc < n; jc += NC) {
                    int nc = Math.min(NC, n - jc);
                    if (b != null) packB(b, pc, jc, kc, nc, s.b);
                    macro(mc, nc, kc, s.a, 0, b != null ? s.b : pb, b != null ? 0 : pc * nPad + (pbCol + jc) * kc, s.tile,
                            c, co + ic * ldc + jc, ldc, accumulate || pc > 0);
                }
            }
        }
    }

    static int roundUp(int x, int unit) { return (x + unit - 1) / unit * unit; }

    /**
     * All tiles of one packed A block (row panel r at pa[aOff + r*kc]) against one packed B block (column panel j at
     * pb[bOff + j*kc]), row panel by row panel. Edge tiles go through the scratch tile.
     */
    private void macro(int mc, int nc, int kc, float[] pa, int aOff, float[] pb, int bOff, float[] tile,
                              float[] c, int co, int ldc, boolean accumulate) {
        int fullColumns = nc / NR;
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = Math.min(MR, mc - ir);
            int ci = co + ir * ldc;
            int full = mr == MR ? fullColumns : 0;
            if (full > 0) kernel.row(kc, pa, aOff + ir * kc, pb, bOff, c, ci, ldc, full, accumulate);
            for (int jr = full * NR; jr < nc; jr += NR) {
                kernel.tile(kc, pa, aOff + ir * kc, pb, bOff + jr * kc, tile, 0, NR, false);
                addEdge(tile, mr, Math.min(NR, nc - jr), c, ci + jr, ldc, accumulate);
            }
        }
    }

    // ---------------------------------------------------------------- fully packed operands

    /**
     * The layout of a whole packed operand, for callers that pack once and multiply many times (convolution packs
     * its weights once per call, and writes im2col straight into this layout): KC-deep slabs one after another,
     * slab starting at row p0 at p0 * roundUp(len, unit), holding panels of unit rows (A) or columns (B).
     */
    static int packedLength(int len, int k, int unit) { return roundUp(len, unit) * k; }

    /** Packs all of A (m x k) in the fully packed layout, MR-row panels. */
    float[] packAllA(Mat a, int m, int k) {
        float[] dst = new float[packedLength(m, k, MR)];
        for (int pc = 0; pc < k; pc += KC) packA(a, 0, pc, m, Math.min(KC, k - pc), dst, pc * roundUp(m, MR));
        return dst;
    }

    /** Packs all of B (k x n) into dst in the fully packed layout, NR-column panels. */
    void packAllB(Mat b, int k, int n, float[] dst) {
        for (int pc = 0; pc < k; pc += KC) packB(b, pc, 0, Math.min(KC, k - pc), n, dst, pc * roundUp(n, NR));
    }

    /** C (+)= A·B for A and B both fully packed (see {@link #packedLength}), on the calling thread. */
    void gemmPacked(int m, int n, int k, float[] pa, float[] pb, float[] c, int co, int ldc, boolean accumulate, float[] tile) {
        packedBoth(m, n, k, pa, roundUp(m, MR), 0, pb, roundUp(n, NR), 0, c, co, ldc, accumulate, tile);
    }

    /**
     * C (+)= A·B on the calling thread for both operands fully packed: rows [i0, i0 + m) of an A packed mPad rows tall,
     * columns [j0, j0 + n) of a B packed nPad wide (i0 and j0 on panels). The same tiles in the same order as
     * {@link #blocks} packing A itself, so the same sums.
     */
    void packedBoth(int m, int n, int k, float[] pa, int mPad, int i0, float[] pb, int nPad, int j0, float[] c, int co, int ldc,
                    boolean accumulate, float[] tile) {
        for (int pc = 0; pc < k; pc += KC) {
            int kc = Math.min(KC, k - pc);
            // NC-wide column blocks, so the part of B one A panel sweeps stays in L2
            for (int jc = 0; jc < n; jc += NC) {
                macro(m, Math.min(NC, n - jc), kc, pa, pc * mPad + i0 * kc, pb, pc * nPad + (j0 + jc) * kc, tile, c, co + jc, ldc, accumulate || pc > 0);
            }
        }
    }

    /**
     * Packs the block rows [i0, i0 + rows) x columns [q0, q1) of A (m x k) into its place in the fully packed layout
     * ({@link #packedLength}), i0 on a panel: panel by panel and slab by slab, as {@link #packA} packs a whole panel.
     */
    void packBlock(Mat a, int i0, int rows, int q0, int q1, int m, int k, float[] dst) {
        int mPad = roundUp(m, MR);
        for (int ip = 0; ip < rows; ip += MR) {
            for (int q = q0; q < q1; ) {
                int pc = q / KC * KC, kc = Math.min(KC, k - pc), end = Math.min(q1, pc + kc);
                packA(a, i0 + ip, q, Math.min(MR, rows - ip), end - q, dst, pc * mPad + (i0 + ip) * kc + (q - pc) * MR);
                q = end;
            }
        }
    }

    /** Copies (or adds) the valid mr x nr corner of a scratch tile into C. */
    private void addEdge(float[] tile, int mr, int nr, float[] c, int ci, int ldc, boolean accumulate) {
        for (int i = 0; i < mr; i++) {
            for (int j = 0; j < nr; j++) {
                float v = tile[i * NR + j];
                c[ci + i * ldc + j] = accumulate ? c[ci + i * ldc + j] + v : v;
            }
        }
    }

    /** Packs A[i0 .. i0+mc) x [p0 .. p0+kc) as MR-row panels: panel r at dst[r*kc], value (i, k) at k*MR + i. */
    void packA(Mat a, int i0, int p0, int mc, int kc, float[] dst) { packA(a, i0, p0, mc, kc, dst, 0); }

    /** packA into dst from dstOff on. */
    void packA(Mat a, int i0, int p0, int mc, int kc, float[] dst, int dstOff) {
        float[] src = a.data;
        int first = 0;
        if (a.rs == 1 && a.cs != 1) {
            // column-major (a transposed view, as the weight gradients' gᵀ): each k's MR values of a panel are contiguous
            // in the source (MR = 8: one 256-bit move, cheaper than an arraycopy), k's a whole column apart. Eight k's
            // at a time across all the full panels, so the source is read as eight streams; panel by panel, all of kc
            // at once, read 32 bytes a column apart (every load a new line and page): a fifth of a 16-core LSTM step
            first = mc / MR * MR;
            for (int q0 = 0; q0 < kc; q0 += 8) {
                int q1 = Math.min(kc, q0 + 8);
                for (int ip = 0; ip < first; ip += MR) {
                    int o = dstOff + ip * kc, base = a.off + i0 + ip + p0 * a.cs;
                    if (MR == 8) {
                        for (int q = q0; q < q1; q++) FloatVector.fromArray(EIGHT, src, base + q * a.cs).intoArray(dst, o + q * 8);
                    } else {
                        for (int q = q0; q < q1; q++) System.arraycopy(src, base + q * a.cs, dst, o + q * MR, MR);
                    }
                }
            }
        }
        for (int ip = first; ip < mc; ip += MR) {
            int rows = Math.min(MR, mc - ip), o = dstOff + ip * kc;
            int base = a.off + (i0 + ip) * a.rs + p0 * a.cs;
            if (a.cs == 1 && rows == MR && MR == 8) { // (both copies below assume MR = 8)
                // row-major full panel: 16 columns at a time with vector lane selects, the rest one by one
                int q0 = 0;
                if (Interleave8.AVAILABLE && kernel.species.vectorBitSize() == 512) {
                    for (; q0 + 16 <= kc; q0 += 16) Interleave8.pack(src, base + q0, a.rs, dst, o + q0 * 8);
                }
                int r0 = base, r1 = r0 + a.rs, r2 = r1 + a.rs, r3 = r2 + a.rs, r4 = r3 + a.rs, r5 = r4 + a.rs, r6 = r5 + a.rs, r7 = r6 + a.rs;
                for (int q = q0, d = o + q0 * 8; q < kc; q++, d += 8) {
                    dst[d] = src[r0 + q];
                    dst[d + 1] = src[r1 + q];
                    dst[d + 2] = src[r2 + q];
                    dst[d + 3] = src[r3 + q];
                    dst[d + 4] = src[r4 + q];
                    dst[d + 5] = src[r5 + q];
                    dst[d + 6] = src[r6 + q];
                    dst[d + 7] = src[r7 + q];
                }
            } else if (a.cs == 1 && rows == MR && MR == 6) {
                // row-major full panel of the 6-row kernel, unrolled likewise
                int r0 = base, r1 = r0 + a.rs, r2 = r1 + a.rs, r3 = r2 + a.rs, r4 = r3 + a.rs, r5 = r4 + a.rs;
                for (int q = 0, d = o; q < kc; q++, d += 6) {
                    dst[d] = src[r0 + q];
                    dst[d + 1] = src[r1 + q];
                    dst[d + 2] = src[r2 + q];
                    dst[d + 3] = src[r3 + q];
                    dst[d + 4] = src[r4 + q];
                    dst[d + 5] = src[r5 + q];
                }
            } else if (a.cs == 1 && rows == MR && MR == 4) {
                // row-major full panel of the 4-row kernels, unrolled as the 8-row copy above
                int r0 = base, r1 = r0 + a.rs, r2 = r1 + a.rs, r3 = r2 + a.rs;
                for (int q = 0, d = o; q < kc; q++, d += 4) {
                    dst[d] = src[r0 + q];
                    dst[d + 1] = src[r1 + q];
                    dst[d + 2] = src[r2 + q];
                    dst[d + 3] = src[r3 + q];
                }
            } else if (a.cs == 1) {
                // row-major: walk each row contiguously
                for (int i = 0; i < rows; i++) {
                    int si = base + i * a.rs;
                    for (int q = 0; q < kc; q++) dst[o + q * MR + i] = src[si + q];
                }
            } else {
                // general strides: walk each column
                for (int q = 0; q < kc; q++) {
                    int sq = base + q * a.cs, dq = o + q * MR;
                    for (int i = 0; i < rows; i++) dst[dq + i] = src[sq + i * a.rs];
                }
            }
            for (int i = rows; i < MR; i++) {
                for (int q = 0; q < kc; q++) dst[o + q * MR + i] = 0f;
            }
        }
    }

    private static final jdk.incubator.vector.VectorSpecies<Float> LANES = FloatVector.SPECIES_PREFERRED;

    /** Lane i's offset i * columnStride: the gather of one k across a vector of B's columns. */
    private static int[] columnOffsets(int columnStride) {
        int[] off = new int[LANES.length()];
        for (int i = 0; i < off.length; i++) off[i] = i * columnStride;
        return off;
    }

    /** Packs B[p0 .. p0+kc) x [j0 .. j0+nc) as NR-column panels: panel at dst[j*kc], value (k, j) at k*NR + j. */
    void packB(Mat b, int p0, int j0, int kc, int nc, float[] dst) { packB(b, p0, j0, kc, nc, dst, 0); }

    /** packB into dst from dstOff on. */
    void packB(Mat b, int p0, int j0, int kc, int nc, float[] dst, int dstOff) {
        float[] src = b.data;
        int[] gather = b.rs == 1 && b.cs != 1 && kernel.species == LANES && NR % LANES.length() == 0 ? columnOffsets(b.cs) : null;
        for (int jp = 0; jp < nc; jp += NR) {
            int cols = Math.min(NR, nc - jp), o = dstOff + jp * kc;
            int base = b.off + p0 * b.rs + (j0 + jp) * b.cs;
            if (b.cs == 1 && cols == NR) {
                for (int q = 0; q < kc; q++) {
                    kernel.copyPanelRow(src, base + q * b.rs, dst, o + q * NR);
                }
                continue;
            }
            if (b.cs == 1) {
                for (int q = 0; q < kc; q++) {
                    int dq = o + q * NR;
                    System.arraycopy(src, base + q * b.rs, dst, dq, cols);
                    java.util.Arrays.fill(dst, dq + cols, dq + NR, 0f);
                }
                continue;
            }
            if (gather != null && cols == NR) {
                // transposed B (each column contiguous in k): a vector of columns gathered a k at a time, 3x the scalar
                // copy below (attention packs its keys transposed, once per head)
                for (int q = 0; q < kc; q++) {
                    for (int jj = 0; jj < NR; jj += LANES.length()) {
                        FloatVector.fromArray(LANES, src, base + jj * b.cs + q, gather, 0).intoArray(dst, o + q * NR + jj);
                    }
                }
                continue;
            }
            // transposed or general B: walk each column of B (contiguous in k when it is a transposed view)
            for (int j = 0; j < cols; j++) {
                int sj = base + j * b.cs;
                for (int q = 0; q < kc; q++) dst[o + q * NR + j] = src[sj + q * b.rs];
            }
            for (int q = 0; q < kc && cols < NR; q++) java.util.Arrays.fill(dst, o + q * NR + cols, o + q * NR + NR, 0f);
        }
    }
}
