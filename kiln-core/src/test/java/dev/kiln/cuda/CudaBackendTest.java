package dev.kiln.cuda;

import dev.kiln.MemoryScope;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The GPU suite: every Backend op on cuda:0 against the CPU backend, forward and backward (through the ops layer
 * where the op has one), on fresh random inputs, several shapes, non-contiguous views and broadcasting.
 * Tolerances (relative, per element, against max(|ref|, mean |ref|)): float64 1e-12 (1e-10 where reductions
 * reorder long sums), float32 1e-5, TF32 matmul 1e-3, bfloat16/float16 1e-2. Skips on machines without a GPU.
 */
class CudaBackendTest {
    static final Device GPU = Device.cuda(0);
    static final Backend CPU_BE = Backends.cpu();
    static Backend gpuBe;
    final Generator gen = new Generator(System.nanoTime());

    @BeforeAll static void requireGpu() {
        dev.kiln.cuda.GpuTests.requireGpu(CudaBackendTest.class);
        gpuBe = Backends.get(GPU);
        Cuda.setAllowTf32Conv(Device.cuda(0), false); // compared with the CPU at float32 tolerance: no TF32 here
    }

    static double tol(DType t) {
        return switch (t) {
            case FLOAT64 -> 1e-12;
            case FLOAT32 -> 1e-5;
            default -> 1e-2;
        };
    }

    // ------------------------------------------------------------------ helpers

    Tensor randn(DType t, int... shape) { return Tensor.randn(gen, shape, DType.FLOAT64, Device.CPU).to(t); }

    Tensor positive(DType t, int... shape) { return Tensor.uniform(gen, shape, 0.2, 2.0, DType.FLOAT64, Device.CPU).to(t); }

    static Tensor gpu(Tensor cpu) { return cpu.to(GPU).detach(); }

    /** Compares values: |g - c| <= tol * max(|c|, mean |c|), NaN only where the reference is NaN. */
    static void close(Tensor cpuRef, Tensor gpuOut, double tol, String what) {
        assertEquals(GPU, gpuOut.device(), what + ": result not on the GPU");
        assertArrayEquals(cpuRef.shape(), gpuOut.shape(), what + ": shape");
        double[] c = cpuRef.toDoubleArray(), g = gpuOut.toDoubleArray();
        double mean = 0;
        for (double v : c) if (!Double.isNaN(v) && !Double.isInfinite(v)) mean += Math.abs(v);
        mean = c.length == 0 ? 0 : mean / c.length;
        for (int i = 0; i < c.length; i++) {
            if (Double.isNaN(c[i]) || Double.isInfinite(c[i])) {
                if (Double.compare(c[i], g[i]) != 0 && !(Double.isNaN(c[i]) && Double.isNaN(g[i]))) {
                    fail(what + ": element " + i + " cpu " + c[i] + " gpu " + g[i]);
                }
                continue;
            }
            double err = Math.abs(c[i] - g[i]), scale = Math.max(Math.abs(c[i]), Math.max(mean, 1e-30));
            if (!(err <= tol * scale)) fail(what + ": element " + i + " of " + c.length + ": cpu " + c[i] + " gpu " + g[i] + " (rel err " + err / scale + ", tol " + tol + ")");
        }
    }

    /**
     * Runs f on CPU leaves and on GPU copies of them, with the same random output weights, and compares the
     * outputs and every input's gradient.
     */
    void compareGraph(String what, double tol, Function<Tensor[], Tensor> f, Tensor... cpuInputs) {
        Tensor[] c = new Tensor[cpuInputs.length], g = new Tensor[cpuInputs.length];
        for (int i = 0; i < c.length; i++) {
            boolean grad = cpuInputs[i].dtype().isFloating();
            c[i] = cpuInputs[i].detach().requiresGrad(grad);
            g[i] = gpu(cpuInputs[i]).requiresGrad(grad);
        }
        Tensor yc = f.apply(c), yg = f.apply(g);
        close(yc, yg, tol, what + " forward");
        if (!yc.requiresGrad()) return;
        Tensor w = randn(yc.dtype(), yc.shape());
        yc.mul(w).sum().backward();
        yg.mul(gpu(w)).sum().backward();
        for (int i = 0; i < c.length; i++) {
            if (c[i].grad() == null) continue;
            assertNotNull(g[i].grad(), what + ": GPU input " + i + " got no gradient");
            close(c[i].grad(), g[i].grad(), tol * 10, what + " gradient of input " + i);
        }
    }

