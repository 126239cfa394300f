package dev.kiln.cuda;

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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * optim.cu's multi-tensor Adam, AdamW and SGD steps against the CPU's composite of tensor ops, at float32 1e-5 and
 * float64 1e-12 (relative), including parameter lists that take several launches. Skips without a GPU.
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
}
