package dev.kiln.amp;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.nn.F;
import dev.kiln.nn.Linear;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.*;

/** Autocast on the CPU: which ops produce which dtype, gradients through the casts, and bf16 training. */
class AutocastTest {
    private static final Generator G = new Generator(7);

    private static Tensor randn(int... shape) { return Tensor.randn(G, shape); }

    @Test void gemmsAndConvolutionsRunLow() {
        Tensor a = randn(4, 8), b = randn(8, 3), w = randn(3, 8), bias = randn(3);
        Tensor x = randn(2, 3, 6, 6), k = randn(4, 3, 3, 3), kb = randn(4);
        try (var ac = Autocast.enable(DType.BFLOAT16)) {
            assertEquals(DType.BFLOAT16, a.matmul(b).dtype());
            assertEquals(DType.BFLOAT16, F.linear(a, w, bias).dtype(), "the bias is cast too, so the sum stays low");
            assertEquals(DType.BFLOAT16, F.conv2d(x, k, kb, 1, 1).dtype());
            assertEquals(DType.BFLOAT16, F.linear(a, w, bias).relu().dtype(), "ops not listed keep their input's dtype");
            Tensor a64 = a.to(DType.FLOAT64), b64 = b.to(DType.FLOAT64);
            assertEquals(DType.FLOAT64, a64.matmul(b64).dtype(), "only float32 inputs are cast down, as PyTorch");
        }
        try (var ac = Autocast.enable(DType.FLOAT16)) {
            assertEquals(DType.FLOAT16, a.matmul(b).dtype());
        }
        assertEquals(DType.FLOAT32, a.matmul(b).dtype(), "closing the scope turns autocast off");
    }

    @Test void reductionsNormsAndLossesRunInFloat32() {
        Tensor h = randn(4, 10).to(DType.BFLOAT16);
        Tensor target = Tensor.of(new long[]{1, 0, 9, 3}, 4);
        try (var ac = Autocast.enable(DType.BFLOAT16)) {
            assertEquals(DType.FLOAT32, F.softmax(h, 1).dtype());
            assertEquals(DType.FLOAT32, F.logSoftmax(h, 1).dtype());
            assertEquals(DType.FLOAT32, F.crossEntropy(h, target).dtype());
            assertEquals(DType.FLOAT32, F.mseLoss(h, h.mul(0.5), F.Reduction.MEAN).dtype());
            assertEquals(DType.FLOAT32, F.layerNorm(h, new int[]{10}, null, null, 1e-5).dtype());
            assertEquals(DType.FLOAT32, F.batchNorm(h, null, null, null, null, true, 0.1, 1e-5).dtype());
            assertEquals(DType.FLOAT32, h.sum().dtype());
            assertEquals(DType.FLOAT32, h.mean(1, false).dtype());
            assertEquals(DType.FLOAT32, h.exp().dtype());
            assertEquals(DType.FLOAT32, h.abs().add(1).log().dtype());
            assertEquals(DType.FLOAT32, h.pow(2).dtype());
            assertEquals(DType.BFLOAT16, h.max().dtype(), "max is exact in any dtype: not listed");
        }
        assertEquals(DType.BFLOAT16, h.sum().dtype(), "outside autocast a sum keeps its dtype");
    }

    /**
     * A pre-norm block under autocast: its layer norm writes 16 bits straight away (the values are the float32 output
     * rounded, the gradients float32's), and its last projection adds the float32 residual in the same op (a float32
     * sum whose gradients match a separate product and add).
     */
    @Test void preNormBlockPiecesKeepTheResidualStreamFloat32() {
        Tensor x = randn(6, 16).requiresGrad(true), w = randn(16).requiresGrad(true), b = randn(16).requiresGrad(true);
        Tensor g = randn(6, 16).to(DType.BFLOAT16).to(DType.FLOAT32);
        Tensor ref = F.layerNorm(x, new int[]{16}, w, b, 1e-5);
        ref.backward(g, false);
        double[] dx = x.grad().toDoubleArray(), dw = w.grad().toDoubleArray();
        x.zeroGrad();
        w.zeroGrad();
        b.zeroGrad();
        Tensor low = F.layerNorm(x, new int[]{16}, w, b, 1e-5, DType.BFLOAT16);
        assertEquals(DType.BFLOAT16, low.dtype());
        assertArrayEquals(ref.to(DType.BFLOAT16).toDoubleArray(), low.toDoubleArray(), 0, "float32's output, rounded once");
        low.backward(g.to(DType.BFLOAT16), false);
        assertArrayEquals(dx, x.grad().toDoubleArray(), 1e-5);
        assertArrayEquals(dw, w.grad().toDoubleArray(), 1e-5);
        var e = assertThrows(IllegalArgumentException.class, () -> F.layerNorm(x.to(DType.FLOAT64), new int[]{16}, null, null, 1e-5, DType.BFLOAT16));
        assertTrue(e.getMessage().contains("float32 into 16 bits only"), e.getMessage());

        Tensor h = randn(6, 8).requiresGrad(true), pw = randn(16, 8).requiresGrad(true), pb = randn(16).requiresGrad(true);
        Tensor r = randn(6, 16).requiresGrad(true);
        Tensor separate = Tensor.noGrad(() -> r.add(F.linear(h.to(DType.BFLOAT16).to(DType.FLOAT32), pw.to(DType.BFLOAT16).to(DType.FLOAT32), pb)));
        try (var ac = Autocast.enable(DType.BFLOAT16)) {
            Tensor fused = F.linear(h, pw, pb, r);
            assertEquals(DType.FLOAT32, fused.dtype(), "the sum stays in the residual's dtype");
            assertArrayEquals(separate.toDoubleArray(), fused.toDoubleArray(), 1e-4, "16-bit operands, float32 sum");
            fused.sum().backward();
        }
        assertEquals(DType.FLOAT32, pw.grad().dtype());
        for (double v : r.grad().toDoubleArray()) assertEquals(1, v, 0, "the residual's gradient is the output's");
        double[] colSums = new double[16];
        java.util.Arrays.fill(colSums, 6);
        assertArrayEquals(colSums, pb.grad().toDoubleArray(), 1e-2, "the bias's gradient: the sums of the output's");
    }

