package dev.kiln.cuda;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import dev.kiln.optim.FusedOptimizerTest;
import dev.kiln.optim.FusedOptimizerTest.Kind;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * optim.cu's multi-tensor Adam, AdamW and SGD steps against the CPU's composite of tensor ops, at float32 1e-5 and
 * float64 1e-12 (relative), including parameter lists that take several launches; the steps a device flag skips, and
 * dynamic loss scaling's amp_unscale and amp_update_scale, against the CPU's. Skips without a GPU.
 */
class OptimGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        GpuTests.requireGpu(OptimGpuTest.class);
    }

    @ParameterizedTest @EnumSource(Kind.class)
    void fusedStepMatchesCpuCompositeFloat32(Kind kind) {
        FusedOptimizerTest.assertClose(FusedOptimizerTest.steps(kind, Device.CPU, DType.FLOAT32, false),
                FusedOptimizerTest.steps(kind, GPU, DType.FLOAT32, true), 1e-5, kind + " float32");
    }

    @ParameterizedTest @EnumSource(Kind.class)
    void fusedStepMatchesCpuCompositeFloat64(Kind kind) {
        FusedOptimizerTest.assertClose(FusedOptimizerTest.steps(kind, Device.CPU, DType.FLOAT64, false),
                FusedOptimizerTest.steps(kind, GPU, DType.FLOAT64, true), 1e-12, kind + " float64");
    }

    /** 130 parameters: three launches of up to 48, sizes around the 4096-element chunk. */
    @ParameterizedTest @EnumSource(value = Kind.class, names = {"ADAMW", "SGD_NESTEROV"})
    void manyParametersSpanSeveralLaunches(Kind kind) {
        int[][] shapes = new int[130][];
        for (int i = 0; i < shapes.length; i++) shapes[i] = new int[]{1 + (i * 997) % 9000};
        FusedOptimizerTest.assertClose(FusedOptimizerTest.steps(kind, Device.CPU, DType.FLOAT64, true, shapes),
                FusedOptimizerTest.steps(kind, GPU, DType.FLOAT64, true, shapes), 1e-12, kind + " 130 parameters");
    }

    // ---------------------------------------------------------------- dynamic loss scaling and skipped steps

    /** Sizes around the 4096-element chunk, 130 of them (three launches), and one empty. */
    private static int[][] manyShapes() {
        int[][] shapes = new int[130][];
        for (int i = 0; i < shapes.length; i++) shapes[i] = new int[]{i == 7 ? 0 : 1 + (i * 997) % 9000};
        return shapes;
    }

    /** amp_unscale against the CPU's: the same unscaled bits, and the flag set exactly when an element ends up not finite. */
    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void ampUnscaleMatchesCpu(DType dtype) {
        Generator gen = new Generator(17);
        int[][] shapes = manyShapes();
        for (String spoil : new String[]{"none", "inf", "nan", "overflow"}) {
            double scale = spoil.equals("overflow") ? 1e-40 : 1000 + 3000 * Generator.uniformAt(17, 0);   // 1e-40: 1/scale overflows float32 and big float64 values
            List<Tensor> cpu = new ArrayList<>(), gpu = new ArrayList<>();
            for (int k = 0; k < shapes.length; k++) {
                Tensor g = Tensor.randn(gen, shapes[k], DType.FLOAT64, Device.CPU).mul(spoil.equals("overflow") ? 1e270 : 1000).to(dtype);
                if (k == 77 && !spoil.equals("none") && !spoil.equals("overflow")) {
                    double[] v = g.toDoubleArray();
                    v[v.length / 2] = spoil.equals("inf") ? Double.NEGATIVE_INFINITY : Double.NaN;
                    g = Tensor.of(v, g.shape()).to(dtype);
                }
                cpu.add(g);
                gpu.add(g.to(GPU));
            }
            Tensor cpuScale = Tensor.scalar(scale, DType.FLOAT64, Device.CPU), cpuFound = Tensor.scalar(0, DType.FLOAT64, Device.CPU);
            Tensor gpuScale = cpuScale.to(GPU), gpuFound = cpuFound.to(GPU);
            Backends.get(Device.CPU).ampUnscale(cpu, cpuScale, cpuFound);
            Backends.get(GPU).ampUnscale(gpu, gpuScale, gpuFound);
            for (int k = 0; k < shapes.length; k++) {
                assertArrayEquals(cpu.get(k).toDoubleArray(), gpu.get(k).toDoubleArray(), dtype + " " + spoil + ": gradient " + k);
            }
            assertEquals(spoil.equals("none") ? 0.0 : 1.0, cpuFound.item(), spoil + ": the CPU's flag");
            assertEquals(cpuFound.item(), gpuFound.item(), dtype + " " + spoil + ": the flag");
            Backends.get(GPU).ampUnscale(List.of(Tensor.ones(new int[]{3}, dtype, GPU)), gpuScale, gpuFound);
            assertEquals(cpuFound.item(), gpuFound.item(), "a finite gradient leaves a set flag set");
        }
    }

    /** amp_update_scale against the CPU's over a run of overflows and clean steps, with factors that round. */
    @Test void ampUpdateScaleMatchesCpu() {
        assertArrayEquals(scalingRun(Device.CPU), scalingRun(GPU));
    }

    /** Scale, clean steps, skipped steps and the flag after each of 40 random verdicts (overflow 1 in 4), flattened. */
    private static double[] scalingRun(Device device) {
        Tensor scale = Tensor.scalar(1234.5, DType.FLOAT64, device), clean = Tensor.scalar(0, DType.FLOAT64, device);
        Tensor skipped = Tensor.scalar(0, DType.FLOAT64, device), found = Tensor.scalar(0, DType.FLOAT64, device);
        double[] out = new double[40 * 4];
        for (int i = 0; i < 40; i++) {
            found.copyFrom(Tensor.scalar(Generator.uniformAt(23, i) < 0.25 ? 1 : 0, DType.FLOAT64, Device.CPU));
            Backends.get(device).ampUpdateScale(scale, clean, skipped, found, 1.7, 0.37, 3);
            out[4 * i] = scale.item();
            out[4 * i + 1] = clean.item();
            out[4 * i + 2] = skipped.item();
            out[4 * i + 3] = found.item();
        }
        return out;
    }

    /**
     * Adam and SGD steps that a device flag skips: the fused CUDA kernels against the CPU's, parameters, moments and
     * step counts, several launches of tensors included.
     */
    @ParameterizedTest @EnumSource(Kind.class)
    void skippedStepsMatchCpu(Kind kind) {
        for (DType dtype : new DType[]{DType.FLOAT32, DType.FLOAT64}) {
            int[][] shapes = dtype == DType.FLOAT64 ? manyShapes() : new int[][]{{3, 5}, {7}, {70, 90}, {0}, {1}};
            FusedOptimizerTest.assertSameRun(FusedOptimizerTest.withSkips(kind, Device.CPU, dtype, true, shapes, true),
                    FusedOptimizerTest.withSkips(kind, GPU, dtype, true, shapes, true), FusedOptimizerTest.tol(dtype), kind + " " + dtype);
        }
    }
}
