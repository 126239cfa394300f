package dev.kiln.optim;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
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

    /** A run's parameters after every step ([step][param][element]), and each parameter's state at the end. */
    public record Run(double[][][] params, List<Map<String, double[]>> state, List<Map<String, Long>> counts) {}

    /** The steps (0-based) a device flag skips in {@link #withSkips}: not the first, whose SGD buffer start the host sees. */
    public static final Set<Integer> SKIPPED = Set.of(1, 3, 4);

    /**
     * {@link #steps}' run with a device flag: {@code flagged}, every step is {@code step(flag)} with the flag set at the
     * {@link #SKIPPED} steps; otherwise those steps are left out on the host (the reference). The same gradients are drawn
     * either way, so the two runs should end alike.
     */
    public static Run withSkips(Kind kind, Device device, DType dtype, boolean fused, int[][] shapes, boolean flagged) {
        Generator gen = new Generator(42);
        List<Tensor> params = new ArrayList<>();
        for (int[] s : shapes) params.add(Tensor.randn(gen, s, DType.FLOAT64, Device.CPU).to(dtype).to(device).requiresGrad(true));
        Optimizer opt = kind.make.apply(params);
        opt.setFused(fused);
        Tensor flag = Tensor.scalar(0, DType.FLOAT64, device).keep();
        double[][][] out = new double[STEPS + 1][params.size()][];
        for (int step = 0; step <= STEPS; step++) {
            opt.zeroGrad();
            for (Tensor p : params) p.setGrad(Tensor.randn(gen, p.shape(), DType.FLOAT64, Device.CPU).to(dtype).to(device));
            boolean skip = SKIPPED.contains(step);
            if (flagged) {
                flag.copyFrom(Tensor.scalar(skip ? 1 : 0, DType.FLOAT64, Device.CPU));
                opt.step(flag);
            } else if (!skip) {
                opt.step();
            }
            for (int k = 0; k < params.size(); k++) out[step][k] = params.get(k).toDoubleArray();
        }
        List<Map<String, double[]>> state = new ArrayList<>();
        List<Map<String, Long>> counts = new ArrayList<>();
        for (Tensor p : params) {
            Optimizer.ParamState ps = opt.exportState(p);
            Map<String, double[]> tensors = new TreeMap<>();
            ps.tensors().forEach((name, t) -> tensors.put(name, t.toDoubleArray()));
            state.add(tensors);
            counts.add(ps.counts());
        }
        return new Run(out, state, counts);
    }

    public static void assertSameRun(Run expected, Run actual, double tol, String what) {
        assertClose(expected.params(), actual.params(), tol, what);
        assertEquals(expected.counts(), actual.counts(), what + ": step counts");
        for (int k = 0; k < expected.state().size(); k++) {
            assertEquals(expected.state().get(k).keySet(), actual.state().get(k).keySet(), what + ": state of parameter " + k);
            for (String name : expected.state().get(k).keySet()) {
                assertClose(new double[][][]{{expected.state().get(k).get(name)}}, new double[][][]{{actual.state().get(k).get(name)}}, tol,
                        what + ": " + name + " of parameter " + k);
            }
        }
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

    /**
     * A step skipped by a device flag changes no parameter, moment or step count: the run equals one that left those
     * steps out. The fused kernels bit for bit (Adam's bias corrections use the steps taken); the composite's masked
     * writes within the usual tolerance (it computes the bias corrections on the device).
     */
    @ParameterizedTest @EnumSource(Kind.class)
    void aSkippedStepChangesNothing(Kind kind) {
        for (DType dtype : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            for (boolean fused : new boolean[]{true, false}) {
                Run reference = withSkips(kind, Device.CPU, dtype, fused, SHAPES, false), flagged = withSkips(kind, Device.CPU, dtype, fused, SHAPES, true);
                assertSameRun(reference, flagged, fused ? 0 : tol(dtype), kind + " " + dtype + (fused ? " fused" : " composite"));
            }
        }
    }

    /** After skipped steps, the exported step count is the steps taken, and a new optimizer given that state goes on alike. */
    @ParameterizedTest @EnumSource(value = Kind.class, names = {"ADAM", "ADAMW"})
    void stateAfterSkipsRoundTrips(Kind kind) {
        Generator gen = new Generator(3);
        Tensor p = Tensor.randn(gen, new int[]{5}, DType.FLOAT32, Device.CPU).requiresGrad(true);
        Tensor q = p.detach().contiguousCopy().requiresGrad(true);
        Optimizer a = kind.make.apply(List.of(p)), b = kind.make.apply(List.of(q));
        Tensor flag = Tensor.scalar(0, DType.FLOAT64, Device.CPU);
        for (int step = 0; step < 4; step++) {
            p.setGrad(Tensor.randn(gen, p.shape(), DType.FLOAT32, Device.CPU));
            flag.copyFrom(Tensor.scalar(step % 2, DType.FLOAT64, Device.CPU));
            a.step(flag);
        }
        assertEquals(2L, a.exportState(p).counts().get("step"), "two steps taken, two skipped");
        q.copyFrom(p);
        b.importState(q, a.exportState(p));
        for (int step = 0; step < 3; step++) {
            Tensor g = Tensor.randn(gen, p.shape(), DType.FLOAT32, Device.CPU);
            p.setGrad(g);
            q.setGrad(g);
            a.step(flag.copyFrom(Tensor.scalar(0, DType.FLOAT64, Device.CPU)));
            b.step();
            org.junit.jupiter.api.Assertions.assertArrayEquals(p.toFloatArray(), q.toFloatArray(), "step " + step + " after the restore");
        }
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
