package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.backend.Conv2dParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * cuBLAS, cuDNN and NVML on a real GPU against plain Java references (computed in double).
 * Tolerances, relative to the largest reference value: float64 1e-10, float32 1e-4, TF32 2e-3, bfloat16 2e-2.
 */
@Tag("gpu")
class CudaLibGpuTest {
    static final double FP64 = 1e-10, FP32 = 1e-4, TF32 = 2e-3, BF16 = 2e-2;

    static CudaDevice dev;
    static Cublas blas;
    static Cudnn dnn;
    static DeviceArrays mem;
    final Random rnd = new Random(42);

    @BeforeAll static void setUp() {
        GpuTests.requireGpu(CudaLibGpuTest.class);
        dev = CudaDevice.get(0);
        dev.makeCurrent();
        mem = new DeviceArrays(dev);
        long stream = dev.stream().address();
        blas = Cublas.create();
        blas.setStream(stream);
        blas.setWorkspace(mem.alloc(Cublas.RECOMMENDED_WORKSPACE_BYTES), Cublas.RECOMMENDED_WORKSPACE_BYTES);
        dnn = Cudnn.create();
        dnn.setStream(stream);
        System.out.println("[cudalib] " + dev + ", cuBLAS handle version " + blas.version() + ", cuDNN " + Cudnn.version());
    }

    @AfterAll static void tearDown() {
        if (dnn != null) dnn.close();
        if (blas != null) blas.close();
        if (mem != null) mem.close();
    }

    // ================================================================== cuBLAS

    /** A (batch, rows, cols) operand: its values in logical order, and the storage it is uploaded from. */
    record Operand(double[] logical, double[] storage, GemmOperand layout) {}

