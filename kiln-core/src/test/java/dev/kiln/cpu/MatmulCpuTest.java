package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The packed float32 GEMM against a plain triple loop in double. Tolerance: each C element may differ from the
 * double result by 1e-5 * sqrt(K) times sum_k |a_ik * b_kj| (float32 rounding grows like sqrt(K) for random data;
 * a packing or tiling mistake gives errors of order 1 in that scale).
 */
class MatmulCpuTest {
    private final Generator gen = new Generator(7);

    /** (batch, m, k) x (batch, k, n) as a double triple loop over the tensors' logical values. */
    private static double[][] reference(Tensor a, Tensor b) {
        int batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
        float[] x = a.toFloatArray(), y = b.toFloatArray();
        double[] c = new double[batch * m * n], scale = new double[batch * m * n];
        for (int p = 0; p < batch; p++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double s = 0, t = 0;
                    for (int q = 0; q < k; q++) {
                        double v = (double) x[(p * m + i) * k + q] * y[(p * k + q) * n + j];
                        s += v;
                        t += Math.abs(v);
                    }
                    c[(p * m + i) * n + j] = s;
                    scale[(p * m + i) * n + j] = t;
                }
        return new double[][]{c, scale};
    }

    private static void assertClose(Tensor a, Tensor b, Tensor c) {
        double[][] ref = reference(a, b);
        float[] got = c.toFloatArray();
        assertArrayEquals(new int[]{a.size(0), a.size(1), b.size(2)}, c.shape());
        double tol = 1e-5 * Math.sqrt(Math.max(1, a.size(2)));
        for (int i = 0; i < got.length; i++) {
            double err = Math.abs(got[i] - ref[0][i]);
            if (err > tol * ref[1][i] + 1e-30) {
                fail("element " + i + " of " + a.size(0) + "x" + a.size(1) + "x" + a.size(2) + "x" + b.size(2)
                        + ": got " + got[i] + ", expected " + ref[0][i] + " (error " + err + ", allowed " + tol * ref[1][i] + ")");
            }
        }
    }

    private Tensor randn(int... shape) { return Tensor.randn(gen, shape); }

    @ParameterizedTest(name = "{0}x{1}x{2}x{3}")
    @CsvSource({"1,1,1,1", "1,7,5,3", "1,17,63,129", "2,63,129,17", "1,129,300,65", "3,6,256,32", "1,300,257,33",
            "1,128,784,10", "1,5,1000,1", "1,1,513,200", "4,33,17,70", "1,121,520,2050"})
    void contiguousMatchesTripleLoop(int batch, int m, int k, int n) {
        Tensor a = randn(batch, m, k), b = randn(batch, k, n);
        assertClose(a, b, MatmulCpu.matmul(a, b));
    }

    @ParameterizedTest(name = "{0}x{1}x{2}x{3}")
    @CsvSource({"1,7,5,3", "2,63,129,17", "1,129,300,65", "3,17,260,40"})
    void transposedViewsMatchTripleLoop(int batch, int m, int k, int n) {
        Tensor at = randn(batch, k, m).transpose(1, 2), bt = randn(batch, n, k).transpose(1, 2);
        Tensor a = randn(batch, m, k), b = randn(batch, k, n);
        assertClose(at, b, MatmulCpu.matmul(at, b));
        assertClose(a, bt, MatmulCpu.matmul(a, bt));
        assertClose(at, bt, MatmulCpu.matmul(at, bt));
    }

