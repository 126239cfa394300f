package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Dropout: the gradient is the scaled mask; 16-bit dropout matches the composite. */
class DropoutGradTest {
    /** 16-bit dropout takes the fused kernel: the composite's mask and rounding, bit for bit. */
    @ParameterizedTest @EnumSource(value = DType.class, names = {"BFLOAT16", "FLOAT16"})
    void sixteenBitDropoutMatchesTheComposite(DType t) {
        Tensor x = randn(73, 7, 9).to(t);
        Tensor fused = F.dropout(x, 0.25, true, new Generator(9)), composite = Dropout.composite(x, 0.25, new Generator(9));
        assertEquals(t, fused.dtype());
        assertArrayEquals(composite.toDoubleArray(), fused.toDoubleArray(), 0.0);
    }

    @Test void dropoutGradientIsTheScaledMask() {
        double p = 0.4;
        Tensor x = randn(71, 5, 6).requiresGrad(true);
        F.dropout(x, p, true, new Generator(5)).sum().backward();
        // the same generator seed draws the same mask
        double[] u = Tensor.rand(new Generator(5), new int[]{5, 6}, DType.FLOAT64, Device.CPU).toDoubleArray();
        double[] g = x.grad().toDoubleArray();
        int zeros = 0;
        for (int i = 0; i < u.length; i++) {
            assertEquals(u[i] >= p ? 1 / (1 - p) : 0.0, g[i], 1e-12);
            if (g[i] == 0) zeros++;
        }
        assertTrue(zeros > 0 && zeros < u.length, "mask should drop some but not all of 30 elements");
        // and with a fixed mask (fresh generator per call) it passes the finite-difference check too
        GradCheck.check(t -> F.dropout(t[0], p, true, new Generator(5)), randn(72, 5, 6));
    }
}