    /** Random (batch, rows, cols) values stored row-major, or transposed (column-major), or broadcast over batch. */
    Operand operand(int batch, int rows, int cols, boolean transposed, boolean broadcast) {
        int stored = broadcast ? 1 : batch;
        double[] storage = new double[stored * rows * cols];
        for (int i = 0; i < storage.length; i++) storage[i] = rnd.nextDouble() * 2 - 1;
        double[] logical = new double[batch * rows * cols];
        for (int b = 0; b < batch; b++) {
            int sb = broadcast ? 0 : b;
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    int at = transposed ? sb * rows * cols + j * rows + i : sb * rows * cols + i * cols + j;
                    logical[(b * rows + i) * cols + j] = storage[at];
                }
            }
        }
        long[] strides = transposed ? new long[]{broadcast ? 0 : (long) rows * cols, 1, rows}
                : new long[]{broadcast ? 0 : (long) rows * cols, cols, 1};
        GemmOperand layout = GemmOperand.of(new long[]{batch, rows, cols}, strides);
        assertNotNull(layout);
        return new Operand(logical, storage, layout);
    }

    static double[] matmulRef(double[] a, double[] b, int batch, int m, int n, int k) {
        double[] c = new double[batch * m * n];
        for (int t = 0; t < batch; t++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += a[(t * m + i) * k + p] * b[(t * k + p) * n + j];
                    c[(t * m + i) * n + j] = s;
                }
        return c;
    }

    /** Runs one row-major batched matmul on the GPU in {@code dtype}; returns C as doubles. */
    double[] gpuMatmul(DType dtype, boolean tf32, int batch, int m, int n, int k, Operand a, Operand b) {
        long da = upload(dtype, a.storage()), db = upload(dtype, b.storage());
        long dc = mem.alloc((long) batch * m * n * dtype.byteSize());
        blas.matmul(dtype, tf32, batch, m, n, k, da, a.layout(), db, b.layout(), dc, 1.0, 0.0);
        return download(dtype, dc, batch * m * n);
    }

    long upload(DType dtype, double[] v) {
        return switch (dtype) {
            case FLOAT64 -> mem.upload(v);
            case FLOAT32 -> {
                float[] f = new float[v.length];
                for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
                yield mem.upload(f);
            }
            case BFLOAT16 -> {
                short[] s = new short[v.length];
                for (int i = 0; i < v.length; i++) s[i] = DeviceArrays.toBf16((float) v[i]);
                yield mem.upload(s);
            }
            case FLOAT16 -> {
                short[] s = new short[v.length];
                for (int i = 0; i < v.length; i++) s[i] = Float.floatToFloat16((float) v[i]);
                yield mem.upload(s);
            }
            default -> throw new IllegalArgumentException(dtype.toString());
        };
    }

    double[] download(DType dtype, long d, int n) {
        double[] out = new double[n];
        switch (dtype) {
            case FLOAT64 -> out = mem.doubles(d, n);
            case FLOAT32 -> { float[] f = mem.floats(d, n); for (int i = 0; i < n; i++) out[i] = f[i]; }
            case BFLOAT16 -> { short[] s = mem.shorts(d, n); for (int i = 0; i < n; i++) out[i] = DeviceArrays.fromBf16(s[i]); }
            case FLOAT16 -> { short[] s = mem.shorts(d, n); for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(s[i]); }
            default -> throw new IllegalArgumentException(dtype.toString());
        }
        return out;
    }

    static void assertClose(String what, double[] ref, double[] got, double tol) {
        assertEquals(ref.length, got.length, what + ": length");
        double scale = 0, worst = 0;
        int at = -1;
        for (double r : ref) scale = Math.max(scale, Math.abs(r));
        scale = Math.max(scale, 1e-30);
        for (int i = 0; i < ref.length; i++) {
            double e = Math.abs(ref[i] - got[i]);
            if (!(e <= worst) || Double.isNaN(got[i])) { worst = Double.isNaN(got[i]) ? Double.POSITIVE_INFINITY : e; at = i; }
        }
        double rel = worst / scale;
        System.out.printf("[cudalib] %-48s max rel err %.3e (tol %.0e)%n", what, rel, tol);
        assertTrue(rel <= tol, what + ": max error " + worst + " at " + at + " (ref " + (at >= 0 ? ref[at] : 0) + ", got "
                + (at >= 0 ? got[at] : 0) + "), relative " + rel + " > " + tol);
    }

    @Test void gemmPlainFloat32AndFloat64() {
        int m = 37, n = 53, k = 71;
        Operand a = operand(1, m, k, false, false), b = operand(1, k, n, false, false);
        double[] ref = matmulRef(a.logical(), b.logical(), 1, m, n, k);
        assertClose("sgemm", ref, gpuMatmul(DType.FLOAT32, false, 1, m, n, k, a, b), FP32);
        assertClose("sgemm tf32", ref, gpuMatmul(DType.FLOAT32, true, 1, m, n, k, a, b), TF32);
        assertClose("dgemm", ref, gpuMatmul(DType.FLOAT64, false, 1, m, n, k, a, b), FP64);
    }

    @Test void gemmTf32OffIsExactEnoughOnLargeK() {
        // with K large, TF32 (10-bit mantissa) errors are ~1e-3: a float32 pass within 1e-4 shows TF32 is really off
        int m = 64, n = 64, k = 2048;
        Operand a = operand(1, m, k, false, false), b = operand(1, k, n, false, false);
        double[] ref = matmulRef(a.logical(), b.logical(), 1, m, n, k);
        assertClose("sgemm k=2048 no tf32", ref, gpuMatmul(DType.FLOAT32, false, 1, m, n, k, a, b), FP32);
        assertClose("sgemm k=2048 tf32", ref, gpuMatmul(DType.FLOAT32, true, 1, m, n, k, a, b), TF32);
        assertClose("sgemm k=2048 no tf32 again", ref, gpuMatmul(DType.FLOAT32, false, 1, m, n, k, a, b), FP32);
    }

    @Test void gemmTransposedOperands() {
        int m = 19, n = 23, k = 29;
        for (boolean ta : new boolean[]{false, true}) {
            for (boolean tb : new boolean[]{false, true}) {
                Operand a = operand(1, m, k, ta, false), b = operand(1, k, n, tb, false);
                double[] ref = matmulRef(a.logical(), b.logical(), 1, m, n, k);
                assertClose("sgemm transA=" + ta + " transB=" + tb, ref, gpuMatmul(DType.FLOAT32, false, 1, m, n, k, a, b), FP32);
                assertClose("dgemm transA=" + ta + " transB=" + tb, ref, gpuMatmul(DType.FLOAT64, false, 1, m, n, k, a, b), FP64);
            }
        }
    }

    @Test void gemmBatchedWithBroadcast() {
        int batch = 5, m = 17, n = 12, k = 33;
        Operand a = operand(batch, m, k, false, false), b = operand(batch, k, n, true, true);
        double[] ref = matmulRef(a.logical(), b.logical(), batch, m, n, k);
        assertClose("sgemm batched, B broadcast+transposed", ref, gpuMatmul(DType.FLOAT32, false, batch, m, n, k, a, b), FP32);
        assertClose("dgemm batched, B broadcast+transposed", ref, gpuMatmul(DType.FLOAT64, false, batch, m, n, k, a, b), FP64);
        Operand at = operand(batch, m, k, true, false);
        double[] ref2 = matmulRef(at.logical(), b.logical(), batch, m, n, k);
        assertClose("sgemm batched tf32, A transposed", ref2, gpuMatmul(DType.FLOAT32, true, batch, m, n, k, at, b), TF32);
    }

    @Test void gemm16BitTypes() {
        int batch = 2, m = 32, n = 48, k = 64;
        Operand a = operand(batch, m, k, false, false), b = operand(batch, k, n, true, false);
        double[] ref = matmulRef(a.logical(), b.logical(), batch, m, n, k);
        assertClose("bf16 gemm", ref, gpuMatmul(DType.BFLOAT16, false, batch, m, n, k, a, b), BF16);
        assertClose("fp16 gemm", ref, gpuMatmul(DType.FLOAT16, false, batch, m, n, k, a, b), BF16);
    }

    @Test void gemmBadLeadingDimensionNamesTheCallAndStatus() {
        long d = mem.alloc(4096);
        var e = assertThrows(CudaException.class, () -> blas.gemmStridedBatched(DType.FLOAT32, false, false, false, 8, 8, 8,
                1.0, d, 2, 64, d, 8, 64, 0.0, d, 8, 64, 1));
        assertTrue(e.getMessage().contains("cublasGemmStridedBatchedEx") && e.getMessage().contains("CUBLAS_STATUS_INVALID_VALUE"), e.getMessage());
    }

    // ================================================================== cuDNN convolution

    record ConvCase(int n, int c, int h, int w, int k, int r, int s, Conv2dParams p) {}

    static double[] convRef(ConvCase cc, double[] x, double[] w, int P, int Q) {
        int g = cc.p().groups(), cg = cc.c() / g, kg = cc.k() / g;
        double[] y = new double[cc.n() * cc.k() * P * Q];
        for (int n = 0; n < cc.n(); n++)
            for (int k = 0; k < cc.k(); k++)
                for (int p = 0; p < P; p++)
                    for (int q = 0; q < Q; q++) {
                        double s = 0;
                        for (int c = 0; c < cg; c++)
                            for (int r = 0; r < cc.r(); r++)
                                for (int t = 0; t < cc.s(); t++) {
                                    int ih = p * cc.p().strideH() - cc.p().padH() + r * cc.p().dilationH();
                                    int iw = q * cc.p().strideW() - cc.p().padW() + t * cc.p().dilationW();
                                    if (ih < 0 || ih >= cc.h() || iw < 0 || iw >= cc.w()) continue;
                                    int ci = (k / kg) * cg + c;
                                    s += x[((n * cc.c() + ci) * cc.h() + ih) * cc.w() + iw] * w[((k * cg + c) * cc.r() + r) * cc.s() + t];
                                }
                        y[((n * cc.k() + k) * P + p) * Q + q] = s;
                    }
        return y;
    }

    /** dx and dw of the convolution by scattering every product's gradient. */
    static double[][] convBackwardRef(ConvCase cc, double[] x, double[] w, double[] dy, int P, int Q) {
        int g = cc.p().groups(), cg = cc.c() / g, kg = cc.k() / g;
        double[] dx = new double[x.length], dw = new double[w.length];
        for (int n = 0; n < cc.n(); n++)
            for (int k = 0; k < cc.k(); k++)
                for (int p = 0; p < P; p++)
                    for (int q = 0; q < Q; q++) {
                        double gy = dy[((n * cc.k() + k) * P + p) * Q + q];
                        for (int c = 0; c < cg; c++)
                            for (int r = 0; r < cc.r(); r++)
                                for (int t = 0; t < cc.s(); t++) {
                                    int ih = p * cc.p().strideH() - cc.p().padH() + r * cc.p().dilationH();
                                    int iw = q * cc.p().strideW() - cc.p().padW() + t * cc.p().dilationW();
                                    if (ih < 0 || ih >= cc.h() || iw < 0 || iw >= cc.w()) continue;
                                    int ci = (k / kg) * cg + c;
                                    int xi = ((n * cc.c() + ci) * cc.h() + ih) * cc.w() + iw, wi = ((k * cg + c) * cc.r() + r) * cc.s() + t;
                                    dx[xi] += w[wi] * gy;
                                    dw[wi] += x[xi] * gy;
                                }
                    }
        return new double[][]{dx, dw};
    }

    double[] random(int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextDouble() * 2 - 1;
        return v;
    }

    void checkConv(String label, DType dt, boolean tf32, ConvCase cc, double tol) {
        int cg = cc.c() / cc.p().groups();
        ConvPlan plan = dnn.conv(dt, new int[]{cc.n(), cc.c(), cc.h(), cc.w()}, new int[]{cc.k(), cg, cc.r(), cc.s()}, cc.p(), tf32);
        int[] out = plan.outputShape();
        int P = out[2], Q = out[3];
        assertEquals(cc.p().outH(cc.h(), cc.r()), P);
        double[] x = random(cc.n() * cc.c() * cc.h() * cc.w()), w = random(cc.k() * cg * cc.r() * cc.s());
        double[] dy = random(cc.n() * cc.k() * P * Q);
        double[] y = convRef(cc, x, w, P, Q);
        double[][] grads = convBackwardRef(cc, x, w, dy, P, Q);
        long dx = upload(dt, x), dw = upload(dt, w), ddy = upload(dt, dy);
        long dyOut = mem.alloc((long) y.length * dt.byteSize());
        long dxOut = mem.alloc((long) x.length * dt.byteSize()), dwOut = mem.alloc((long) w.length * dt.byteSize());
        plan.forward(dx, dw, dyOut, 1, 0, mem);
        plan.backwardData(ddy, dw, dxOut, 1, 0, mem);
        plan.backwardFilter(dx, ddy, dwOut, 1, 0, mem);
        assertClose(label + " forward", y, download(dt, dyOut, y.length), tol);
        assertClose(label + " backward data", grads[0], download(dt, dxOut, x.length), tol);
        assertClose(label + " backward filter", grads[1], download(dt, dwOut, w.length), tol);
        System.out.println("[cudalib]   algorithms (fwd, bwd data, bwd filter): " + Arrays.toString(plan.choices()));
        // accumulate: beta 1 adds a second copy
        plan.backwardFilter(dx, ddy, dwOut, 1, 1, mem);
        double[] twice = grads[1].clone();
        for (int i = 0; i < twice.length; i++) twice[i] *= 2;
        assertClose(label + " backward filter, beta 1", twice, download(dt, dwOut, w.length), tol);
    }

    @Test void convolutionFloat32() {
        var cc = new ConvCase(2, 3, 9, 11, 4, 3, 2, new Conv2dParams(2, 1, 1, 1, 1, 2, 1));
        checkConv("conv f32", DType.FLOAT32, false, cc, FP32);
        checkConv("conv f32 tf32", DType.FLOAT32, true, new ConvCase(4, 16, 12, 12, 32, 3, 3, Conv2dParams.of(1, 1, 1, 1)), TF32);
        checkConv("conv f32 no tf32 (c=16)", DType.FLOAT32, false, new ConvCase(4, 16, 12, 12, 32, 3, 3, Conv2dParams.of(1, 1, 1, 1)), FP32);
    }

    @Test void convolutionFloat64Grouped() {
        checkConv("conv f64 groups=2", DType.FLOAT64, false, new ConvCase(2, 4, 7, 7, 6, 3, 3, Conv2dParams.of(1, 1, 1, 2)), FP64);
        checkConv("conv f64 depthwise stride 2", DType.FLOAT64, false, new ConvCase(2, 5, 8, 8, 5, 3, 3, Conv2dParams.of(2, 1, 1, 5)), FP64);
    }

    @Test void convolutionBenchmarkSearchAndPlanCache() {
        var cc = new ConvCase(2, 8, 10, 10, 8, 3, 3, Conv2dParams.of(1, 1, 1, 1));
        try (Cudnn bench = Cudnn.create()) {
            bench.setStream(dev.stream().address());
            bench.setAlgoSearch(Cudnn.AlgoSearch.BENCHMARK, 64L << 20);
            Cudnn saved = dnn;
            dnn = bench;
            try {
                checkConv("conv f32 benchmarked", DType.FLOAT32, false, cc, FP32);
            } finally {
                dnn = saved;
            }
            ConvPlan p1 = bench.conv(DType.FLOAT32, new int[]{2, 8, 10, 10}, new int[]{8, 8, 3, 3}, cc.p(), false);
            ConvPlan p2 = bench.conv(DType.FLOAT32, new int[]{2, 8, 10, 10}, new int[]{8, 8, 3, 3}, Conv2dParams.of(1, 1, 1, 1), false);
            assertSame(p1, p2, "one plan per geometry");
            assertEquals(1, bench.cachedPlans());
            // the search ran once: a second forward asks the provider only for the chosen algorithm's workspace
            int before = mem.workspaceRequests;
            long x = mem.alloc(2 * 8 * 10 * 10 * 4), w = mem.alloc(8 * 8 * 9 * 4), y = mem.alloc(2 * 8 * 10 * 10 * 4);
            p1.forward(x, w, y, 1, 0, mem);
            assertTrue(mem.workspaceRequests - before <= 1);
        }
    }

    @Test void badDescriptorNamesTheCallAndStatus() {
        var e = assertThrows(CudaException.class, () -> new Cudnn.TensorDesc(DType.FLOAT32, new int[]{1, -3, 4, 4}, new int[]{48, 16, 4, 1}));
        assertTrue(e.getMessage().contains("cudnnSetTensorNdDescriptor") && e.getMessage().contains("BAD_PARAM"), e.getMessage());
    }

    // ================================================================== NVML

    @Test void nvmlReportsTheGpu() {
        assumeTrue(Nvml.available(), "no NVML");
        try (Nvml nvml = Nvml.open()) {
            List<GpuInfo> gpus = nvml.devices();
            assertFalse(gpus.isEmpty());
            GpuInfo g = gpus.get(0);
            assertTrue(g.totalBytes() > 0, g.toString());
            assertTrue(g.computeMajor() >= 3, g.toString());
            assertFalse(g.name().isBlank());
            assertTrue(nvml.cudaDriverVersion() >= 11000);
            System.out.println("[cudalib] NVML: " + g);
        }
        String report = DeviceReport.describe();
        System.out.println("[cudalib] kiln devices:\n" + report);
        assertTrue(report.startsWith("NVIDIA driver "), report);
        assertTrue(report.contains("cuda:0"), report);
        assertFalse(report.contains("cuBLAS not found"), report);
    }
}
