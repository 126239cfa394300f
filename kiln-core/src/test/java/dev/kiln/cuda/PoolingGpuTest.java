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
/** Max and average pooling on cuda:0 against the CPU. Skips without a GPU. */
class PoolingGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(PoolingGpuTest.class); }

    @Test void poolingForwardAndBackward() {
        Pool2dParams[] ps = {Pool2dParams.of(2, 2, 0), Pool2dParams.of(3, 2, 1), new Pool2dParams(3, 2, 1, 2, 1, 1, false)};
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            for (Pool2dParams p : ps) {
                Tensor x = randn(t, 2, 3, 9, 10);
                Tensor[] mc = CPU_BE.maxPool2d(x, p), mg = gpuBe.maxPool2d(gpu(x), p);
                close(mc[0], mg[0], 0, "max pool " + p);
                close(mc[1], mg[1], 0, "max pool indices " + p);
                Tensor gy = randn(t, mc[0].shape());
                // bfloat16 with overlapping windows: both sum in float or wider and round once, in their own orders
                close(CPU_BE.maxPool2dBackward(gy, mc[1], x.shape(), p), gpuBe.maxPool2dBackward(gpu(gy), mg[1], x.shape(), p),
                        t == DType.BFLOAT16 ? 3e-2 : tol(t), "max pool backward " + p);
                close(CPU_BE.avgPool2d(x, p), gpuBe.avgPool2d(gpu(x), p), tol(t), "avg pool " + p);
                Tensor gya = randn(t, CPU_BE.avgPool2d(x, p).shape());
                // bfloat16: the CPU rounds the sum of each element's shares once, as the GPU
                close(CPU_BE.avgPool2dBackward(gya, x.shape(), p), gpuBe.avgPool2dBackward(gpu(gya), x.shape(), p),
                        t == DType.BFLOAT16 ? 4e-2 : tol(t), "avg pool backward " + p);
            }
        }
    }

    /** The GPU's max-pool indices as the CPU's flat positions over H * W (max_pool_fwd_v's window places translated). */
    private static long[] flatIndices(Tensor idx, int[] xs, Pool2dParams p) {
        long[] v = idx.cpu().to(DType.INT64).toLongArray();
        if (idx.dtype() != DType.UINT8) return v;
        int oh = idx.shape()[2], ow = idx.shape()[3];
        for (int i = 0; i < v.length; i++) {
            int ox = i % ow, oy = (i / ow) % oh, ky = (int) v[i] / p.kernelW(), kx = (int) v[i] % p.kernelW();
            v[i] = (long) (oy * p.strideH() - p.padH() + ky) * xs[3] + ox * p.strideW() - p.padW() + kx;
        }
        return v;
    }

    /** Max and average pooling on channels-last inputs: outputs and input gradients channels-last, equal to the CPU's. */
    @Test void channelsLastPooling() {
        Pool2dParams[] ps = {Pool2dParams.of(3, 2, 1), Pool2dParams.of(2, 2, 0), new Pool2dParams(3, 3, 1, 1, 1, 1, false),
                new Pool2dParams(7, 7, 7, 7, 0, 0, true)};
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-5 : 1e-2;
            // 12 channels: float32's 16-byte gather (4 per thread), bfloat16's scalar one; 16: both 16-byte
            for (Pool2dParams p : ps) for (int[] xs : new int[][]{{3, 12, 14, 14}, {2, 16, 9, 11}}) {
                String what = "channels-last pooling " + p + " " + java.util.Arrays.toString(xs) + " " + t;
                Tensor x = randn(t, xs), xg = gpuCl(x);
                Tensor[] mc = CPU_BE.maxPool2d(x, p), mg = gpuBe.maxPool2d(xg, p);
                boolean oneByOne = mc[0].shape()[2] == 1 && mc[0].shape()[3] == 1;   // both layouts at once
                if (!oneByOne) assertChannelsLast(mg[0], what + " max");
                close(mc[0], mg[0], tl, what + " max");
                boolean bytes = xs[1] % (16 / t.byteSize()) == 0 && p.kernelH() * p.kernelW() < 255;   // max_pool_fwd_v's
                assertEquals(bytes ? DType.UINT8 : DType.INT64, mg[1].dtype(), what + " max indices' dtype");
                assertArrayEquals(mc[1].toLongArray(), flatIndices(mg[1], xs, p), what + " max indices");
                Tensor g = randn(t, mc[0].shape());
                // the reference sums overlapping windows' gradients in float32 and rounds once, as the GPU does
                Tensor dxc = CPU_BE.maxPool2dBackward(g.to(DType.FLOAT32), mc[1], xs, p);
                Tensor dxg = gpuBe.maxPool2dBackward(gpuCl(g), mg[1], xs, p);
                if (!oneByOne) assertChannelsLast(dxg, what + " max dx");
                close(dxc.to(t), dxg, tl, what + " max dx");
                // byte indices with a gradient off 16-byte alignment, and with one of another dtype (float64 when its
                // 16 bytes hold more channels than C divides into)
                close(dxc.to(t), gpuBe.maxPool2dBackward(misaligned(g), mg[1], xs, p), tl, what + " max dx, misaligned gradient");
                DType other = t == DType.FLOAT32 ? DType.BFLOAT16 : DType.FLOAT32;
                Tensor dxo = gpuBe.maxPool2dBackward(gpuCl(g.to(other)), mg[1], xs, p);
                assertEquals(other, dxo.dtype(), what + " max dx in " + other);
                close(CPU_BE.maxPool2dBackward(g.to(other).to(DType.FLOAT32), mc[1], xs, p).to(other), dxo, 1e-2, what + " max dx in " + other);
                Tensor ac = CPU_BE.avgPool2d(x, p), ag = gpuBe.avgPool2d(xg, p);
                if (!oneByOne) assertChannelsLast(ag, what + " avg");
                close(ac, ag, tl, what + " avg");
                Tensor dag = gpuBe.avgPool2dBackward(gpuCl(g), xs, p);
                if (!oneByOne) assertChannelsLast(dag, what + " avg dx");
                close(CPU_BE.avgPool2dBackward(g.to(DType.FLOAT32), xs, p).to(t), dag, tl, what + " avg dx");
            }
        }
        // NaNs: a window with one takes it (and its index) at once, in the 16-byte kernel as in the others
        for (int[] xs : new int[][]{{2, 16, 9, 11}, {3, 12, 14, 14}}) {
            float[] a = randn(DType.FLOAT32, xs).toFloatArray();
            for (int i = 7; i < a.length; i += 97) a[i] = Float.NaN;
            Tensor x = Tensor.of(a, xs);
            for (Pool2dParams p : ps) {
                String what = "channels-last max pooling with NaNs " + p + " " + java.util.Arrays.toString(xs);
                Tensor[] mc = CPU_BE.maxPool2d(x, p), mg = gpuBe.maxPool2d(gpuCl(x), p);
                close(mc[0], mg[0], 1e-6, what);
                assertArrayEquals(mc[1].toLongArray(), flatIndices(mg[1], xs, p), what + " indices");
            }
        }
    }
}
