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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
/** Matrix products on cuda:0 against the CPU, with and without TF32. Skips without a GPU. */
class MatmulGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(MatmulGpuTest.class); }

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

    /**
     * linear with its bias added in cuBLASLt's epilogue and its bias gradient from the column-sum kernel (outputs that are
     * whole 16-byte vectors) or the weight-gradient GEMM's BGRADB epilogue (the others), against the CPU's product and
     * sum, in every float type; sizes cuBLASLt may refuse (odd leading dimensions in 16-bit) take the fallback and must
     * match as well. Prints which problems took cuBLASLt.
     */
    @Test void linearFusedBiasAndBiasGradient() {
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-4 : 2e-2;
            for (int[] s : new int[][]{{64, 48, 144}, {66, 24, 40}, {37, 13, 21}, {5, 7, 3}, {64, 48, 65}, {1000, 32, 200}}) {
                compareGraph("linear " + t + " " + java.util.Arrays.toString(s), tl, in -> dev.kiln.nn.F.linear(in[0], in[1], in[2]),
                        randn(t, s[0], s[1]), randn(t, s[2], s[1]), randn(t, s[2]));
            }
            compareGraph("linear, leading dims, no bias " + t, tl, in -> dev.kiln.nn.F.linear(in[0], in[1], null), randn(t, 2, 5, 16), randn(t, 8, 16));
            compareGraph("linear, transposed weight and input " + t, tl, in -> dev.kiln.nn.F.linear(in[0].t(), in[1].t(), in[2]),
                    randn(t, 16, 6), randn(t, 16, 8), randn(t, 8));
        }
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        Assumptions.assumeTrue(lt != null, "no cuBLASLt on this machine: the fallback was tested");
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            System.out.printf("cuBLASLt %s: bias 144x64x48 %b, weight gradient 48x144x64 %b, bias 21x37x13 %b, bgradb 13x21x37 %b%n", t,
                    lt.accepted(t, CublasLt.Epilogue.BIAS, 144, 64, 48), lt.accepted(t, CublasLt.Epilogue.DEFAULT, 48, 144, 64),
                    lt.accepted(t, CublasLt.Epilogue.BIAS, 21, 37, 13), lt.accepted(t, CublasLt.Epilogue.BGRADB, 13, 21, 37));
            assertTrue(lt.accepted(t, CublasLt.Epilogue.BIAS, 144, 64, 48), t + ": the bias epilogue was refused: " + lt.lastRefusal);
            // 144 outputs are whole 16-byte vectors: the bias gradient is the column-sum kernel's, the product plain
            assertTrue(lt.accepted(t, CublasLt.Epilogue.DEFAULT, 48, 144, 64), t + ": the weight-gradient product was refused: " + lt.lastRefusal);
            assertFalse(lt.accepted(t, CublasLt.Epilogue.BGRADB, 48, 144, 64), t + ": BGRADB ran where the column sums should have");
            // 65 outputs: 16-bit gradient rows off 16-byte boundaries go through a padded copy rather than cuBLAS's slow kernel
            assertTrue(lt.accepted(t, CublasLt.Epilogue.BGRADB, 48, 65, 64), t + ": BGRADB with 65 outputs was refused: " + lt.lastRefusal);
        }
        System.out.println("cuBLASLt's last refusal: " + lt.lastRefusal);
    }

    /**
     * linear with a residual added in cuBLASLt's epilogue (D = x·wᵀ + b + r, C another matrix than D) against the CPU's
     * product and add, forward and backward: one dtype throughout, and 16-bit x and w onto a float32 residual (the
     * autocast residual stream: D in float32, the bias in float32). Odd sizes may take the fallback and must match too.
     */
    @Test void linearWithResidualInTheEpilogue() {
        for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16}) {
            double tl = t == DType.FLOAT32 ? 1e-4 : 2e-2;
            for (int[] s : new int[][]{{64, 48, 144}, {37, 13, 21}}) {
                compareGraph("linear + residual " + t + " " + java.util.Arrays.toString(s), tl, in -> dev.kiln.nn.F.linear(in[0], in[1], in[2], in[3]),
                        randn(t, s[0], s[1]), randn(t, s[2], s[1]), randn(t, s[2]), randn(t, s[0], s[2]));
                if (t == DType.FLOAT32) continue;
                compareGraph("linear " + t + " + float32 residual " + java.util.Arrays.toString(s), tl,
                        in -> dev.kiln.nn.F.linear(in[0], in[1], in[2], in[3]),
                        randn(t, s[0], s[1]), randn(t, s[2], s[1]), randn(DType.FLOAT32, s[2]), randn(DType.FLOAT32, s[0], s[2]));
            }
            compareGraph("linear + residual, leading dims, no bias " + t, tl, in -> dev.kiln.nn.F.linear(in[0], in[1], null, in[2]),
                    randn(t, 2, 5, 16), randn(t, 8, 16), randn(t, 2, 5, 8));
        }
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        Assumptions.assumeTrue(lt != null, "no cuBLASLt on this machine: the fallback was tested");
        assertTrue(lt.acceptedAdding(DType.FLOAT32, DType.FLOAT32, CublasLt.Epilogue.BIAS, 144, 64, 48), "float32 with C: " + lt.lastRefusal);
        assertTrue(lt.acceptedAdding(DType.BFLOAT16, DType.FLOAT32, CublasLt.Epilogue.BIAS, 144, 64, 48), "bfloat16 onto float32 C: " + lt.lastRefusal);
    }

    /**
     * 16-bit products with 65 columns (a character GPT's head): linear's weight gradient reads the output gradient from
     * a copy with padded rows; values and gradients against the CPU, and the padded problem planned by cuBLASLt.
     */
    @Test void sixteenBitRowsOffSixteenByteBoundaries() {
        for (DType t : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
            compareGraph("matmul (64, 65) x (65, 48) " + t, 3e-2, in -> in[0].matmul(in[1]), randn(t, 64, 65), randn(t, 65, 48));
            compareGraph("linear with 65 outputs " + t, 3e-2, in -> dev.kiln.nn.F.linear(in[0], in[1], in[2]),
                    randn(t, 96, 64), randn(t, 65, 64), randn(t, 65));
        }
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        Assumptions.assumeTrue(lt != null, "no cuBLASLt on this machine: cuBLAS's products were tested");
        assertTrue(lt.accepted(DType.BFLOAT16, CublasLt.Epilogue.BGRADB, 64, 65, 96), "the padded weight gradient was refused: " + lt.lastRefusal);
    }

    /**
     * Under bf16 autocast, linear's float32 weight and bias get float32 gradients straight from the product and the
     * column sums (cuBLASLt's D in float32, and the sums, or BGRADB's bias gradient for a 65-output head, in float32),
     * written into gradient buffers that are slices of one flat tensor (a data-parallel bucket): against the CPU, for
     * plain linear, linear after GELU and a 65-output head (the padded weight gradient).
     */
    @Test void autocastParameterGradientsInFloat32IntoGradientBuffers() {
        for (int[] s : new int[][]{{66, 64, 24}, {96, 64, 65}}) {
            for (boolean afterGelu : new boolean[]{false, true}) {
                Tensor x = randn(DType.FLOAT32, s[0], s[1]), w = randn(DType.FLOAT32, s[2], s[1]), b = randn(DType.FLOAT32, s[2]);
                Tensor up = randn(DType.FLOAT32, s[0], s[2]);
                Tensor[] grads = new Tensor[4];
                for (Device d : new Device[]{Device.CPU, GPU}) {
                    Tensor xd = x.to(d).detach(), wd = w.to(d).detach().requiresGrad(true), bd = b.to(d).detach().requiresGrad(true);
                    // the buffers at offsets 64 and 64 + numel(w) rounded up to 64, as DataParallel lays a bucket out
                    int wAt = 64, bAt = (int) ((wAt + wd.numel() + 63) / 64 * 64);
                    Tensor flat = Tensor.zeros(new int[]{bAt + s[2] + 64}, DType.FLOAT32, d);
                    wd.setGradBuffer(flat.narrow(0, wAt, (int) wd.numel()).view(wd.shape()));
                    bd.setGradBuffer(flat.narrow(0, bAt, s[2]));
                    Tensor y;
                    try (var ac = dev.kiln.autograd.Autocast.enable(DType.BFLOAT16)) {
                        y = afterGelu ? dev.kiln.nn.F.linearAfterGelu(xd, dev.kiln.nn.F.GeluApproximation.NONE, wd, bd, null)
                                : dev.kiln.nn.F.linear(xd, wd, bd);
                    }
                    y.to(DType.FLOAT32).mul(up.to(d)).sum().backward();
                    String what = (afterGelu ? "linear after gelu " : "linear ") + java.util.Arrays.toString(s) + " on " + d;
                    assertEquals(DType.FLOAT32, wd.grad().dtype(), what + ": weight gradient dtype");
                    assertTrue(wd.grad().storage() == flat.storage() && bd.grad().storage() == flat.storage(), what + ": gradients in the buffer");
                    int i = d.isCuda() ? 2 : 0;
                    grads[i] = wd.grad().to(Device.CPU);
                    grads[i + 1] = bd.grad().to(Device.CPU);
                }
                close(grads[0], grads[2].to(GPU), 1e-3, "weight gradient " + java.util.Arrays.toString(s) + (afterGelu ? " after gelu" : ""));
                close(grads[1], grads[3].to(GPU), 1e-3, "bias gradient " + java.util.Arrays.toString(s) + (afterGelu ? " after gelu" : ""));
            }
        }
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        Assumptions.assumeTrue(lt != null, "no cuBLASLt on this machine: the fallback was tested");
        assertTrue(lt.accepted(DType.BFLOAT16, DType.FLOAT32, CublasLt.Epilogue.DEFAULT, 64, 24, 66), "bf16 weight gradient into float32: " + lt.lastRefusal);
        assertTrue(lt.accepted(DType.BFLOAT16, DType.FLOAT32, CublasLt.Epilogue.BGRADB, 64, 65, 96), "the padded one into float32: " + lt.lastRefusal);
    }

    /**
     * linear after GELU (its output recomputed in backward) with a residual, against the CPU: float32, bf16 onto float32,
     * and float16 without bias or residual, the input's features a multiple of 8 (the tanh GELU's input gradient then
     * comes from cuBLASLt's DGELU epilogue, which must have taken it) or not (the composed product and op).
     */
    @Test void linearAfterGeluWithResidual() {
        for (dev.kiln.nn.F.GeluApproximation a : dev.kiln.nn.F.GeluApproximation.values()) {
            compareGraph("linear after gelu " + a + " float32", 1e-4, in -> dev.kiln.nn.F.linearAfterGelu(in[0], a, in[1], in[2], in[3]),
                    randn(DType.FLOAT32, 2, 33, 96), randn(DType.FLOAT32, 24, 96), randn(DType.FLOAT32, 24), randn(DType.FLOAT32, 2, 33, 24));
            compareGraph("linear after gelu " + a + " bfloat16 onto float32", 3e-2, in -> dev.kiln.nn.F.linearAfterGelu(in[0], a, in[1], in[2], in[3]),
                    randn(DType.BFLOAT16, 66, 64), randn(DType.BFLOAT16, 32, 64), randn(DType.FLOAT32, 32), randn(DType.FLOAT32, 66, 32));
            for (int in : new int[]{128, 36}) {
                compareGraph("linear after gelu " + a + " float16, " + in + " features", 3e-2,
                        x -> dev.kiln.nn.F.linearAfterGelu(x[0], a, x[1], null, null), randn(DType.FLOAT16, 200, in), randn(DType.FLOAT16, 48, in));
            }
        }
        CublasLt lt = Blas.lt(CudaDevice.get(0));
        Assumptions.assumeTrue(lt != null, "no cuBLASLt on this machine: the composed gradient was tested");
        // (m, n, k) = (features, rows, outputs)
        assertTrue(lt.accepted(DType.FLOAT32, CublasLt.Epilogue.DGELU, 96, 66, 24), "float32 DGELU refused: " + lt.lastRefusal);
        assertTrue(lt.accepted(DType.BFLOAT16, CublasLt.Epilogue.DGELU, 64, 66, 32), "bfloat16 DGELU refused: " + lt.lastRefusal);
        assertTrue(lt.accepted(DType.FLOAT16, CublasLt.Epilogue.DGELU, 128, 200, 48), "float16 DGELU refused: " + lt.lastRefusal);
        assertTrue(!lt.accepted(DType.FLOAT16, CublasLt.Epilogue.DGELU, 36, 200, 48), "36 features cannot take DGELU");
    }

    /**
     * With the timed search on, each new product's cuBLASLt candidates are timed on its own operands and the fastest
     * kept: the results (linear with its bias, its backward, a plain matmul) must still match the CPU, and the plan
     * must say it was timed.
     */
    @Test void timedSearchKeepsProductsRight() {
        boolean before = Cuda.cudnnBenchmark();
        Cuda.setCudnnBenchmark(true);
        try {
            for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
                double tl = t == DType.FLOAT32 ? 1e-4 : 2e-2;
                compareGraph("timed linear " + t, tl, in -> dev.kiln.nn.F.linear(in[0], in[1], in[2]),
                        randn(t, 200, 96), randn(t, 80, 96), randn(t, 80));
                compareGraph("timed matmul " + t, tl, in -> in[0].matmul(in[1]), randn(t, 72, 56), randn(t, 56, 104));
            }
            CublasLt lt = Blas.lt(CudaDevice.get(0));
            Assumptions.assumeTrue(lt != null, "no cuBLASLt on this machine: cuBLAS's products were tested");
            // y = x·wᵀ + b in column-major: (80 x 200) = (80 x 96)·(96 x 200)
            assertTrue(lt.timed(DType.FLOAT32, CublasLt.Epilogue.BIAS, 80, 200, 96), "the bias GEMM's candidates were not timed");
        } finally {
            Cuda.setCudnnBenchmark(before);
        }
    }

    /**
     * float32 products on matmul.cu's gemm_wg32 (Hopper) and gemm_tc32 (three TF32 tensor-core products each, tile sums
     * added in float32), forced where they apply: every operand layout (nn, nt, tn, tt) with partial tiles; linear with its bias and a residual and
     * its backward (the weight gradient split along k) against float64 on the CPU at float32's error, where one TF32
     * product would be ~3e-4 off; a 16384-deep product within 2x cuBLAS's float32 error; the timed search right too.
     */
    @Test void float32ProductsOnTensorCores() {
        Assumptions.assumeTrue(Cuda.device(GPU).ccMajor() >= 8, "TF32 tensor cores need sm_80");
        // gemm_wg32 on Hopper (wgmma), gemm_tc32 elsewhere; on Hopper gemm_tc32 (mma.sync) is checked too
        Cuda.DeviceInfo info = Cuda.device(GPU);
        boolean hopper = KernelCache.arch(info.ccMajor(), info.ccMinor()).equals("sm_90a");
        for (boolean mmaSync : hopper ? new boolean[]{false, true} : new boolean[]{true}) {
            MatmulCuda.mmaSyncForced = mmaSync;
            try {
                tensorCoreProducts(mmaSync ? "gemm_tc32" : "gemm_wg32");
            } finally {
                MatmulCuda.mmaSyncForced = false;
            }
        }
        DType t = DType.FLOAT32, d = DType.FLOAT64;
        boolean search = Cuda.cudnnBenchmark();
        Cuda.setCudnnBenchmark(true);
        try {
            Tensor a = randn(t, 512, 640), b = randn(t, 640, 512);
            for (int i = 0; i < 2; i++) assertRelativeError(a.to(d).matmul(b.to(d)), gpu(a).matmul(gpu(b)), 5e-6, "timed search, call " + i);
        } finally {
            Cuda.setCudnnBenchmark(search);
        }
    }

    private void tensorCoreProducts(String kernel) {
        DType t = DType.FLOAT32, d = DType.FLOAT64;
        long runs = MatmulCuda.TC32_RUNS.get();
        MatmulCuda.tc32Forced = true;
        try {
            Tensor a = randn(t, 300, 520), at = randn(t, 520, 300), b = randn(t, 520, 1000), bt = randn(t, 1000, 520);
            Tensor[][] cases = {{a, b}, {a, bt.t()}, {at.t(), b}, {at.t(), bt.t()}};
            for (Tensor[] c : cases) {
                String what = kernel + " matmul " + (c[0].isContiguous() ? "a" : "aᵀ") + " x " + (c[1].isContiguous() ? "b" : "bᵀ");
                assertRelativeError(c[0].to(d).matmul(c[1].to(d)), gpu(c[0].contiguous()).matmul(gpu(c[1].contiguous())), 5e-6, what + ", contiguous");
                Tensor ga = c[0].isContiguous() ? gpu(c[0]) : gpu(c[0].t().contiguous()).t(), gb = c[1].isContiguous() ? gpu(c[1]) : gpu(c[1].t().contiguous()).t();
                assertRelativeError(c[0].to(d).matmul(c[1].to(d)), ga.matmul(gb), 5e-6, what);
            }
            // linear + bias + residual, forward and backward (x: tn forward, nn input gradient, nt weight gradient in 4 slices)
            Tensor x = randn(t, 1000, 384), w = randn(t, 388, 384), bias = randn(t, 388), r = randn(t, 1000, 388), up = randn(t, 1000, 388);
            Tensor[] want = linearAndGradients(x.to(d), w.to(d), bias.to(d), r.to(d), up.to(d));
            Tensor[] got = linearAndGradients(gpu(x), gpu(w), gpu(bias), gpu(r), gpu(up));
            String[] names = {"linear + residual", "input gradient", "weight gradient", "bias gradient"};
            for (int i = 0; i < 4; i++) assertRelativeError(want[i], got[i], 5e-6, kernel + " " + names[i]);
            // after a GELU, tanh and exact: the input gradient the product, then the slope, except the tanh one's from
            // cuBLASLt's DGELU epilogue, whose slope is its own (8.4e-6 here on an H200), held to linearAfterGelu's bound
            for (dev.kiln.nn.F.GeluApproximation approx : dev.kiln.nn.F.GeluApproximation.values()) {
                Tensor[] wantG = linearAfterGeluGradients(approx, x.to(d), w.to(d), bias.to(d), up.to(d));
                Tensor[] gotG = linearAfterGeluGradients(approx, gpu(x), gpu(w), gpu(bias), gpu(up));
                for (int i = 0; i < 3; i++) {
                    double bound = i == 1 && approx == dev.kiln.nn.F.GeluApproximation.TANH ? 1e-4 : 5e-6;
                    assertRelativeError(wantG[i], gotG[i], bound, kernel + " after GELU " + approx + " " + new String[]{"linear", "input gradient", "weight gradient"}[i]);
                }
            }
            assertTrue(MatmulCuda.TC32_RUNS.get() - runs >= 16, kernel + " ran " + (MatmulCuda.TC32_RUNS.get() - runs) + " products, 16 expected");
            // a long reduction: the tile sums added in float32 keep float32's error (the tensor cores' own sums do not)
            Tensor p = randn(t, 128, 16384), q = randn(t, 16384, 128);
            Tensor exact = p.to(d).matmul(q.to(d));
            double ours = relativeError(exact, gpu(p).matmul(gpu(q)));
            MatmulCuda.tc32Forced = false;
            double cublas = relativeError(exact, gpu(p).matmul(gpu(q)));
            System.out.printf("128 x 16384 x 128: %s %.2e, cuBLAS float32 %.2e of the largest element%n", kernel, ours, cublas);
            assertTrue(ours < 2 * cublas + 1e-7, kernel + "'s error " + ours + " against cuBLAS's " + cublas);
        } finally {
            MatmulCuda.tc32Forced = null;
        }
    }

    /** linear(x, w, bias) + r, then the gradients of sum(y * up) for x, w and bias: {y, dx, dw, dbias} on the CPU. */
    private static Tensor[] linearAndGradients(Tensor x, Tensor w, Tensor bias, Tensor r, Tensor up) {
        Tensor xr = x.detach().requiresGrad(true), wr = w.detach().requiresGrad(true), br = bias.detach().requiresGrad(true);
        Tensor y = dev.kiln.nn.F.linear(xr, wr, br, r);
        y.mul(up).sum().backward();
        return new Tensor[]{y.to(Device.CPU), xr.grad().to(Device.CPU), wr.grad().to(Device.CPU), br.grad().to(Device.CPU)};
    }

    /** linearAfterGelu(x, approx, w, bias), then the gradients of sum(y * up) for x and w: {y, dx, dw} on the CPU. */
    private static Tensor[] linearAfterGeluGradients(dev.kiln.nn.F.GeluApproximation approx, Tensor x, Tensor w, Tensor bias, Tensor up) {
        Tensor xr = x.detach().requiresGrad(true), wr = w.detach().requiresGrad(true);
        Tensor y = dev.kiln.nn.F.linearAfterGelu(xr, approx, wr, bias, null);
        y.mul(up).sum().backward();
        return new Tensor[]{y.to(Device.CPU), xr.grad().to(Device.CPU), wr.grad().to(Device.CPU)};
    }

    /** max |got - want| over max |want|. */
    private static double relativeError(Tensor want, Tensor got) {
        double[] w = want.toDoubleArray(), g = got.to(Device.CPU).toDoubleArray();
        double err = 0, scale = 0;
        for (int i = 0; i < w.length; i++) {
            err = Math.max(err, Math.abs(g[i] - w[i]));
            scale = Math.max(scale, Math.abs(w[i]));
        }
        return err / scale;
    }

    private static void assertRelativeError(Tensor want, Tensor got, double bound, String what) {
        assertArrayEquals(want.shape(), got.shape(), what + ": shape");
        double e = relativeError(want, got);
        assertTrue(e < bound, what + ": error " + e + " of the largest element, over " + bound);
    }
}
