package dev.kiln.amp;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.nn.F;
import dev.kiln.nn.Linear;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Dynamic loss scaling: skip on overflow and back off, grow after clean steps, unscaled gradients. */
class GradScalerTest {
    /** A bias-free linear layer with small inputs, so only the scale decides whether float16 gradients overflow. */
    private final Linear model = new Linear(4, 1, false, new Generator(0));
    private final Tensor x = Tensor.uniform(new Generator(1), new int[]{8, 4}, 0, 0.1, DType.FLOAT32, dev.kiln.Device.CPU);
    private final Tensor target = Tensor.full(new int[]{8, 1}, 0.75, DType.FLOAT32, dev.kiln.Device.CPU);

    private Tensor fp16Loss() {
        try (var ac = Autocast.enable(DType.FLOAT16)) {
            return F.mseLoss(model.forward(x), target, F.Reduction.SUM);
        }
    }

    @Test void lossScalingRecoversFromAnOverflow() {
        Optimizer opt = new SGD(model.parameters(), 1.0, 0, 0, false);
        GradScaler scaler = new GradScaler();
        assertEquals(65536, scaler.scale());
        Tensor w = model.parameters().getFirst();
        float[] before = w.toFloatArray();

        // d loss / d y = 2 (y - 0.75) is between -1.9 and -1.1 (|y| <= 0.2): times 65536 it exceeds float16's 65504 in the cast back, so it overflows
        opt.zeroGrad();
        scaler.scale(fp16Loss()).backward();
        assertFalse(scaler.step(opt), "a step whose gradients are not finite is skipped");
        scaler.update();
        assertArrayEquals(before, w.toFloatArray(), "the skipped step left the weights alone");
        assertEquals(32768, scaler.scale(), "the scale backs off by half");

        // training continues at the lower scale: every step is taken and the loss falls
        double first = Double.NaN, last = Double.NaN;
        for (int step = 0; step < 30; step++) {
            opt.zeroGrad();
            Tensor loss = fp16Loss();
            scaler.scale(loss).backward();
            assertTrue(scaler.step(opt), "step " + step + " at scale " + scaler.scale() + " is finite");
            scaler.update();
            if (step == 0) first = loss.item();
            last = loss.item();
        }
        assertEquals(32768, scaler.scale(), "no growth before 2000 clean steps");
        assertTrue(last < 0.5 * first, "loss falls after the recovery: " + first + " -> " + last);
    }

    @Test void unscaledGradientsEqualTheUnscaledBackward() {
        Optimizer opt = new SGD(model.parameters(), 0.0, 0, 0, false);
        Tensor w = model.parameters().getFirst();
        F.mseLoss(model.forward(x), target, F.Reduction.SUM).backward();
        float[] plain = w.grad().toFloatArray();
        opt.zeroGrad();
        GradScaler scaler = new GradScaler(1024, 2, 0.5, 10);
        scaler.scale(F.mseLoss(model.forward(x), target, F.Reduction.SUM)).backward();
        scaler.unscale(opt);
        assertArrayEquals(plain, w.grad().toFloatArray(), 1e-6f);
        assertTrue(scaler.step(opt));
        scaler.update();
    }

    @Test void anInfiniteOrNanGradientSkipsTheStepAndCleanStepsGrowTheScale() {
        Optimizer opt = new SGD(model.parameters(), 0.1, 0, 0, false);
        Tensor w = model.parameters().getFirst();
        GradScaler scaler = new GradScaler(8, 2, 0.5, 3);
        for (float bad : new float[]{Float.POSITIVE_INFINITY, Float.NaN}) {
            float[] before = w.toFloatArray();
            w.setGrad(Tensor.of(new float[]{1, bad, 1, 1}, 1, 4));
            assertFalse(scaler.step(opt), "gradient with " + bad + " is skipped");
            scaler.update();
            assertArrayEquals(before, w.toFloatArray());
        }
        assertEquals(2, scaler.scale(), "two overflows: 8 -> 4 -> 2");
        for (int i = 1; i <= 3; i++) {
            w.setGrad(Tensor.of(new float[]{1, 1, 1, 1}, 1, 4));
            assertTrue(scaler.step(opt));
            scaler.update();
            assertEquals(i < 3 ? 2 : 4, scaler.scale(), "after clean step " + i);
        }
        assertThrows(IllegalStateException.class, scaler::update, "update needs a step first");
    }
}
