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
/** Uniform and normal fills on cuda:0: the same streams as the CPU. Skips without a GPU. */
class RandomGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(RandomGpuTest.class); }

    @Test void randomStreamsMatchTheCpu() {
        for (DType t : new DType[]{DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16}) {
            long seed = gen.nextSeed();
            Tensor c = Tensor.uniform(new Generator(seed), new int[]{1000, 37}, -2, 3, t, Device.CPU);
            Tensor g = Tensor.uniform(new Generator(seed), new int[]{1000, 37}, -2, 3, t, GPU);
            close(c, g, 0, "uniform " + t);
            Tensor cn = Tensor.randn(new Generator(seed), new int[]{999, 41}, t, Device.CPU);
            Tensor gn = Tensor.randn(new Generator(seed), new int[]{999, 41}, t, GPU);
            close(cn, gn, t == DType.FLOAT64 ? 1e-13 : 1e-6, "normal " + t);
        }
    }

    // ------------------------------------------------------------------ elementwise

}
