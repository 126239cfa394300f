package dev.kiln.optim;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Three steps of each optimizer on p = [1, -2] with fixed gradients, against values worked out with PyTorch's
 * formulas by hand (a few lines of Python arithmetic), in float32 and float64, through the backend's fused step and
 * through the composite of tensor ops, so both paths are checked against the same numbers.
 */
class OptimizerTest {
    private static final double[][] GRADS = {{0.5, 0.25}, {-0.1, 0.3}, {0.2, -0.4}};

    /** Three steps through the fused backend step, checked against the same steps through the composite of tensor ops. */
    private static double[][] run(DType dtype, Function<Tensor, Optimizer> make) {
        double[][] fused = run(dtype, make, true), composite = run(dtype, make, false);
        for (int s = 0; s < 3; s++) assertArrayEquals(composite[s], fused[s], dtype == DType.FLOAT32 ? 1e-6 : 1e-14, "fused vs composite, step " + (s + 1));
        return fused;
    }

    private static double[][] run(DType dtype, Function<Tensor, Optimizer> make, boolean fused) {
        Tensor p = Tensor.of(new double[]{1, -2}, 2).to(dtype).requiresGrad(true);
        Optimizer opt = make.apply(p);
        opt.setFused(fused);
        double[][] out = new double[3][];
        for (int s = 0; s < 3; s++) {
            opt.zeroGrad();
            p.setGrad(Tensor.of(GRADS[s], 2).to(dtype));
            opt.step();
            out[s] = p.toDoubleArray();
        }
        assertTrue(p.isLeaf() && p.requiresGrad(), "step keeps the parameter a leaf that requires grad");
        return out;
    }

    private static void assertSteps(double[][] expected, double[][] actual, DType dtype) {
        double tol = dtype == DType.FLOAT32 ? 2e-6 : 1e-12;
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < 2; i++) assertEquals(expected[s][i], actual[s][i], tol, "step " + (s + 1) + " element " + i);
        }
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void sgdPlain(DType dt) {
        assertSteps(new double[][]{{0.95, -2.025}, {0.96, -2.055}, {0.94, -2.015}},
                run(dt, p -> new SGD(List.of(p), 0.1)), dt);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void sgdMomentumWeightDecay(DType dt) {
        // step 1: g = 0.5 + 0.1*1 = 0.6, buf = g, p = 1 - 0.1*0.6 = 0.94
        assertSteps(new double[][]{{0.94, -2.005}, {0.8866, -2.01945}, {0.809674, -1.9722605}},
                run(dt, p -> new SGD(List.of(p), 0.1, 0.9, 0.1, false)), dt);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void sgdNesterov(DType dt) {
        // step 1: g = 0.6, buf = 0.6, g + 0.9*buf = 1.14, p = 1 - 0.114 = 0.886
        assertSteps(new double[][]{{0.886, -2.0095}, {0.839566, -2.0323695}, {0.742797646, -1.9294225295}},
                run(dt, p -> new SGD(List.of(p), 0.1, 0.9, 0.1, true)), dt);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void adam(DType dt) {
        // step 1 moves each weight by lr (times sign): m̂ = g, v̂ = g², so m̂/sqrt(v̂) = ±1
        assertSteps(new double[][]{{0.9900000002, -2.0099999996}, {0.9848897395699324, -2.020006130383423}, {0.9788781402842311, -2.020834905189698}},
                run(dt, p -> new Adam(List.of(p), 0.01)), dt);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void adamL2(DType dt) {
        assertSteps(new double[][]{{0.9900000001666667, -2.0099999980000005}, {0.9833118355673723, -2.0196624902813936}, {0.9758370466703972, -2.014732564482075}},
                run(dt, p -> new Adam(List.of(new ParamGroup(List.of(p), 0.01, 0.1)), 0.9, 0.999, 1e-8)), dt);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void adamW(DType dt) {
        // step 1: p = 1*(1 - 0.01*0.1) = 0.999, then the Adam step of -0.01
        assertSteps(new double[][]{{0.9890000002, -2.0079999996}, {0.9829007395697325, -2.015998130383823}, {0.9759062395444614, -2.014810907059714}},
                run(dt, p -> new AdamW(List.of(p), 0.01, 0.1)), dt);
    }

    @Test void groupsHaveTheirOwnRates() {
        Tensor a = Tensor.of(new float[]{1}, 1).requiresGrad(true), b = Tensor.of(new float[]{1}, 1).requiresGrad(true);
        SGD opt = new SGD(List.of(new ParamGroup(List.of(a), 0.1, 0), new ParamGroup(List.of(b), 0.5, 0)), 0, 0, false);
        a.setGrad(Tensor.of(new float[]{1}, 1));
        b.setGrad(Tensor.of(new float[]{1}, 1));
        opt.step();
        assertEquals(0.9, a.item(), 1e-7);
        assertEquals(0.5, b.item(), 1e-7);
    }

    @Test void parametersWithoutGradientAreLeftAlone() {
        Tensor a = Tensor.of(new float[]{1, 2}, 2).requiresGrad(true);
        new Adam(List.of(a), 0.1).step();
        assertArrayEquals(new float[]{1, 2}, a.toFloatArray());
    }

    @Test void zeroGradClears() {
        Tensor a = Tensor.of(new float[]{1}, 1).requiresGrad(true);
        a.setGrad(Tensor.of(new float[]{3}, 1));
        new SGD(List.of(a), 0.1).zeroGrad();
        assertNull(a.grad());
    }

    @Test void clipGradNormScalesToTheMaximum() {
        Tensor a = Tensor.of(new float[]{3, 0}, 2).requiresGrad(true), b = Tensor.of(new float[]{0}, 1).requiresGrad(true);
        a.setGrad(Tensor.of(new float[]{3, 0}, 2));
        b.setGrad(Tensor.of(new float[]{4}, 1));
        double norm = GradClip.clipGradNorm(List.of(a, b), 1.0).item();
        assertEquals(5, norm, 1e-6);
        assertArrayEquals(new float[]{0.6f, 0}, a.grad().toFloatArray(), 1e-6f);
        assertArrayEquals(new float[]{0.8f}, b.grad().toFloatArray(), 1e-6f);
        // under the maximum nothing changes
        GradClip.clipGradNorm(List.of(a, b), 10);
        assertArrayEquals(new float[]{0.8f}, b.grad().toFloatArray(), 1e-6f);
    }

    @Test void badHyperparametersAreRejected() {
        Tensor a = Tensor.of(new float[]{1}, 1).requiresGrad(true);
        assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(a), -1));
        assertThrows(IllegalArgumentException.class, () -> new Adam(List.of(new ParamGroup(List.of(a), 0.1, 0)), 1.0, 0.999, 1e-8));
        assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(Tensor.of(new float[]{1}, 1)), 0.1),
                "a tensor without requiresGrad is not a parameter");
        assertEquals(Device.CPU, a.device());
    }
}
