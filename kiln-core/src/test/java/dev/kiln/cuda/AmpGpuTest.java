package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.amp.GradScaler;
import dev.kiln.autograd.Autocast;
import dev.kiln.nn.F;
import dev.kiln.nn.Model;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import dev.kiln.train.ModelZoo;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Mixed precision on the GPU: autocast GEMMs (cuBLAS bf16/fp16 tensor cores) and convolutions (cuDNN, and the
 * im2col + GEMM kernels) against float32 within 16-bit tolerance (relative error by norm), and short bf16 and fp16
 * trainings where the loss falls. Skips on machines without a GPU.
 */
class AmpGpuTest {
    static final Device GPU = Device.cuda(0);
    /** bfloat16 keeps 8 bits of mantissa: relative error by norm about 2^-8 per rounding, a few roundings deep. */
    static final double BF16_TOL = 1e-2, FP16_TOL = 2e-3;

    final Generator gen = new Generator(11);

    @BeforeAll static void requireGpu() {
        dev.kiln.cuda.GpuTests.requireGpu(AmpGpuTest.class);
        Cuda.setAllowTf32(Device.cuda(0), false);
        Cuda.setAllowTf32Conv(Device.cuda(0), false); // the float32 reference without TF32
    }

    Tensor randn(int... shape) { return Tensor.randn(gen, shape, DType.FLOAT32, GPU); }

    static double relErr(Tensor ref, Tensor got) {
        float[] r = ref.toFloatArray(), g = got.toFloatArray();
        double num = 0, den = 0;
        for (int i = 0; i < r.length; i++) {
            double d = r[i] - g[i];
            num += d * d;
            den += (double) r[i] * r[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }

    @Test void autocastMatmulMatchesFloat32() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor a = randn(256, 512), b = randn(512, 384), w = randn(200, 512), bias = randn(200);
            Tensor ref = a.matmul(b), refLinear = F.linear(a, w, bias);
            for (DType low : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
                Tensor y, lin;
                try (var ac = Autocast.enable(low)) {
                    y = a.matmul(b);
                    lin = F.linear(a, w, bias);
                }
                assertEquals(low, y.dtype());
                double tol = low == DType.BFLOAT16 ? BF16_TOL : FP16_TOL;
                assertTrue(relErr(ref, y) < tol, low + " matmul error " + relErr(ref, y));
                assertTrue(relErr(refLinear, lin) < tol, low + " linear error " + relErr(refLinear, lin));
            }
        }
    }

    @Test void autocastConvolutionMatchesFloat32ForwardAndBackward() {
        for (boolean cudnn : new boolean[]{true, false}) {
            Dnn.setEnabled(cudnn);
            try (MemoryScope s = MemoryScope.open()) {
                Tensor x = randn(8, 16, 20, 20).requiresGrad(true), w = randn(32, 16, 3, 3).requiresGrad(true), b = randn(32).requiresGrad(true);
                Tensor gy = randn(8, 32, 20, 20);
                Tensor ref = F.conv2d(x, w, b, 1, 1);
                ref.backward(gy, false);
                Tensor gx = x.grad(), gw = w.grad(), gb = b.grad();
                x.setGrad(null);
                w.setGrad(null);
                b.setGrad(null);
                Tensor y;
                try (var ac = Autocast.enable(DType.BFLOAT16)) {
                    y = F.conv2d(x, w, b, 1, 1);
                }
                assertEquals(DType.BFLOAT16, y.dtype());
                y.backward(gy.to(DType.BFLOAT16), false);
                String path = cudnn ? "cuDNN" : "im2col";
                assertTrue(relErr(ref, y) < BF16_TOL, path + " bf16 conv error " + relErr(ref, y));
                assertEquals(DType.FLOAT32, x.grad().dtype());
                assertTrue(relErr(gx, x.grad()) < BF16_TOL, path + " bf16 conv input gradient error " + relErr(gx, x.grad()));
                assertTrue(relErr(gw, w.grad()) < BF16_TOL, path + " bf16 conv weight gradient error " + relErr(gw, w.grad()));
                assertTrue(relErr(gb, b.grad()) < BF16_TOL, path + " bf16 conv bias gradient error " + relErr(gb, b.grad()));
            } finally {
                Dnn.setEnabled(true);
            }
        }
    }

    /** 60 steps of Adam on one random batch of 256 (memorising it): the loss must fall by half. */
    private double[] train(ModelZoo kind, DType low, boolean scaleLoss) {
        Model model = kind.build(new Generator(0));
        model.to(GPU);
        Optimizer opt = new Adam(model.parameters(), 1e-3);
        GradScaler scaler = scaleLoss ? new GradScaler() : null;
        Tensor x = randn(256, 1, 28, 28).keep();
        long[] labels = new long[256];
        for (int i = 0; i < labels.length; i++) labels[i] = (i * 7) % 10;
        Tensor y = Tensor.of(labels, 256).to(GPU).keep();
        double first = Double.NaN, last = Double.NaN;
        int skipped = 0;
        for (int step = 0; step < 60; step++) {
            try (MemoryScope s = MemoryScope.open()) {
                opt.zeroGrad();
                Tensor loss;
                try (var ac = Autocast.enable(low)) {
                    loss = F.crossEntropy(model.forward(x), y);
                }
                if (scaler == null) {
                    loss.backward();
                    opt.step();
                } else {
                    scaler.scale(loss).backward();
                    if (!scaler.step(opt)) skipped++;
                    scaler.update();
                }
                double l = loss.item();
                if (step == 0) first = l;
                last = l;
            }
        }
        List<Tensor> params = model.parameters();
        for (Tensor p : params) assertEquals(DType.FLOAT32, p.dtype());
        return new double[]{first, last, skipped};
    }

    @Test void bf16AndFp16TrainingLowersTheLoss() {
        for (ModelZoo kind : new ModelZoo[]{ModelZoo.MLP, ModelZoo.CNN, ModelZoo.CNN_BN}) {
            double[] bf = train(kind, DType.BFLOAT16, false);
            System.out.printf("%s bf16: loss %.4f -> %.4f%n", kind.cliName(), bf[0], bf[1]);
            assertTrue(bf[1] < 0.5 * bf[0], kind.cliName() + " bf16 loss falls: " + bf[0] + " -> " + bf[1]);
            double[] fp = train(kind, DType.FLOAT16, true);
            System.out.printf("%s fp16: loss %.4f -> %.4f, %d steps skipped%n", kind.cliName(), fp[0], fp[1], (int) fp[2]);
            assertTrue(fp[1] < 0.5 * fp[0], kind.cliName() + " fp16 loss falls: " + fp[0] + " -> " + fp[1]);
            assertTrue(fp[2] < 10, "few steps skipped: " + fp[2]);
        }
    }
}
