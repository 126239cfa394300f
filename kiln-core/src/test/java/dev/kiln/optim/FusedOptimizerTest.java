package dev.kiln.optim;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The fused optimizer steps (one backend call for a whole group) against the composite of tensor ops, for several
 * steps on several parameters of different sizes (one larger than a CUDA chunk of 4096 elements, one empty) with
 * fresh random gradients each step. Tolerance relative to max(|x|, 1): float32 1e-5 over five steps (the two
 * paths round differently), float64 1e-12. {@link #steps} is public for the GPU test.
 */
public class FusedOptimizerTest {
    static final int[][] SHAPES = {{3, 5}, {7}, {70, 90}, {0}, {1}};
    static final int STEPS = 5;

    /** The optimizers under test: every formula branch (L2, decoupled, momentum, dampening, Nesterov). */
    public enum Kind {
        ADAM(ps -> new Adam(ps, 0.01)),
        ADAM_L2(ps -> new Adam(List.of(new ParamGroup(ps, 0.01, 0.1)), 0.9, 0.999, 1e-8)),
        ADAMW(ps -> new AdamW(ps, 0.01, 0.1)),
        SGD_PLAIN(ps -> new SGD(ps, 0.1)),
        SGD_MOMENTUM(ps -> new SGD(List.of(new ParamGroup(ps, 0.1, 0.05)), 0.9, 0.3, false)),
        SGD_NESTEROV(ps -> new SGD(ps, 0.1, 0.9, 0.01, true));

        final Function<List<Tensor>, Optimizer> make;

        Kind(Function<List<Tensor>, Optimizer> make) { this.make = make; }
    }

    /** Each parameter's values after every step: [step][param][element]. The same seed gives the same data. */
    public static double[][][] steps(Kind kind, Device device, DType dtype, boolean fused) { return steps(kind, device, dtype, fused, SHAPES); }

    public static double[][][] steps(Kind kind, Device device, DType dtype, boolean fused, int[][] shapes) {
        Generator gen = new Generator(42);
        List<Tensor> params = new ArrayList<>();
        for (int[] s : shapes) params.add(Tensor.randn(gen, s, DType.FLOAT64, Device.CPU).to(dtype).to(device).requiresGrad(true));
        Optimizer opt = kind.make.apply(params);
        opt.setFused(fused);
        double[][][] out = new double[STEPS][params.size()][];
        for (int step = 0; step < STEPS; step++) {
            opt.zeroGrad();
            for (Tensor p : params) p.setGrad(Tensor.randn(gen, p.shape(), DType.FLOAT64, Device.CPU).to(dtype).to(device));
            opt.step();
            for (int k = 0; k < params.size(); k++) out[step][k] = params.get(k).toDoubleArray();
        }
        return out;
    }

    public static void assertClose(double[][][] expected, double[][][] actual, double tol, String what) {
        for (int s = 0; s < expected.length; s++) {
            for (int k = 0; k < expected[s].length; k++) {
                assertEquals(expected[s][k].length, actual[s][k].length, what + ": size of parameter " + k);
                for (int i = 0; i < expected[s][k].length; i++) {
                    double e = expected[s][k][i], a = actual[s][k][i];
                    if (!(Math.abs(e - a) <= tol * Math.max(1, Math.abs(e)))) {
                        fail(what + ": step " + (s + 1) + " parameter " + k + " element " + i + ": expected " + e + " got " + a);
                    }
                }
            }
        }
    }

    public static double tol(DType dtype) { return dtype == DType.FLOAT32 ? 1e-5 : 1e-12; }

    @ParameterizedTest @EnumSource(Kind.class)
    void fusedMatchesCompositeFloat32(Kind kind) {
        assertClose(steps(kind, Device.CPU, DType.FLOAT32, false), steps(kind, Device.CPU, DType.FLOAT32, true), tol(DType.FLOAT32), kind + " float32");
    }

    @ParameterizedTest @EnumSource(Kind.class)
    void fusedMatchesCompositeFloat64(Kind kind) {
        assertClose(steps(kind, Device.CPU, DType.FLOAT64, false), steps(kind, Device.CPU, DType.FLOAT64, true), tol(DType.FLOAT64), kind + " float64");
    }

    /** A group with a bfloat16 parameter is not fusable: it takes the composite path and still steps. */
    @ParameterizedTest @EnumSource(value = Kind.class, names = {"ADAM", "SGD_MOMENTUM"})
    void mixedDtypesFallBackToTheComposite(Kind kind) {
        Tensor a = Tensor.of(new float[]{1, 2}, 2).requiresGrad(true);
        Tensor b = Tensor.of(new float[]{1, 2}, 2).to(DType.BFLOAT16).requiresGrad(true);
        Optimizer opt = kind.make.apply(List.of(a, b));
        a.setGrad(Tensor.of(new float[]{1, 1}, 2));
        b.setGrad(Tensor.of(new float[]{1, 1}, 2).to(DType.BFLOAT16));
        opt.step();
        assertEquals(a.toDoubleArray()[0], b.toDoubleArray()[0], 1e-2, "both parameters moved alike");
        assertEquals(true, a.toDoubleArray()[0] < 1, "the parameter moved against its gradient");
    }
}
