package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Layer norm and batch norm: gradients against float64 finite differences, the fused kernels against their composites. */
class NormalizationGradTest {
    @Test void layerNormGradient() {
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{4}, x[1], x[2], 1e-5), randn(81, 3, 4), randn(82, 4), randn(83, 4));
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{2, 3}, null, null, 1e-5), randn(84, 2, 2, 3));
        GradCheck.check(x -> F.layerNorm(x[0].transpose(0, 1), new int[]{3}, x[1], null, 1e-5), randn(85, 3, 2), randn(86, 3));
        // a pre-norm residual: x's other gradients are added as layer norm writes its input gradient, either order
        GradCheck.check(x -> x[0].mul(x[1]).add(F.layerNorm(x[0], new int[]{4}, x[1], x[2], 1e-5)), randn(87, 3, 4), randn(88, 4), randn(89, 4));
        GradCheck.check(x -> F.layerNorm(x[0], new int[]{4}, x[1], x[2], 1e-5).add(x[0].mul(x[1])), randn(87, 3, 4), randn(88, 4), randn(89, 4));
    }

    @Test void rmsNormAndGroupNormGradients() {
        GradCheck.check(x -> F.rmsNorm(x[0], new int[]{5}, x[1], 1e-6), randn(81, 3, 5), randn(82, 5));
        GradCheck.check(x -> F.rmsNorm(x[0], new int[]{2, 3}, null, Double.NaN), randn(83, 4, 2, 3));
        GradCheck.check(x -> F.groupNorm(x[0], 2, x[1], x[2], 1e-5), randn(84, 2, 4, 3, 3), randn(85, 4), randn(86, 4));
        GradCheck.check(x -> F.groupNorm(x[0], 3, null, null, 1e-5), randn(87, 2, 6, 5));
    }

    @Test void rmsNormAndGroupNormValues() {
        Tensor x = Tensor.of(new double[]{3, 4, 0, 0}, 2, 2);
        // rms of (3, 4) is sqrt(12.5); a zero row stays zero (eps keeps it finite)
        double rms = Math.sqrt(12.5 + 1e-6);
        assertArrayEquals(new double[]{3 / rms, 4 / rms, 0, 0}, F.rmsNorm(x, new int[]{2}, null, 1e-6).toDoubleArray(), 1e-15);
        assertArrayEquals(new double[]{6 / rms, 2 / rms, 0, 0},
                F.rmsNorm(x, new int[]{2}, Tensor.of(new double[]{2, 0.5}, 2), 1e-6).toDoubleArray(), 1e-15);
        // eps NaN: the machine epsilon of the dtype (float64's 2^-52 here; float32's 2^-23)
        assertArrayEquals(F.rmsNorm(x, new int[]{2}, null, 0x1p-52).toDoubleArray(), F.rmsNorm(x, new int[]{2}, null, Double.NaN).toDoubleArray(), 0);
        assertEquals(0x1p-23, Normalization.machineEpsilon(DType.FLOAT32));
        Tensor bf = F.rmsNorm(x.to(DType.BFLOAT16), new int[]{2}, null, Double.NaN);
        assertEquals(DType.BFLOAT16, bf.dtype());
        assertEquals(3 / Math.sqrt(12.5), bf.toDoubleArray()[0], 1e-2);
        // one group is a layer norm over (C, H, W); C groups an instance norm; groups share nothing across samples
        Tensor y = randn(88, 3, 4, 2, 5);
        assertArrayEquals(F.layerNorm(y, new int[]{4, 2, 5}, null, null, 1e-5).toDoubleArray(), F.groupNorm(y, 1, null, null, 1e-5).toDoubleArray(), 1e-12);
        Tensor perChannel = y.sub(y.mean(new int[]{2, 3}, true)).div(y.var(new int[]{2, 3}, false, true).add(1e-5).sqrt());
        assertArrayEquals(perChannel.toDoubleArray(), F.groupNorm(y, 4, null, null, 1e-5).toDoubleArray(), 1e-12);
        dev.kiln.nn.GroupNorm layer = new dev.kiln.nn.GroupNorm(2, 4);
        assertEquals(2, layer.parameters().size());
        assertArrayEquals(F.groupNorm(y, 2, null, null, 1e-5).toDoubleArray(), layer.forward(y).toDoubleArray(), 1e-6);
        assertEquals(1, new dev.kiln.nn.RMSNorm(5).parameters().size());
        assertThrows(IllegalArgumentException.class, () -> F.groupNorm(y, 3, null, null, 1e-5));
        assertThrows(IllegalArgumentException.class, () -> new dev.kiln.nn.GroupNorm(3, 4));
        assertThrows(IllegalArgumentException.class, () -> F.rmsNorm(y, new int[]{4}, null, 1e-6));
    }

    @Test void batchNormTrainingGradient() {
        GradCheck.check(x -> F.batchNorm(x[0], null, null, x[1], x[2], true, 0.1, 1e-5), randn(91, 4, 3), randn(92, 3), randn(93, 3));
        Tensor rm = Tensor.zeros(new int[]{2}, DType.FLOAT64, Device.CPU), rv = Tensor.ones(new int[]{2}, DType.FLOAT64, Device.CPU);
        GradCheck.check(x -> F.batchNorm(x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5), randn(94, 2, 2, 3, 2), randn(95, 2), randn(96, 2));
        assertFalse(rm.requiresGrad() || rv.requiresGrad(), "running statistics must stay outside the graph");
    }

    @Test void batchNormEvalGradient() {
        Tensor rm = randn(97, 3), rv = randn(98, 3).abs().add(0.5);
        GradCheck.check(x -> F.batchNorm(x[0], rm, rv, x[1], x[2], false, 0.1, 1e-5), randn(99, 2, 3, 2, 2), randn(100, 3), randn(101, 3));
    }

    /** The fused residual tail relu(bn(x) + r): input, weight, bias and residual gradients, training and eval. */
    @Test void batchNormAddReluGradient() {
        Tensor rm = Tensor.zeros(new int[]{3}, DType.FLOAT64, Device.CPU), rv = Tensor.ones(new int[]{3}, DType.FLOAT64, Device.CPU);
        GradCheck.check(x -> Normalization.batchNorm(x[0], rm, rv, x[1], x[2], x[3], true, 0.1, 1e-5, true),
                randn(102, 2, 3, 2, 3), randn(103, 3), randn(104, 3), randn(105, 2, 3, 2, 3));
        GradCheck.check(x -> Normalization.batchNorm(x[0], null, null, null, null, null, true, 0.1, 1e-5, true), randn(106, 4, 3, 5));
        Tensor erm = randn(107, 3), erv = randn(108, 3).abs().add(0.5);
        GradCheck.check(x -> Normalization.batchNorm(x[0], erm, erv, x[1], x[2], x[3], false, 0.1, 1e-5, true),
                randn(109, 2, 3, 4), randn(110, 3), randn(111, 3), randn(112, 2, 3, 4));
    }

    /** maxPool(relu(bn(x))) as one op (a ResNet stem's tail): input, weight and bias gradients, training and eval. */
    @Test void batchNormReluMaxPoolGradient() {
        Pool2dParams pool = Pool2dParams.of(3, 2, 1);
        Tensor rm = Tensor.zeros(new int[]{3}, DType.FLOAT64, Device.CPU), rv = Tensor.ones(new int[]{3}, DType.FLOAT64, Device.CPU);
        GradCheck.check(x -> Normalization.batchNormReluMaxPool(x[0], rm, rv, null, x[1], x[2], true, 0.1, 1e-5, pool),
                randn(113, 2, 3, 5, 6), randn(114, 3), randn(115, 3));
        Tensor erm = randn(116, 3), erv = randn(117, 3).abs().add(0.5);
        GradCheck.check(x -> Normalization.batchNormReluMaxPool(x[0], erm, erv, null, x[1], x[2], false, 0.1, 1e-5, Pool2dParams.of(2, 2, 0)),
                randn(118, 2, 3, 4, 4), randn(119, 3), randn(120, 3));
    }

    /** The fused op gives the composite's values, gradients and running statistics (float32, training and eval). */
    @Test void fusedBatchNormMatchesTheComposite() {
        for (boolean training : new boolean[]{true, false}) {
            Tensor x = randn(120, 8, 5, 6, 7).to(DType.FLOAT32), r = randn(121, 8, 5, 6, 7).to(DType.FLOAT32);
            Tensor w = randn(122, 5).to(DType.FLOAT32), b = randn(123, 5).to(DType.FLOAT32), up = randn(124, 8, 5, 6, 7).to(DType.FLOAT32);
            Tensor[] fusedRun = {randn(125, 5).to(DType.FLOAT32), randn(126, 5).abs().add(0.5).to(DType.FLOAT32)};
            Tensor[] compRun = {fusedRun[0].detach().contiguousCopy(), fusedRun[1].detach().contiguousCopy()};
            Tensor xf = x.detach().requiresGrad(true), wf = w.detach().requiresGrad(true), bf = b.detach().requiresGrad(true), rf = r.detach().requiresGrad(true);
            Tensor xc = x.detach().requiresGrad(true), wc = w.detach().requiresGrad(true), bc = b.detach().requiresGrad(true), rc = r.detach().requiresGrad(true);
            Tensor yf = Normalization.batchNorm(xf, fusedRun[0], fusedRun[1], wf, bf, rf, training, 0.2, 1e-5, true);
            Tensor yc = Normalization.compositeBatchNorm(xc, compRun[0], compRun[1], wc, bc, training, 0.2, 1e-5).add(rc).relu();
            String what = training ? "training" : "eval";
            assertArrayEquals(yc.toFloatArray(), yf.toFloatArray(), 2e-5f, what + " forward");
            assertArrayEquals(compRun[0].toFloatArray(), fusedRun[0].toFloatArray(), 1e-6f, what + " running mean");
            assertArrayEquals(compRun[1].toFloatArray(), fusedRun[1].toFloatArray(), 1e-5f, what + " running var");
            yf.mul(up).sum().backward();
            yc.mul(up).sum().backward();
            for (Tensor[] pair : new Tensor[][]{{xc, xf}, {wc, wf}, {bc, bf}, {rc, rf}}) {
                assertArrayEquals(pair[0].grad().toFloatArray(), pair[1].grad().toFloatArray(), 2e-4f, what + " gradient");
            }
        }
    }

    @Test void fusedLayerNormMatchesTheComposite() {
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32}) {
            for (boolean affine : new boolean[]{true, false}) {
                Tensor x = randn(130, 6, 5, 37).mul(3).add(1).to(t), up = randn(131, 6, 5, 37).to(t);
                Tensor w = affine ? randn(132, 37).to(t) : null, b = affine ? randn(133, 37).to(t) : null;
                Tensor[] fused = layerNormRun(x, w, b, up, true), comp = layerNormRun(x, w, b, up, false);
                double tol = t == DType.FLOAT64 ? 1e-12 : 1e-4;
                for (int i = 0; i < fused.length; i++) {
                    if (comp[i] == null) continue;
                    double[] c = comp[i].toDoubleArray(), f = fused[i].toDoubleArray();
                    for (int j = 0; j < c.length; j++) assertEquals(c[j], f[j], tol * Math.max(1, Math.abs(c[j])), t + " affine " + affine + " output " + i);
                }
            }
        }
    }

    /** {y, dx, dw, db} through the fused op or the composite. */
    private static Tensor[] layerNormRun(Tensor x0, Tensor w0, Tensor b0, Tensor up, boolean fused) {
        Tensor x = x0.detach().requiresGrad(true), w = w0 == null ? null : w0.detach().requiresGrad(true), b = b0 == null ? null : b0.detach().requiresGrad(true);
        Tensor y = fused ? F.layerNorm(x, new int[]{37}, w, b, 1e-5) : Normalization.compositeLayerNorm(x, 1, w, b, 1e-5);
        y.mul(up).sum().backward();
        return new Tensor[]{y.detach(), x.grad(), w == null ? null : w.grad(), b == null ? null : b.grad()};
    }
}