    // ------------------------------------------------------------------ transfers, fill, copy, random

    @Test void transfersRoundTripEveryDtype() {
        for (DType t : DType.values()) {
            Tensor c = randn(DType.FLOAT64, 3, 5, 7).mul(10).to(t);
            Tensor g = gpu(c);
            assertEquals(GPU, g.device());
            assertArrayEquals(c.toDoubleArray(), g.toDoubleArray(), 0.0, t + " round trip");
            assertArrayEquals(c.toDoubleArray(), g.cpu().toDoubleArray(), 0.0, t + " cpu()");
        }
    }

    @Test void fillAndStridedCopyWithConversions() {
        for (DType t : DType.values()) {
            Tensor g = Tensor.full(new int[]{4, 6}, 3, t, GPU);
            assertArrayEquals(Tensor.full(new int[]{4, 6}, 3, t, Device.CPU).toDoubleArray(), g.toDoubleArray(), 0.0, "fill " + t);
        }
        for (DType src : DType.values()) {
            for (DType dst : DType.values()) {
                Tensor c = randn(DType.FLOAT64, 4, 5, 6).mul(100).to(src);
                Tensor ref = c.permute(2, 0, 1).slice(1, 1, 4, 2).to(dst);
                Tensor gv = gpu(c).permute(2, 0, 1).slice(1, 1, 4, 2);
                close(ref, gv.to(dst), 0, "cast of a strided view " + src + " -> " + dst);
                Tensor into = Tensor.zeros(new int[]{6, 2, 10}, dst, GPU).narrow(2, 3, 5);
                into.copyFrom(gv);
                close(ref, into, 0, "strided copy " + src + " -> " + dst);
            }
        }
    }

