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

/** dropout.cu: masks bit-identical across devices for the same seed, forward and backward, every float type. Skips without a GPU. */
class DropoutGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll static void requireGpu() {
        GpuTests.requireGpu(DropoutGpuTest.class);
    }

    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64", "BFLOAT16", "FLOAT16"})
    void dropoutIsBitIdenticalAcrossDevices(DType dt) {
        Tensor x = Tensor.randn(new Generator(1), new int[]{257, 129}, DType.FLOAT64, Device.CPU).to(dt);
        Tensor w = Tensor.randn(new Generator(2), new int[]{257, 129}, DType.FLOAT64, Device.CPU).to(dt);
        Tensor xc = x.detach().requiresGrad(true), xg = x.to(GPU).detach().requiresGrad(true);
        Tensor yc = F.dropout(xc, 0.3, true, new Generator(77)), yg = F.dropout(xg, 0.3, true, new Generator(77));
        assertArrayEquals(yc.toDoubleArray(), yg.toDoubleArray(), 0.0, "forward");
        yc.mul(w).sum().backward();
        yg.mul(w.to(GPU)).sum().backward();
        assertArrayEquals(xc.grad().toDoubleArray(), xg.grad().toDoubleArray(), 0.0, "backward (mask recomputed on each device)");
    }

    /** Channels-last activations keep their layout and draw the contiguous tensor's mask (the CPU's), forward and backward. */
    @ParameterizedTest @EnumSource(value = DType.class, names = {"FLOAT32", "BFLOAT16"})
    void channelsLastDrawsTheSameMask(DType dt) {
        Tensor x = Tensor.randn(new Generator(3), new int[]{5, 12, 7, 9}, DType.FLOAT64, Device.CPU).to(dt);
        Tensor w = Tensor.randn(new Generator(4), new int[]{5, 12, 7, 9}, DType.FLOAT64, Device.CPU).to(dt);
        Tensor xc = x.detach().requiresGrad(true), xg = x.to(GPU).toChannelsLast().detach().requiresGrad(true);
        Tensor yc = F.dropout(xc, 0.4, true, new Generator(78)), yg = F.dropout(xg, 0.4, true, new Generator(78));
        assertTrue(yg.prefersChannelsLast(), "channels-last output");
        assertArrayEquals(yc.toDoubleArray(), yg.toDoubleArray(), 0.0, "forward");
        yc.mul(w).sum().backward();
        yg.mul(w.to(GPU)).sum().backward();   // a contiguous gradient meets the channels-last forward's mask
        assertArrayEquals(xc.grad().toDoubleArray(), xg.grad().toDoubleArray(), 0.0, "backward");
    }
}