    /** Products of few rows (a token at a time, batch-1 inference): B's rows contiguous, its columns contiguous (a weight's transpose), broadcast. */
    @ParameterizedTest(name = "{0}x{1}x{2}x{3}")
    @CsvSource({"1,1,384,1152", "1,1,1536,384", "1,4,7,65", "3,2,1000,3", "2,3,17,200", "1,1,1,1", "1,4,0,5", "1,2,33,64"})
    void fewRowsMatchTripleLoop(int batch, int m, int k, int n) {
        Tensor a = randn(batch, m, k);
        Tensor rows = randn(batch, k, n), columns = randn(batch, n, k).transpose(1, 2), shared = randn(1, n, k).transpose(1, 2).expand(batch, k, n);
        assertEquals(1, columns.strides()[1]);
        assertClose(a, rows, MatmulCpu.matmul(a, rows));
        assertClose(a, columns, MatmulCpu.matmul(a, columns));
        assertClose(a, shared, MatmulCpu.matmul(a, shared));
    }

    /**
     * Products much deeper than wide (weight gradients over a batch) are split along k over the threads: A as gᵀ (a
     * transposed view), k not a whole number of slabs, and C accumulated into.
     */
    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"40,3000,50", "96,2500,33", "7,80000,9", "64,2100,40"})
    void deepProductsMatchTripleLoop(int m, int k, int n) {
        Tensor gt = randn(1, k, m).transpose(1, 2), x = randn(1, k, n);
        assertClose(gt, x, MatmulCpu.matmul(gt, x));
        SplittableRandom r = new SplittableRandom(5);
        float[] a = gt.contiguous().toFloatArray(), b = x.toFloatArray(), c = new float[m * n];
        for (int i = 0; i < c.length; i++) c[i] = (float) r.nextGaussian();
        float[] before = c.clone();
        Sgemm.PREFERRED.batched(1, m, n, k, new Sgemm.Mat(a, 0, k, 1), 0, new Sgemm.Mat(b, 0, n, 1), 0, c, 0, n, true);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = before[i * n + j], t = Math.abs(s);
                for (int q = 0; q < k; q++) {
                    s += (double) a[i * k + q] * b[q * n + j];
                    t += Math.abs((double) a[i * k + q] * b[q * n + j]);
                }
                assertEquals(s, c[i * n + j], 1e-5 * Math.sqrt(k) * t, "accumulated C[" + i + "][" + j + "]");
            }
        }
    }

    @Test void stridedAndBroadcastViewsMatchTripleLoop() {
        // every other row and column of a bigger matrix, an offset start, and a batch broadcast by stride 0
        Tensor big = randn(2, 90, 140);
        Tensor a = big.slice(1, 3, 90, 2).slice(2, 1, 140, 3);          // (2, 44, 47), strides (12600, 280, 3)
        Tensor b = randn(1, 47, 37).expand(2, 47, 37);                  // batch stride 0
        assertEquals(0, b.strides()[0]);
        assertClose(a, b, MatmulCpu.matmul(a, b));
        Tensor bCols = randn(2, 47, 80).slice(2, 0, 80, 2);             // column stride 2
        assertClose(a, bCols, MatmulCpu.matmul(a, bCols));
    }

    @Test void emptyInnerDimensionGivesZeros() {
        Tensor c = MatmulCpu.matmul(randn(1, 3, 0), randn(1, 0, 4));
        assertArrayEquals(new float[12], c.toFloatArray());
    }

    /** The raw entry point used by convolution: accumulate into a C that is part of a wider matrix. */
    @Test void rawGemmAccumulatesIntoSubMatrix() {
        SplittableRandom r = new SplittableRandom(3);
        int m = 13, n = 37, k = 300, ldc = 50;
        float[] a = new float[m * k], b = new float[k * n], c = new float[m * ldc + 5];
        for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = (float) r.nextGaussian();
        for (int i = 0; i < c.length; i++) c[i] = (float) r.nextGaussian();
        float[] before = c.clone();
        Sgemm.PREFERRED.gemm(m, n, k, new Sgemm.Mat(a, 0, k, 1), new Sgemm.Mat(b, 0, n, 1), c, 5, ldc, true, Sgemm.PREFERRED.scratch());
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < ldc; j++) {
                int ci = 5 + i * ldc + j;
                if (j >= n) {
                    assertEquals(before[ci], c[ci], "column " + j + " outside C was written");
                    continue;
                }
                double s = before[ci], t = Math.abs(before[ci]);
                for (int q = 0; q < k; q++) {
                    s += (double) a[i * k + q] * b[q * n + j];
                    t += Math.abs((double) a[i * k + q] * b[q * n + j]);
                }
                assertEquals(s, c[ci], 1e-5 * Math.sqrt(k) * t, "C[" + i + "][" + j + "]");
            }
        }
        for (int i = 0; i < 5; i++) assertEquals(before[i], c[i], "before C was written");
    }

    /**
     * Every kernel this machine runs: the Vector API's at each width it offers natively (128, 256, and 512 where
     * offered), whatever the preferred one, and the machine-code kernels where the processor has them.
     */
    static java.util.stream.Stream<String> kernels() {
        int max = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
        return java.util.stream.Stream.of("128", "256", "256-avx2", "512", "512-avx512")
                .filter(k -> Integer.parseInt(k.substring(0, 3)) <= max && (!k.contains("-") || machineCode(k).isEmpty()));
    }

    /** The machine-code kernels, by name; each runs where this is empty, else it says why not. */
    private static String machineCode(String kernel) {
        String why = kernel.equals("256-avx2") ? SgemmKernelAvx2.UNAVAILABLE : SgemmKernelAvx512.UNAVAILABLE;
        return why == null ? "" : why;
    }

    private static Sgemm engine(String kernel) {
        SgemmKernel k = switch (kernel) {
            case "128" -> new SgemmKernel128();
            case "256" -> new SgemmKernel256();
            case "256-avx2" -> new SgemmKernelAvx2();
            case "512" -> new SgemmKernel512();
            case "512-avx512" -> new SgemmKernelAvx512();
            default -> throw new IllegalArgumentException(kernel);
        };
        Sgemm e = new Sgemm(k, 0, 4096); // A packed MC rows at a time, B shared in groups of 4096 floats: blocks small enough to cross
        assertEquals(Integer.parseInt(kernel.substring(0, 3)), e.kernel.species.vectorBitSize());
        return e;
    }

    /**
     * Each width's kernel, packing and blocking on fresh random inputs: sizes around its tile and block edges (MR,
     * NR, KC, MC, NC), strided and transposed operands, C a window of a wider matrix, accumulate on and off.
     */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.MethodSource("kernels")
    void everyKernelMatchesTripleLoop(String kernel) {
        Sgemm e = engine(kernel);
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        int mr = e.MR, nr = e.NR;
        int[][] sizes = {{1, 1, 1}, {mr, nr, 1}, {mr - 1, nr + 1, 3}, {mr + 1, nr - 1, e.KC + 1}, {e.MC + mr + 1, 2 * nr + 3, 17},
                {7, e.NC + nr + 5, 9}, {3 * mr, 3 * nr, 2 * e.KC}, {e.MC + mr + 1, e.NC + 3, e.KC + 1}, {1 + r.nextInt(100), 1 + r.nextInt(100), 1 + r.nextInt(600)},
                {301, 203, 99}};   // (odd: batched) rows over the threads (B packed once for all of them from 4 threads)
        for (int[] sz : sizes) {
            int m = sz[0], n = sz[1], k = sz[2];
            for (int layout = 0; layout < 4; layout++) {
                boolean aT = (layout & 1) != 0, bT = (layout & 2) != 0, acc = layout == 3;
                float[] a = gaussian(r, m * k + 3), b = gaussian(r, k * n + 2);
                Sgemm.Mat am = aT ? new Sgemm.Mat(a, 3, 1, m) : new Sgemm.Mat(a, 3, k, 1);
                Sgemm.Mat bm = bT ? new Sgemm.Mat(b, 2, 1, k) : new Sgemm.Mat(b, 2, n, 1);
                int ldc = n + 4;
                float[] c = gaussian(r, m * ldc + 1), before = c.clone();
                if (m * n * k % 2 == 0) e.gemm(m, n, k, am, bm, c, 1, ldc, acc, e.scratch());
                else e.batched(1, m, n, k, am, 0, bm, 0, c, 1, ldc, acc);
                assertProduct(kernel + " " + m + "x" + n + "x" + k + " layout " + layout, am, bm, m, n, k, c, before, ldc, acc);
            }
        }
    }

    /**
     * Products of one row ({@link Sgemv}): B stored by columns (a linear layer's wᵀ) and by rows, A's row strided,
     * lengths around the vector, the four-column and four-vector steps (and past the one-thread limit: 1000 x 512),
     * accumulate on and off, C a window; then a batch of three, each matrix its own A row, B and C row.
     */
    @Test
    void oneRowProductsMatchTripleLoop() {
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        int[][] sizes = {{1, 1}, {3, 15}, {4, 16}, {63, 17}, {64, 33}, {65, 1}, {130, 100}, {1000, 512}};
        for (int[] sz : sizes) {
            int n = sz[0], k = sz[1];
            for (int layout = 0; layout < 4; layout++) {
                boolean bT = (layout & 1) != 0, acc = (layout & 2) != 0;
                float[] a = gaussian(r, 3 * k + 2), b = gaussian(r, k * n + 2);
                Sgemm.Mat am = new Sgemm.Mat(a, 2, 3 * k, 3), bm = bT ? new Sgemm.Mat(b, 2, 1, k) : new Sgemm.Mat(b, 2, n, 1);
                assertTrue(Sgemv.applies(1, bm));
                int ldc = n + 3;
                float[] c = gaussian(r, ldc + 1), before = c.clone();
                Sgemm.PREFERRED.batched(1, 1, n, k, am, 0, bm, 0, c, 1, ldc, acc);
                assertProduct("1x" + n + "x" + k + (bT ? " B by columns" : " B by rows") + (acc ? ", accumulated" : ""), am, bm, 1, n, k, c, before, ldc, acc);
            }
        }
        int batch = 3, n = 37, k = 70, ldc = 40;
        for (boolean bT : new boolean[]{false, true}) {
            float[] a = gaussian(r, batch * k), b = gaussian(r, batch * k * n), c = gaussian(r, 1 + batch * ldc);
            Sgemm.PREFERRED.batched(batch, 1, n, k, new Sgemm.Mat(a, 0, k, 1), k, bT ? new Sgemm.Mat(b, 0, 1, k) : new Sgemm.Mat(b, 0, n, 1), k * n, c, 1, ldc, false);
            for (int p = 0; p < batch; p++) {
                float[] cp = new float[1 + ldc];
                System.arraycopy(c, 1 + p * ldc, cp, 1, ldc);
                float[] before = cp.clone();   // only C's row is checked: the columns past n hold the random start
                assertProduct("batch row " + p, new Sgemm.Mat(a, p * k, k, 1), bT ? new Sgemm.Mat(b, p * k * n, 1, k) : new Sgemm.Mat(b, p * k * n, n, 1),
                        1, n, k, cp, before, ldc, false);
            }
        }
    }

    /**
     * A packed beforehand ({@link Sgemm#packAllA}, a kept weight) on all threads: split by columns (each thread packing
     * its B) and, B narrower than a panel a thread, by rows; the same bits as the GEMM packing A itself, accumulate on and off.
     */
    @Test
    void productsWithAPackedBeforehandMatchTheGemm() {
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        Sgemm e = Sgemm.PREFERRED;
        int[][] sizes = {{e.MR * 3 + 1, 5 * e.NR + 3, e.KC + 7}, {2 * e.MR + 3, e.NR - 5, 300}, {5, 3, 2},
                {256, 49, 512}, {64, 1000, 128}};   // the last two on all threads: by rows (49 columns), by columns
        for (int[] sz : sizes) {
            int m = sz[0], n = sz[1], k = sz[2], ldc = n + 2;
            for (boolean acc : new boolean[]{false, true}) {
                float[] a = gaussian(r, m * k), b = gaussian(r, k * n + 1), c = gaussian(r, 1 + m * ldc), want = c.clone();
                Sgemm.Mat am = new Sgemm.Mat(a, 0, k, 1), bm = new Sgemm.Mat(b, 1, n, 1);
                e.gemm(m, n, k, am, bm, want, 1, ldc, acc, e.scratch());
                e.packedA(m, n, k, e.packAllA(am, m, k), bm, c, 1, ldc, acc);
                assertArrayEquals(want, c, m + "x" + n + "x" + k + (acc ? " accumulated" : ""));
            }
        }
    }

    /** Row strips against one packed B, in column groups that do not divide n (a small shared block), per kernel. */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.MethodSource("kernels")
    void rowsSharingOnePackedBMatchTripleLoop(String kernel) {
        Sgemm e = engine(kernel);
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        int m = 3 * e.MR + 5, n = 7 * e.NR + 3, k = e.KC + 9, ldc = n + 2;
        float[] a = gaussian(r, m * k), b = gaussian(r, k * n), c = gaussian(r, 1 + m * ldc), before = c.clone();
        boolean acc = r.nextBoolean();
        Sgemm.Mat am = new Sgemm.Mat(a, 0, k, 1), bm = new Sgemm.Mat(b, 0, n, 1);
        e.rowsSharingB(m, n, k, am, bm, c, 1, ldc, acc, 3);
        assertProduct(kernel, am, bm, m, n, k, c, before, ldc, acc);
    }

    /** C (from c[1], rows ldc apart) against the triple loop in double of A·B (+ C before when acc); columns past n untouched. */
    private static void assertProduct(String what, Sgemm.Mat a, Sgemm.Mat b, int m, int n, int k, float[] c, float[] before, int ldc, boolean acc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < ldc; j++) {
                int ci = 1 + i * ldc + j;
                if (j >= n) {
                    assertEquals(before[ci], c[ci], what + ": column " + j + " outside C was written");
                    continue;
                }
                double s = acc ? before[ci] : 0, t = Math.abs(s);
                for (int q = 0; q < k; q++) {
                    double v = (double) a.data()[a.off() + i * a.rs() + q * a.cs()] * b.data()[b.off() + q * b.rs() + j * b.cs()];
                    s += v;
                    t += Math.abs(v);
                }
                assertEquals(s, c[ci], 1e-5 * Math.sqrt(k) * t + 1e-30, what + ": C[" + i + "][" + j + "]");
            }
        }
    }

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return v;
    }

    /** Both machine-code kernels, each skipped where the processor lacks it. */
    static java.util.stream.Stream<String> machineCodeKernels() { return java.util.stream.Stream.of("256-avx2", "512-avx512"); }

    private static SgemmKernelAsm machineCodeKernel(String kernel) {
        Assumptions.assumeTrue(machineCode(kernel).isEmpty(), () -> "no " + kernel + " machine-code kernel here: " + machineCode(kernel));
        return (SgemmKernelAsm) engine(kernel).kernel;
    }

    /** The machine-code kernel reads and writes unchecked: a panel or C window past an array's end must be refused first. */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.MethodSource("machineCodeKernels")
    void machineCodeKernelRefusesIndicesPastTheArrays(String name) {
        SgemmKernelAsm k = machineCodeKernel(name);
        int kc = 8, tiles = 2, mr = k.mr, nr = k.nr, ldc = 2 * nr + 8;
        float[] a = new float[mr * kc], b = new float[tiles * kc * nr], c = new float[(mr - 1) * ldc + tiles * nr];
        k.row(kc, a, 0, b, 0, c, 0, ldc, tiles, false);   // exactly fits
        assertThrows(IndexOutOfBoundsException.class, () -> k.row(kc, a, 1, b, 0, c, 0, ldc, tiles, false));
        assertThrows(IndexOutOfBoundsException.class, () -> k.row(kc, a, 0, b, 0, c, 0, ldc, tiles + 1, false));
        assertThrows(IndexOutOfBoundsException.class, () -> k.row(kc, a, 0, b, 0, c, 1, ldc, tiles, true));
        assertThrows(IndexOutOfBoundsException.class, () -> k.row(kc + 1, a, 0, b, 0, c, 0, ldc, tiles, true));
    }

    /** The machine-code kernel called directly: any depth (the unrolled loop's remainders), row width, offset, tiles. */
    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.MethodSource("machineCodeKernels")
    void machineCodeRowsMatchTheirDefinition(String name) {
        SgemmKernelAsm kernel = machineCodeKernel(name);
        int mr = kernel.mr, nr = kernel.nr;
        SplittableRandom r = new SplittableRandom(System.nanoTime());
        for (int trial = 0; trial < 60; trial++) {
            int kc = r.nextInt(41), tiles = 1 + r.nextInt(4), ldc = nr * tiles + r.nextInt(21);
            int ao = r.nextInt(9), bo = r.nextInt(9), co = r.nextInt(9);
            boolean acc = r.nextBoolean();
            float[] a = gaussian(r, ao + mr * kc + r.nextInt(3)), b = gaussian(r, bo + tiles * kc * nr + r.nextInt(3));
            float[] c = gaussian(r, co + (mr - 1) * ldc + nr * tiles + r.nextInt(3)), before = c.clone();
            kernel.row(kc, a, ao, b, bo, c, co, ldc, tiles, acc);
            for (int x = 0; x < c.length; x++) {
                int i = Math.floorDiv(x - co, ldc), col = x - co - i * ldc;
                if (x < co || i >= mr || col >= nr * tiles) {
                    assertEquals(before[x], c[x], name + " kc " + kc + ": element " + x + " outside the tiles was written");
                    continue;
                }
                int t = col / nr, j = col % nr;
                double s = acc ? before[x] : 0, mag = Math.abs(s);
                for (int q = 0; q < kc; q++) {
                    double v = (double) a[ao + q * mr + i] * b[bo + (t * kc + q) * nr + j];
                    s += v;
                    mag += Math.abs(v);
                }
                assertEquals(s, c[x], 1e-5 * Math.sqrt(kc + 1) * mag + 1e-30, name + " kc " + kc + " tiles " + tiles + " ldc " + ldc + ": C[" + i + "][" + col + "]");
            }
        }
    }

    @Test void reportsNameTheKernelInUse() {
        String name = CpuBackend.INSTANCE.gemmKernel();
        SgemmKernel k = Sgemm.PREFERRED.kernel;
        assertEquals(k instanceof SgemmKernelAsm, name.contains(" machine code "), name);
        if (k instanceof SgemmKernelAsm m) assertTrue(name.startsWith(m.isa + " machine code"), name);
        assertTrue(name.endsWith(" " + k.mr + "x" + k.nr), name);
    }

    @Test void preferredKernelFollowsThePreferredSpecies() {
        assertEquals(jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512 ? 512
                : jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(), Sgemm.PREFERRED.kernel.species.vectorBitSize());
    }

    @Test void float64PathMatchesTripleLoop() {
        Tensor a = Tensor.randn(gen, new int[]{2, 9, 31}, DType.FLOAT64, Device.CPU);
        Tensor b = Tensor.randn(gen, new int[]{2, 31, 5}, DType.FLOAT64, Device.CPU).transpose(1, 2).contiguous().transpose(1, 2);
        double[] got = MatmulCpu.matmul(a, b).toDoubleArray(), x = a.toDoubleArray(), y = b.toDoubleArray();
        for (int p = 0; p < 2; p++)
            for (int i = 0; i < 9; i++)
                for (int j = 0; j < 5; j++) {
                    double s = 0;
                    for (int q = 0; q < 31; q++) s += x[(p * 9 + i) * 31 + q] * y[(p * 31 + q) * 5 + j];
                    assertEquals(s, got[(p * 9 + i) * 5 + j], 1e-12 * 31);
                }
    }
}