    @Test void randomStreamsMatchTheCpu() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            long seed = gen.nextSeed();
            Tensor c = Tensor.uniform(new Generator(seed), new int[]{1000, 37}, -2, 3, t, Device.CPU);
            Tensor g = Tensor.uniform(new Generator(seed), new int[]{1000, 37}, -2, 3, t, GPU);
            close(c, g, 0, "uniform " + t);
            Tensor cn = Tensor.randn(new Generator(seed), new int[]{999, 41}, t, Device.CPU);
            Tensor gn = Tensor.randn(new Generator(seed), new int[]{999, 41}, t, GPU);
            close(cn, gn, t == DType.FLOAT64 ? 1e-13 : 1e-6, "normal " + t);
        }
    }

    // ------------------------------------------------------------------ elementwise

    static boolean needsPositive(UnaryOp op) { return op == UnaryOp.LOG || op == UnaryOp.SQRT || op == UnaryOp.RECIPROCAL; }

    @Test void unaryOpsForwardAndBackward() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (UnaryOp op : UnaryOp.values()) {
                if (op == UnaryOp.NOT) continue;
                int[][] shapes = {{1000}, {7, 33}, {3, 4, 5}};
                for (int[] s : shapes) {
                    Tensor x = needsPositive(op) ? positive(t, s) : randn(t, s);
                    boolean diff = op != UnaryOp.GELU_GRAD && op != UnaryOp.SILU_GRAD;
                    compareGraph(op + " " + t + " " + java.util.Arrays.toString(s), tol(t) * 4,
                            in -> diff ? dev.kiln.ops.Elementwise.unary(op, in[0]) : Tensor.noGrad(() -> dev.kiln.ops.Elementwise.unary(op, in[0])), x);
                }
                // a transposed (non-contiguous) input
                Tensor x = needsPositive(op) ? positive(t, 9, 13) : randn(t, 9, 13);
                close(CPU_BE.unary(op, x.t()), gpuBe.unary(op, gpu(x).t()), tol(t) * 4, op + " transposed " + t);
            }
        }
        Tensor b = randn(DType.FLOAT32, 50).gt(0);
        close(CPU_BE.unary(UnaryOp.NOT, b), gpuBe.unary(UnaryOp.NOT, gpu(b)), 0, "not");
        Tensor i = randn(DType.FLOAT64, 40).mul(50).to(DType.INT64);
        for (UnaryOp op : new UnaryOp[]{UnaryOp.NEG, UnaryOp.ABS, UnaryOp.SIGN, UnaryOp.RELU}) {
            close(CPU_BE.unary(op, i), gpuBe.unary(op, gpu(i)), 0, op + " int64");
        }
    }

    @Test void binaryOpsWithBroadcastingForwardAndBackward() {
        int[][][] pairs = {{{5, 7}, {5, 7}}, {{3, 4, 5}, {4, 1}}, {{6, 1, 3}, {1, 5, 3}}, {{1000}, {}}};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (BinaryOp op : BinaryOp.values()) {
                for (int[][] p : pairs) {
                    boolean pos = op == BinaryOp.POW;
                    Tensor a = pos ? positive(t, p[0]) : randn(t, p[0]), b = pos ? positive(t, p[1]) : randn(t, p[1]);
                    if (op == BinaryOp.AND || op == BinaryOp.OR) {
                        a = a.gt(0);
                        b = b.gt(0);
                    }
                    // relu's backward primitive has no derivative of its own (no second derivatives): forward only
                    boolean differentiable = op != BinaryOp.RELU_BACKWARD;
                    compareGraph(op + " " + t + " " + java.util.Arrays.toString(p[0]) + "," + java.util.Arrays.toString(p[1]),
                            tol(t) * 4, in -> differentiable ? dev.kiln.ops.Elementwise.binary(op, in[0], in[1])
                                    : Tensor.noGrad(() -> dev.kiln.ops.Elementwise.binary(op, in[0], in[1])), a, b);
                }
                // non-contiguous operands
                Tensor a = positive(t, 8, 6), b = positive(t, 6, 8);
                close(CPU_BE.binary(op, a.t(), b), gpuBe.binary(op, gpu(a).t(), gpu(b)), tol(t) * 4, op + " transposed " + t);
                // with a scalar, both orders
                for (boolean first : new boolean[]{false, true}) {
                    close(CPU_BE.binaryScalar(op, a, 1.5, first), gpuBe.binaryScalar(op, gpu(a), 1.5, first), tol(t) * 4,
                            op + " scalar " + (first ? "first " : "") + t);
                }
            }
        }
        Tensor i = randn(DType.FLOAT64, 30).mul(20).to(DType.INT64), j = randn(DType.FLOAT64, 30).mul(20).to(DType.INT64);
        for (BinaryOp op : new BinaryOp[]{BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.MAX, BinaryOp.LT, BinaryOp.EQ}) {
            close(CPU_BE.binary(op, i, j), gpuBe.binary(op, gpu(i), gpu(j)), 0, op + " int64");
        }
    }

    @Test void whereAndClampAndMaskedFill() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            Tensor cond = randn(t, 4, 1, 6).gt(0), a = randn(t, 4, 5, 6), b = randn(t, 5, 1);
            compareGraph("where " + t, tol(t), in -> Tensor.where(in[0], in[1], in[2]), cond, a, b);
            compareGraph("clamp " + t, tol(t), in -> in[0].clamp(-0.5, 0.7), randn(t, 50));
            compareGraph("maskedFill " + t, tol(t), in -> in[0].maskedFill(in[1], -3), randn(t, 6, 7), randn(t, 7).gt(0));
        }
    }

    @Test void sixteenBitFloats() {
        for (DType t : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
            Tensor a = randn(t, 33, 17), b = randn(t, 17);
            close(a.add(b), gpu(a).add(gpu(b)), tol(t), "add " + t);
            close(a.mul(b).exp(), gpu(a).mul(gpu(b)).exp(), tol(t), "mul exp " + t);
            close(a.gelu(), gpu(a).gelu(), tol(t), "gelu " + t);
            close(a.sum(1, false), gpu(a).sum(1, false), tol(t), "sum " + t);
            Tensor m = randn(t, 17, 9);
            close(a.to(DType.FLOAT32).matmul(m.to(DType.FLOAT32)), gpu(a).matmul(gpu(m)).to(DType.FLOAT32), 2e-2, "matmul " + t);
        }
    }

    // ------------------------------------------------------------------ reductions

    @Test void reductionOverBatchAndSpatialDimsOfNchw() {
        for (boolean keep : new boolean[]{false, true}) {
            compareGraph("sum nchw keep " + keep, 1e-10, in -> in[0].sum(new int[]{0, 2, 3}, keep), randn(DType.FLOAT64, 16, 8, 12, 12));
            Tensor x = randn(DType.FLOAT32, 64, 32, 24, 24);
            close(x.to(DType.FLOAT64).sum(new int[]{0, 2, 3}, keep), gpu(x).sum(new int[]{0, 2, 3}, keep), 1e-6, "float32 nchw");
            compareGraph("max nchw", 1e-10, in -> dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MAX, in[0], new int[]{0, 2, 3}, keep),
                    randn(DType.FLOAT64, 5, 3, 4, 7));
        }
    }

    @Test void reductionsOverAnyDims() {
        int[][] dimsList = {{0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1}, {0, 1, 2}};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (int[] shape : new int[][]{{6, 7, 8}, {300, 2, 150}, {2, 3, 5000}}) {
                for (int[] dims : dimsList) {
                    for (boolean keep : new boolean[]{false, true}) {
                        String w = java.util.Arrays.toString(shape) + " dims " + java.util.Arrays.toString(dims) + " keep " + keep + " " + t;
                        if (t == DType.FLOAT64) {
                            compareGraph("sum " + w, 1e-10, in -> in[0].sum(dims, keep), randn(t, shape));
                            compareGraph("mean " + w, 1e-10, in -> in[0].mean(dims, keep), randn(t, shape));
                        } else {
                            // the CPU sums float32 in float (error ~ n·eps of sum |x|, unbounded relative to a sum that
                            // cancels); the GPU sums in double, so it is checked against float64 sums of the same values
                            Tensor x = randn(t, shape);
                            close(x.to(DType.FLOAT64).sum(dims, keep), gpu(x).sum(dims, keep), 1e-6, "sum " + w);
                            close(x.to(DType.FLOAT64).mean(dims, keep), gpu(x).mean(dims, keep), 1e-6, "mean " + w);
                        }
                        double tl = t == DType.FLOAT64 ? 1e-10 : 1e-5;
                        compareGraph("max " + w, tl, in -> dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MAX, in[0], dims, keep), randn(t, shape));
                        compareGraph("min " + w, tl, in -> dev.kiln.ops.Reductions.reduce(dev.kiln.backend.ReduceOp.MIN, in[0], dims, keep), randn(t, shape));
                    }
                }
                for (int d = 0; d < 3; d++) {
                    Tensor x = randn(t, shape);
                    int dd = d;
                    close(x.argmax(d, false), gpu(x).argmax(dd, false), 0, "argmax " + d + " " + t);
                    close(x.argmin(d, true), gpu(x).argmin(dd, true), 0, "argmin " + d + " " + t);
                }
            }
            // a transposed input, var (built from the primitives)
            Tensor x = randn(t, 40, 30);
            close(x.to(DType.FLOAT64).t().sum(1, false), gpu(x).t().sum(1, false), 1e-6, "sum of transposed " + t);
            // the two-pass paths: a few long rows, few columns over many rows
            Tensor longRows = randn(t, 3, 100_000), tall = randn(t, 20_000, 40);
            double tl2 = t == DType.FLOAT64 ? 1e-10 : 1e-6;
            close(longRows.to(DType.FLOAT64).sum(1, false), gpu(longRows).sum(1, false), tl2, "sum of long rows " + t);
            close(longRows.max(), gpu(longRows).max(), 0, "max of all " + t);
            close(tall.to(DType.FLOAT64).sum(0, false), gpu(tall).sum(0, false), tl2, "column sums " + t);
            close(tall.min(0, false), gpu(tall).min(0, false), 0, "column min " + t);
            compareGraph("var " + t, t == DType.FLOAT64 ? 1e-10 : 1e-4, in -> in[0].var(new int[]{1}, true, false), randn(t, 20, 30));
        }
        Tensor b = randn(DType.FLOAT32, 100).gt(0);
        close(b.sum(), gpu(b).sum(), 0, "sum of bool");
    }

    // ------------------------------------------------------------------ matmul

    @Test void matmulShapesAndLayouts() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            double tl = t == DType.FLOAT64 ? 1e-11 : 1e-4;
            compareGraph("mm " + t, tl, in -> in[0].matmul(in[1]), randn(t, 70, 50), randn(t, 50, 90));
            compareGraph("mm transposed " + t, tl, in -> in[0].t().matmul(in[1].t()), randn(t, 33, 65), randn(t, 20, 33));
            compareGraph("bmm " + t, tl, in -> in[0].matmul(in[1]), randn(t, 4, 17, 30), randn(t, 4, 30, 12));
            compareGraph("bmm broadcast " + t, tl, in -> in[0].matmul(in[1]), randn(t, 3, 1, 8, 16), randn(t, 5, 16, 4));
            compareGraph("folded batch " + t, tl, in -> in[0].matmul(in[1]), randn(t, 2, 3, 8, 16), randn(t, 16, 4));
            compareGraph("mv " + t, tl, in -> in[0].matmul(in[1]), randn(t, 9, 16), randn(t, 16));
        }
    }

    @Test void matmulWithTf32() {
        boolean before = Cuda.allowTf32(Device.cuda(0));
        try {
            Cuda.setAllowTf32(Device.cuda(0), true);
            Tensor a = randn(DType.FLOAT32, 256, 512), b = randn(DType.FLOAT32, 512, 128);
            double[] ref = a.to(DType.FLOAT64).matmul(b.to(DType.FLOAT64)).toDoubleArray(), got = gpu(a).matmul(gpu(b)).toDoubleArray();
            double num = 0, den = 0;
            for (int i = 0; i < ref.length; i++) {
                num += (ref[i] - got[i]) * (ref[i] - got[i]);
                den += ref[i] * ref[i];
            }
            double rel = Math.sqrt(num / den);
            System.out.printf("tf32 matmul 256x512x128: ||out - ref|| / ||ref|| = %.3e%n", rel);
            assertTrue(rel < 1e-3 && rel > 1e-6, "tf32 relative error " + rel + " (expected about 3e-4: TF32 on, but not wrong)");
        } finally {
            Cuda.setAllowTf32(Device.cuda(0), before);
        }
    }

    // ------------------------------------------------------------------ neural-network kernels (backend level)

    @Test void conv2dForwardAndBackward() {
        conv2dCases("cuDNN where present");
        Dnn.setEnabled(false);
        try {
            conv2dCases("im2col + GEMM");
        } finally {
            Dnn.setEnabled(true);
        }
    }

    void conv2dCases(String path) {
        Object[][] cases = {
                {new int[]{2, 3, 9, 9}, new int[]{4, 3, 3, 3}, Conv2dParams.of(1, 1, 1, 1)},
                {new int[]{3, 4, 11, 8}, new int[]{6, 2, 3, 2}, new Conv2dParams(2, 1, 1, 0, 1, 2, 2)},
                {new int[]{1, 8, 7, 7}, new int[]{8, 1, 5, 5}, Conv2dParams.of(1, 2, 1, 8)},
                {new int[]{2, 16, 12, 12}, new int[]{32, 16, 1, 1}, Conv2dParams.of(1, 0, 1, 1)}};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            double tl = t == DType.FLOAT64 ? 1e-11 : 1e-4;
            for (Object[] c : cases) {
                int[] xs = (int[]) c[0], ws = (int[]) c[1];
                Conv2dParams p = (Conv2dParams) c[2];
                Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, ws[0]);
                String what = path + ": conv2d " + java.util.Arrays.toString(xs) + " " + java.util.Arrays.toString(ws) + " " + p + " " + t;
                Tensor yc = CPU_BE.conv2d(x, w, bias, p), yg = gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), p);
                close(yc, yg, tl, what);
                close(CPU_BE.conv2d(x.permute(0, 1, 3, 2), w, null, p), gpuBe.conv2d(gpu(x).permute(0, 1, 3, 2), gpu(w), null, p), tl, what + " (transposed input, no bias)");
                Tensor gy = randn(t, yc.shape());
                close(CPU_BE.conv2dBackwardInput(gy, w, xs, p), gpuBe.conv2dBackwardInput(gpu(gy), gpu(w), xs, p), tl, what + " backward input");
                close(CPU_BE.conv2dBackwardWeight(gy, x, ws, p), gpuBe.conv2dBackwardWeight(gpu(gy), gpu(x), ws, p), tl, what + " backward weight");
            }
        }
    }

    /**
     * The conv epilogue (bias + ReLU in place) and its backward (ReLU mask + bias gradient), float32/64 and bfloat16,
     * for inner sizes that take the 4-wide kernels (36) and those that do not (35), with and without bias.
     */
    @Test void convBiasReluEpilogueAndBackward() {
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            for (int[] xs : new int[][]{{5, 3, 6, 6}, {4, 2, 5, 7}, {130, 3, 2, 2}}) {
                Tensor x = randn(t, xs), w = randn(t, 8, xs[1], 3, 3), bias = randn(t, 8);
                String what = "conv2d+relu " + java.util.Arrays.toString(xs) + " " + t;
                double tl = t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-11 : 1e-4;
                Tensor yc = CPU_BE.conv2d(x, w, bias, p, true), yg = gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), p, true);
                close(yc, yg, tl, what);
                close(CPU_BE.conv2d(x, w, null, p, true), gpuBe.conv2d(gpu(x), gpu(w), null, p, true), tl, what + " (no bias)");
                // the backward on the CPU output (so both see the same mask) and a fresh gradient
                Tensor g = randn(t, yc.shape());
                for (boolean relu : new boolean[]{true, false}) {
                    for (boolean biasGrad : new boolean[]{true, false}) {
                        if (!relu && !biasGrad) continue;
                        Tensor[] c = CPU_BE.biasReluBackward(g, yc, relu, biasGrad), d = gpuBe.biasReluBackward(gpu(g), gpu(yc), relu, biasGrad);
                        String how = what + " backward relu=" + relu + " bias=" + biasGrad;
                        close(c[0], d[0], t == DType.BFLOAT16 ? 0 : tol(t), how + " dz");
                        if (biasGrad) close(c[1], d[1], t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-12 : 1e-5, how + " dbias");
                        else assertNull(d[1], how);
                    }
                }
            }
        }
    }

    /**
     * The direct kernels for few input channels (conv_small_*): forward with the epilogue, and the weight and bias
     * gradients with the ReLU mask fused, against the CPU's composite, every variant, float32/64 and bfloat16.
     */
    @Test void smallChannelConvolutions() {
        int[][] cases = {{1, 3, 0}, {3, 3, 1}, {1, 5, 2}, {3, 5, 0}}; // channels, kernel, padding
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            double tl = t == DType.BFLOAT16 ? 2e-2 : t == DType.FLOAT64 ? 1e-11 : 1e-4;
            for (int[] c : cases) {
                Conv2dParams p = Conv2dParams.of(1, c[2], 1, 1);
                int[] xs = {5, c[0], 11, 9}, ws = {8, c[0], c[1], c[1]};
                Tensor x = randn(t, xs), w = randn(t, ws), bias = randn(t, 8);
                String what = "small conv c" + c[0] + " k" + c[1] + " pad " + c[2] + " " + t;
                for (boolean relu : new boolean[]{true, false}) {
                    Tensor yc = CPU_BE.conv2d(x, w, bias, p, relu);
                    close(yc, gpuBe.conv2d(gpu(x), gpu(w), gpu(bias), p, relu), tl, what + " forward relu=" + relu);
                    Tensor g = randn(t, yc.shape());
                    for (boolean biasGrad : new boolean[]{true, false}) {
                        Tensor[] cpu = CPU_BE.conv2dBackwardWeightAndBias(g, yc, x, ws, p, relu, biasGrad);
                        Tensor[] dev = gpuBe.conv2dBackwardWeightAndBias(gpu(g), gpu(yc), gpu(x), ws, p, relu, biasGrad);
                        String how = what + " relu=" + relu + " bias=" + biasGrad;
                        close(cpu[0], dev[0], tl, how + " dw");
                        if (biasGrad) close(cpu[1], dev[1], tl, how + " dbias");
                        else assertNull(dev[1], how);
                    }
                }
            }
        }
    }

    @Test void poolingForwardAndBackward() {
        Pool2dParams[] ps = {Pool2dParams.of(2, 2, 0), Pool2dParams.of(3, 2, 1), new Pool2dParams(3, 2, 1, 2, 1, 1, false)};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            for (Pool2dParams p : ps) {
                Tensor x = randn(t, 2, 3, 9, 10);
                Tensor[] mc = CPU_BE.maxPool2d(x, p), mg = gpuBe.maxPool2d(gpu(x), p);
                close(mc[0], mg[0], 0, "max pool " + p);
                close(mc[1], mg[1], 0, "max pool indices " + p);
                Tensor gy = randn(t, mc[0].shape());
                // bfloat16 with overlapping windows: the CPU rounds after each add, the GPU once
                close(CPU_BE.maxPool2dBackward(gy, mc[1], x.shape(), p), gpuBe.maxPool2dBackward(gpu(gy), mg[1], x.shape(), p),
                        t == DType.BFLOAT16 ? 3e-2 : tol(t), "max pool backward " + p);
                close(CPU_BE.avgPool2d(x, p), gpuBe.avgPool2d(gpu(x), p), tol(t), "avg pool " + p);
                Tensor gya = randn(t, CPU_BE.avgPool2d(x, p).shape());
                // bfloat16: the CPU rounds each window's share, the GPU the sum: a few units in the last place apart
                close(CPU_BE.avgPool2dBackward(gya, x.shape(), p), gpuBe.avgPool2dBackward(gpu(gya), x.shape(), p),
                        t == DType.BFLOAT16 ? 4e-2 : tol(t), "avg pool backward " + p);
            }
        }
    }

    @Test void softmaxForwardAndBackward() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (int[] shape : new int[][]{{5, 10}, {3, 4, 2000}, {64, 3}}) {
                for (int dim = 0; dim < shape.length; dim++) {
                    for (boolean log : new boolean[]{false, true}) {
                        Tensor x = randn(t, shape).mul(3);
                        String what = (log ? "log_softmax " : "softmax ") + java.util.Arrays.toString(shape) + " dim " + dim + " " + t;
                        Tensor yc = CPU_BE.softmax(x, dim, log), yg = gpuBe.softmax(gpu(x), dim, log);
                        close(yc, yg, tol(t) * 10, what);
                        Tensor gy = randn(t, shape);
                        close(CPU_BE.softmaxBackward(gy, yc, dim, log), gpuBe.softmaxBackward(gpu(gy), yg, dim, log), tol(t) * 100, what + " backward");
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ indexing

    Tensor randomIndex(int bound, int... shape) {
        Tensor u = Tensor.uniform(gen, shape, 0, bound, DType.FLOAT64, Device.CPU);
        return u.to(DType.INT64);
    }

    @Test void gatherScatterIndexSelectIndexAdd() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (int dim = 0; dim < 3; dim++) {
                int[] xs = {5, 6, 7};
                int[] is = {4, 5, 6};
                is[dim] = 9;
                Tensor index = randomIndex(xs[dim], is);
                int d = dim;
                compareGraph("gather dim " + dim + " " + t, tol(t), in -> in[0].gather(d, in[1]), randn(t, xs), index);
                compareGraph("gather transposed dim " + dim + " " + t, tol(t), in -> in[0].permute(2, 1, 0).gather(d, in[1]),
                        randn(t, 7, 6, 5), randomIndex(xs[dim], is));
                Tensor idx1 = randomIndex(xs[dim], 11);
                compareGraph("index_select dim " + dim + " " + t, tol(t), in -> in[0].indexSelect(d, in[1]), randn(t, xs), idx1);
            }
            compareGraph("embedding " + t, tol(t), in -> dev.kiln.ops.Indexing.embedding(in[1], in[0]), randn(t, 10, 4), randomIndex(10, 3, 5));
        }
        // out-of-bounds indices are reported at the next wait
        Tensor x = gpu(randn(DType.FLOAT32, 5, 3));
        Tensor bad = gpu(Tensor.of(new long[]{0, 7}, 2));
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> x.indexSelect(0, bad).toFloatArray());
        assertTrue(e.getMessage().contains("index 7") && e.getMessage().contains("size 5"), e.getMessage());
        x.indexSelect(0, gpu(Tensor.of(new long[]{4, 1}, 2))).toFloatArray();   // and the error was cleared
    }

    // ------------------------------------------------------------------ errors, memory

    @Test void errorsAreClear() {
        Tensor g = gpu(randn(DType.FLOAT32, 3)), c = randn(DType.FLOAT32, 3);
        IllegalArgumentException mixed = assertThrows(IllegalArgumentException.class, () -> g.add(c));
        assertTrue(mixed.getMessage().contains("cuda:0") && mixed.getMessage().contains("cpu"), mixed.getMessage());
        CudaException.OutOfMemory oom = assertThrows(CudaException.OutOfMemory.class,
                () -> Tensor.empty(new int[]{1 << 20, 1 << 20, 64}, DType.FLOAT32, GPU));
        assertTrue(oom.getMessage().contains("out of memory") && oom.getMessage().contains("bytes"), oom.getMessage());
        // the device still works afterwards
        close(g.cpu().add(1), g.add(1), 0, "after OOM");
        g.close();
        IllegalStateException released = assertThrows(IllegalStateException.class, () -> g.add(1));
        assertTrue(released.getMessage().contains("released"), released.getMessage());
        if (Cuda.deviceCount() == 1) {
            assertThrows(CudaException.NoDevice.class, () -> Backends.get(Device.cuda(1)));
        }
    }

    @Test void tenThousandTrainingStepsHoldDeviceMemorySteady() {
        CudaAllocator alloc = CudaDevice.get(0).allocator();
        Generator g = new Generator(7);
        Tensor w1 = Tensor.randn(g, new int[]{16, 32}, DType.FLOAT32, GPU).mul(0.3).detach().requiresGrad(true);
        Tensor b1 = Tensor.zeros(new int[]{32}, DType.FLOAT32, GPU).requiresGrad(true);
        Tensor w2 = Tensor.randn(g, new int[]{32, 4}, DType.FLOAT32, GPU).mul(0.3).detach().requiresGrad(true);
        Tensor b2 = Tensor.zeros(new int[]{4}, DType.FLOAT32, GPU).requiresGrad(true);
        Tensor x = Tensor.randn(g, new int[]{64, 16}, DType.FLOAT32, GPU);
        Tensor y = x.matmul(Tensor.randn(g, new int[]{16, 4}, DType.FLOAT32, GPU)).tanh().detach();
        List<Tensor> params = List.of(w1, b1, w2, b2);
        CudaAllocator.Stats warm = null;
        double first = 0, last = 0;
        long t0 = System.nanoTime();
        int steps = 10_000;
        for (int step = 0; step < steps; step++) {
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor h = x.matmul(w1).add(b1).relu();
                Tensor loss = h.matmul(w2).add(b2).sub(y).pow(2).mean();
                loss.backward();
                Tensor.noGrad(() -> {
                    for (Tensor p : params) p.copyFrom(p.sub(p.grad().mul(0.05)));
                    return null;
                });
                for (Tensor p : params) p.zeroGrad();
                if (step == 0) first = loss.item();
                if (step == steps - 1) last = loss.item();
            }
            if (step == 20) warm = alloc.stats();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        CudaAllocator.Stats end = alloc.stats();
        System.out.printf("training loop: %d steps in %.2f s (%.1f us/step); loss %.5f -> %.5f; allocator after step 20: %s; at the end: %s%n",
                steps, seconds, seconds * 1e6 / steps, first, last, warm, end);
        assertTrue(last < first * 0.5, "the loss should fall: " + first + " -> " + last);
        assertEquals(warm.allocCalls(), end.allocCalls(), "cuMemAlloc was called after the first steps");
        assertEquals(warm.reservedBytes(), end.reservedBytes(), "reserved device memory grew");
        // other tests' garbage may be collected (and its blocks returned) during the loop, so allocated may only fall
        assertTrue(end.allocatedBytes() <= warm.allocatedBytes(), "allocated device memory grew: " + warm + " -> " + end);
    }

    @Test void allocatorReusesBlocks() {
        CudaAllocator alloc = CudaDevice.get(0).allocator();
        List<Tensor> ts = new ArrayList<>();
        for (int i = 0; i < 10; i++) ts.add(Tensor.empty(new int[]{1000 + i}, DType.FLOAT32, GPU));
        ts.forEach(Tensor::close);
        long calls = alloc.stats().allocCalls();
        for (int i = 0; i < 10; i++) Tensor.empty(new int[]{1000 + i}, DType.FLOAT32, GPU).close();
        assertEquals(calls, alloc.stats().allocCalls(), "freed blocks of the same size class were not reused: " + alloc.stats());
        assertEquals(512, CudaAllocator.roundSize(1));
        assertEquals(2L << 20, CudaAllocator.roundSize((1L << 20) + 1));
    }
}
