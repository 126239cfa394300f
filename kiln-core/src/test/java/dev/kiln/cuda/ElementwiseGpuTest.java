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
import dev.kiln.nn.F;
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
/** Elementwise ops on cuda:0 against the CPU: fill, copy, unary, binary, where, 16-bit floats. Skips without a GPU. */
class ElementwiseGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(ElementwiseGpuTest.class); }

    static boolean needsPositive(UnaryOp op) { return op == UnaryOp.LOG || op == UnaryOp.SQRT || op == UnaryOp.RECIPROCAL; }

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

    @Test void unaryOpsForwardAndBackward() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (UnaryOp op : UnaryOp.values()) {
                if (op == UnaryOp.NOT) continue;
                int[][] shapes = {{1000}, {7, 33}, {3, 4, 5}};
                for (int[] s : shapes) {
                    Tensor x = needsPositive(op) ? positive(t, s) : randn(t, s);
                    compareGraph(op + " " + t + " " + java.util.Arrays.toString(s), tol(t) * 4, in -> dev.kiln.ops.Elementwise.unary(op, in[0]), x);
                }
                // a transposed (non-contiguous) input
                Tensor x = needsPositive(op) ? positive(t, 9, 13) : randn(t, 9, 13);
                close(CPU_BE.unary(op, x.t()), gpuBe.unary(op, gpu(x).t()), tol(t) * 4, op + " transposed " + t);
            }
        }
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            compareGraph("leaky_relu " + t, tol(t), in -> dev.kiln.nn.F.leakyRelu(in[0], 0.2), randn(t, 17, 31));
        }
        Tensor b = randn(DType.FLOAT32, 50).gt(0);
        close(CPU_BE.unary(UnaryOp.NOT, b), gpuBe.unary(UnaryOp.NOT, gpu(b)), 0, "not");
        Tensor i = randn(DType.FLOAT64, 40).mul(50).to(DType.INT64);
        for (UnaryOp op : new UnaryOp[]{UnaryOp.NEG, UnaryOp.ABS, UnaryOp.SIGN, UnaryOp.RELU}) {
            close(CPU_BE.unary(op, i), gpuBe.unary(op, gpu(i)), 0, op + " int64");
        }
    }

    /** GELU's tanh form over its whole range (tanh saturates past |x| ~ 5), values and gradients, and in 16-bit. */
    @Test void geluTanhFormMatchesTheCpu() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            Tensor x = Tensor.arange(241, Device.CPU).to(t).mul(0.1).sub(12);   // -12 .. 12 in steps of 0.1
            compareGraph("gelu tanh " + t, tol(t) * 4, in -> F.gelu(in[0], F.GeluApproximation.TANH), x);
            compareGraph("gelu tanh " + t + " random", tol(t) * 4, in -> F.gelu(in[0], F.GeluApproximation.TANH), randn(t, 7, 33).mul(3));
        }
        for (DType t : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
            Tensor a = randn(t, 33, 17);
            close(F.gelu(a, F.GeluApproximation.TANH), F.gelu(gpu(a), F.GeluApproximation.TANH), tol(t), "gelu tanh " + t);
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
                    // the activations' backward primitives have no derivatives of their own (no second derivatives): forward only
                    boolean differentiable = switch (op) {
                        case RELU_BACKWARD, GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD -> false;
                        default -> true;
                    };
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

    @Test void scalarMapsAgreeAcrossPaths() {
        // contiguous and aligned: 16 bytes a thread (binary_scalar_contig), with a tail; strided or misaligned: the
        // general kernel. Both compute in double, so they agree to the bit, and with the CPU within rounding
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.FLOAT16}) {
            for (BinaryOp op : new BinaryOp[]{BinaryOp.MUL, BinaryOp.ADD, BinaryOp.SUB, BinaryOp.DIV, BinaryOp.POW, BinaryOp.MAX}) {
                for (boolean first : new boolean[]{false, true}) {
                    Tensor pairs = positive(t, 1003, 2), g = gpu(pairs);
                    Tensor strided = gpuBe.binaryScalar(op, g.select(1, 0), 0.75, first);
                    Tensor dense = gpuBe.binaryScalar(op, g.select(1, 0).contiguous(), 0.75, first);
                    Tensor shifted = gpuBe.binaryScalar(op, g.select(1, 0).contiguous().narrow(0, 1, 1002), 0.75, first);
                    String what = op + " scalar " + (first ? "first " : "") + t;
                    assertArrayEquals(strided.toDoubleArray(), dense.toDoubleArray(), what + ": contiguous path");
                    assertArrayEquals(dense.narrow(0, 1, 1002).toDoubleArray(), shifted.toDoubleArray(), what + ": misaligned");
                    close(CPU_BE.binaryScalar(op, pairs.select(1, 0), 0.75, first), dense, t == DType.FLOAT64 ? 1e-12 : t == DType.FLOAT32 ? 1e-6 : 1e-2, what);
                }
            }
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

    @Test void whereOfPeriodicOperands() {
        // whole, scalar and broadcast operands (a trailing block over leading dims: a causal mask over batch and heads;
        // a key mask; a transposed view): a selection is exact
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.FLOAT16}) {
            Tensor x = randn(t, 3, 4, 33, 33), y = randn(t, 3, 4, 33, 33), zero = Tensor.zeros(new int[0], t, Device.CPU);
            Tensor whole = randn(t, 3, 4, 33, 33).gt(0), causal = randn(t, 33, 33).gt(0), keys = randn(t, 3, 1, 1, 33).gt(0);
            Object[][] cases = {{"whole", whole, x, y}, {"scalar b", whole, x, zero}, {"scalar a, causal mask", causal, zero, y},
                    {"key mask", keys, x, y}};
            for (Object[] c : cases) {
                Tensor cond = (Tensor) c[1], a = (Tensor) c[2], b = (Tensor) c[3];
                close(Tensor.where(cond, a, b), Tensor.where(gpu(cond), gpu(a), gpu(b)), 0, "where " + c[0] + " " + t);
            }
            close(Tensor.where(whole, x.transpose(2, 3), y), Tensor.where(gpu(whole), gpu(x).transpose(2, 3), gpu(y)), 0,
                    "where transposed a " + t);
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

    /**
     * The vectorised paths: contiguous 16-bit maps (8 elements a thread) and contiguous casts between float32 and the
     * 16-bit floats, at lengths with and without a tail of fewer than 8, and at an offset that is not 16-byte aligned
     * (the strided kernels then run): casts and negation bit-equal to the CPU's, arithmetic within the 16-bit tolerance.
     */
    @Test void vectorisedSixteenBitMapsAndCasts() {
        for (DType t : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
            for (int n : new int[]{5, 64, 4099}) {
                Tensor a = randn(t, n + 1), b = randn(t, n + 1), f = randn(DType.FLOAT32, n + 1);
                for (int off : new int[]{0, 1}) {
                    Tensor ac = a.narrow(0, off, n), bc = b.narrow(0, off, n), fc = f.narrow(0, off, n);
                    Tensor ag = gpu(a).narrow(0, off, n), bg = gpu(b).narrow(0, off, n), fg = gpu(f).narrow(0, off, n);
                    String what = t + " n " + n + " offset " + off;
                    close(ac.add(bc), ag.add(bg), tol(t), "add " + what);
                    close(ac.mul(bc), ag.mul(bg), tol(t), "mul " + what);
                    close(ac.gelu(), ag.gelu(), tol(t), "gelu " + what);
                    close(ac.neg(), ag.neg(), 0, "neg " + what);
                    close(fc.to(t), fg.to(t), 0, "cast from float32 " + what);
                    close(ac.to(DType.FLOAT32), ag.to(DType.FLOAT32), 0, "cast to float32 " + what);
                }
            }
        }
    }

    /**
     * Layout changes that are batched transposes (NCHW <-> channels-last, a filter's KCRS <-> KRSC, a matrix's
     * transpose) take the tiled kernel, with and without a cast: every element where the CPU puts it, for channel
     * counts below, at and above a tile's 32 and a batch beyond one grid row of tiles; a permutation that is not one
     * (the batch innermost) takes the generic copy.
     */
    @Test void batchedTransposeCopies() {
        int[][] shapes = {{2, 3, 17, 19}, {3, 16, 5, 7}, {2, 64, 9, 9}, {1, 70, 33, 2}, {130, 9, 3, 3}, {4, 1, 6, 6}};
        DType[][] pairs = {{DType.FLOAT32, DType.FLOAT32}, {DType.FLOAT32, DType.BFLOAT16}, {DType.BFLOAT16, DType.FLOAT32},
                {DType.FLOAT16, DType.FLOAT16}, {DType.FLOAT64, DType.FLOAT32}, {DType.INT32, DType.INT32}};
        for (DType[] pair : pairs) {
            DType src = pair[0], dst = pair[1];
            for (int[] s : shapes) {
                Tensor c = randn(DType.FLOAT64, s).mul(50).to(src);
                String what = src + " -> " + dst + " " + java.util.Arrays.toString(s);
                Tensor toCl = gpu(c).toChannelsLast().to(dst);
                close(c.to(dst), toCl, 0, "to channels-last " + what);
                Tensor back = gpuCl(c).to(dst).contiguous();
                assertTrue(back.isContiguous(), what);
                close(c.to(dst), back, 0, "from channels-last " + what);
                close(c.permute(0, 2, 3, 1).contiguous().to(dst), gpu(c).permute(0, 2, 3, 1).to(dst).contiguous(), 0, "KRSC " + what);
                close(c.permute(1, 0, 2, 3).contiguous().to(dst), gpu(c).permute(1, 0, 2, 3).to(dst).contiguous(), 0,
                        "batch innermost " + what);
            }
            Tensor m = randn(DType.FLOAT64, 45, 70).to(src);
            close(m.t().contiguous().to(dst), gpu(m).t().contiguous().to(dst), 0, "matrix transpose " + src + " -> " + dst);
            Tensor into = Tensor.zeros(new int[]{70, 45}, dst, GPU);
            into.copyFrom(gpu(m).t());
            close(m.t().contiguous().to(dst), into, 0, "copyFrom a transpose " + src + " -> " + dst);
        }
        Tensor big = randn(DType.FLOAT32, 70000, 2, 3);   // a batch past one grid row: the kernel strides over it
        close(big.permute(0, 2, 1).contiguous(), gpu(big).permute(0, 2, 1).contiguous(), 0, "batch of 70000");
    }

    // ------------------------------------------------------------------ reductions

    /** Maps over channels-last inputs run flat and keep the layout; a mix of layouts gives the contiguous result. */
    @Test void channelsLastMapsKeepTheLayout() {
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-6 : 1e-2;
            int[] s = {2, 6, 5, 7};
            Tensor a = randn(t, s), b = randn(t, s), ag = gpuCl(a), bg = gpuCl(b);
            Tensor u = gpuBe.unary(UnaryOp.RELU, ag);
            assertChannelsLast(u, "relu");
            close(CPU_BE.unary(UnaryOp.RELU, a), u, tl, "relu " + t);
            Tensor sum = gpuBe.binary(BinaryOp.ADD, ag, bg);
            assertChannelsLast(sum, "add");
            close(CPU_BE.binary(BinaryOp.ADD, a, b), sum, tl, "add " + t);
            Tensor sc = gpuBe.binaryScalar(BinaryOp.MUL, ag, 0.5, false);
            assertChannelsLast(sc, "mul scalar");
            close(CPU_BE.binaryScalar(BinaryOp.MUL, a, 0.5, false), sc, tl, "mul scalar " + t);
            Tensor mixed = gpuBe.binary(BinaryOp.SUB, ag, gpu(b));
            assertTrue(mixed.isContiguous(), "a mix of layouts gives a contiguous result");
            close(CPU_BE.binary(BinaryOp.SUB, a, b), mixed, tl, "sub, mixed layouts " + t);
            Tensor cast = ag.to(t == DType.FLOAT32 ? DType.BFLOAT16 : DType.FLOAT32);
            assertChannelsLast(cast, "cast");
            close(a.to(cast.dtype()), cast, 1e-2, "cast " + t);
        }
    }
}