    @Test void scopesNestAndStayOnTheirThread() throws Exception {
        Tensor a = randn(2, 2);
        try (var outer = Autocast.enable(DType.BFLOAT16)) {
            try (var off = Autocast.disabled()) {
                assertFalse(Autocast.isEnabled());
                assertEquals(DType.FLOAT32, a.matmul(a).dtype());
            }
            assertEquals(DType.BFLOAT16, Autocast.dtype(), "closing the inner scope restores the outer one");
            DType elsewhere = CompletableFuture.supplyAsync(() -> a.matmul(a).dtype()).get();
            assertEquals(DType.FLOAT32, elsewhere, "another thread is not under this thread's autocast");
        }
        assertNull(Autocast.dtype());
        assertThrows(IllegalArgumentException.class, () -> Autocast.enable(DType.FLOAT64));
    }

    @Test void gradientsReachFloat32LeavesAndMatchFloat32() {
        Sequential model = new Sequential(new Linear(12, 16, new Generator(1)), new ReLU(), new Linear(16, 5, new Generator(2)));
        Tensor x = randn(8, 12);
        Tensor y = Tensor.of(new long[]{0, 1, 2, 3, 4, 0, 1, 2}, 8);

        F.crossEntropy(model.forward(x), y).backward();
        List<float[]> reference = model.parameters().stream().map(p -> p.grad().toFloatArray()).toList();
        model.parameters().forEach(Tensor::zeroGrad);

        Tensor loss;
        try (var ac = Autocast.enable(DType.BFLOAT16)) {
            loss = F.crossEntropy(model.forward(x), y);
        }
        assertEquals(DType.FLOAT32, loss.dtype());
        loss.backward();
        List<Tensor> params = model.parameters();
        for (int i = 0; i < params.size(); i++) {
            Tensor g = params.get(i).grad();
            assertNotNull(g, "parameter " + i + " has a gradient");
            assertEquals(DType.FLOAT32, g.dtype(), "float32 master weights get float32 gradients");
            assertTrue(relativeError(reference.get(i), g.toFloatArray()) < 3e-2,
                    "parameter " + i + " gradient within bf16 tolerance: " + relativeError(reference.get(i), g.toFloatArray()));
        }
    }

    /**
     * linear's float32 weight and bias under bf16 autocast get gradients computed from the bf16 operands in float32,
     * not a bf16 product cast back: equal to the exact product of the rounded operands far below bf16's resolution.
     */
    @Test void linearParameterGradientsAreNotRoundedToTheLowPrecision() {
        Tensor x = randn(40, 24), w = randn(16, 24).requiresGrad(true), b = randn(16).requiresGrad(true), up = randn(40, 16);
        Tensor y;
        try (var ac = Autocast.enable(DType.BFLOAT16)) {
            y = F.linear(x, w, b);
        }
        y.to(DType.FLOAT32).mul(up).sum().backward();
        // the product's gradient is up rounded to bf16; x is rounded to bf16 by the cast in forward
        double[] g = up.to(DType.BFLOAT16).toDoubleArray(), xs = x.to(DType.BFLOAT16).toDoubleArray();
        float[] dw = new float[16 * 24], db = new float[16];
        for (int o = 0; o < 16; o++) {
            double sb = 0;
            for (int n = 0; n < 40; n++) sb += g[n * 16 + o];
            db[o] = (float) sb;
            for (int i = 0; i < 24; i++) {
                double sw = 0;
                for (int n = 0; n < 40; n++) sw += g[n * 16 + o] * xs[n * 24 + i];
                dw[o * 24 + i] = (float) sw;
            }
        }
        assertEquals(DType.FLOAT32, w.grad().dtype());
        assertTrue(relativeError(dw, w.grad().toFloatArray()) < 1e-5, "weight gradient: " + relativeError(dw, w.grad().toFloatArray()));
        assertTrue(relativeError(db, b.grad().toFloatArray()) < 1e-5, "bias gradient: " + relativeError(db, b.grad().toFloatArray()));
    }

    @Test void bf16TrainingOfATinyModelLowersTheLoss() {
        Sequential model = new Sequential(new Linear(10, 32, new Generator(3)), new ReLU(), new Linear(32, 4, new Generator(4)));
        Optimizer opt = new Adam(model.parameters(), 1e-2);
        Tensor x = randn(32, 10);
        long[] labels = new long[32];
        for (int i = 0; i < labels.length; i++) labels[i] = i % 4;
        Tensor y = Tensor.of(labels, 32);
        double first = Double.NaN, last = Double.NaN;
        for (int step = 0; step < 40; step++) {
            opt.zeroGrad();
            Tensor loss;
            try (var ac = Autocast.enable(DType.BFLOAT16)) {
                loss = F.crossEntropy(model.forward(x), y);
            }
            loss.backward();
            opt.step();
            if (step == 0) first = loss.item();
            last = loss.item();
        }
        for (Tensor p : model.parameters()) assertEquals(DType.FLOAT32, p.dtype(), "parameters stay float32");
        assertTrue(last < 0.5 * first, "loss falls: " + first + " -> " + last);
    }

    static double relativeError(float[] ref, float[] got) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            double d = ref[i] - got[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }
}
