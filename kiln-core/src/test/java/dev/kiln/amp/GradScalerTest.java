package dev.kiln.amp;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.nn.F;
import dev.kiln.nn.Linear;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Dynamic loss scaling: skip on overflow and back off, grow after clean steps, unscaled gradients; the state kept on
 * the device decides as the host scaler it replaced did; checkpointed state restores.
 */
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

    /** The host-side scaler this one replaced (a double scale, decided from a host read), as the reference. */
    private static final class HostScaler {
        final double growth, backoff;
        final int interval;
        double scale;
        int clean, skipped;

        HostScaler(double scale, double growth, double backoff, int interval) {
            this.scale = scale;
            this.growth = growth;
            this.backoff = backoff;
            this.interval = interval;
        }

        void update(boolean finite) {
            if (!finite) {
                scale *= backoff;
                clean = 0;
                skipped++;
            } else if (++clean == interval) {
                scale *= growth;
                clean = 0;
            }
        }
    }

    /** Which element a scripted step spoils: none, or one set to inf or NaN in the first or second parameter. */
    private static final float[] SPOIL = {0, 0, 0, 0, Float.POSITIVE_INFINITY, 0, Float.NaN, 0, 0, 0, 0, 0, 0, Float.NEGATIVE_INFINITY,
            Float.NaN, 0, 0, 0, 0, 0, Float.POSITIVE_INFINITY, 0, 0, 0, 0, 0};

    /**
     * The device-state scaler against the host scaler it replaced, on a scripted run of gradients with infs and NaNs
     * (two overflows in a row included): the same verdicts, scales and clean-step counts at every step, and with Adam
     * the same parameters bit for bit as an Adam that the host stepped only on the clean steps.
     */
    @Test void deviceStateFollowsTheHostScalerStepForStep() {
        Generator gen = new Generator(7);
        Tensor w = Tensor.randn(gen, new int[]{2, 4}, DType.FLOAT32, dev.kiln.Device.CPU).requiresGrad(true);
        Tensor b = Tensor.randn(gen, new int[]{3}, DType.FLOAT32, dev.kiln.Device.CPU).requiresGrad(true);
        Tensor rw = w.detach().contiguousCopy().requiresGrad(true), rb = b.detach().contiguousCopy().requiresGrad(true);
        Optimizer opt = new Adam(java.util.List.of(w, b), 0.05), ref = new Adam(java.util.List.of(rw, rb), 0.05);
        GradScaler scaler = new GradScaler(8, 2, 0.5, 3);
        HostScaler host = new HostScaler(8, 2, 0.5, 3);
        for (int step = 0; step < SPOIL.length; step++) {
            float[] gw = Tensor.randn(gen, new int[]{8}, DType.FLOAT32, dev.kiln.Device.CPU).toFloatArray();
            float[] gb = Tensor.randn(gen, new int[]{3}, DType.FLOAT32, dev.kiln.Device.CPU).toFloatArray();
            float s = (float) host.scale, inv = (float) (1.0 / host.scale);
            for (int i = 0; i < gw.length; i++) gw[i] *= s;   // what a scaled backward hands over
            for (int i = 0; i < gb.length; i++) gb[i] *= s;
            if (SPOIL[step] != 0 || Float.isNaN(SPOIL[step])) (step % 2 == 0 ? gw : gb)[1] = SPOIL[step];
            w.setGrad(Tensor.of(gw, 2, 4));
            b.setGrad(Tensor.of(gb, 3));
            var before = opt.exportState(w);
            float[] wBefore = w.toFloatArray();
            boolean stepped = scaler.step(opt);
            boolean finite = true;
            for (float v : gw) finite &= Float.isFinite(v * inv);
            for (float v : gb) finite &= Float.isFinite(v * inv);
            assertEquals(finite, stepped, "verdict of step " + step);
            if (finite) {
                for (int i = 0; i < gw.length; i++) gw[i] *= inv;
                for (int i = 0; i < gb.length; i++) gb[i] *= inv;
                rw.setGrad(Tensor.of(gw, 2, 4));
                rb.setGrad(Tensor.of(gb, 3));
                ref.step();
            } else if (!before.isEmpty()) {
                var after = opt.exportState(w);
                assertArrayEquals(wBefore, w.toFloatArray(), "a skipped step leaves the parameter");
                assertEquals(before.counts(), after.counts(), "a skipped step leaves Adam's step count");
                for (String name : new String[]{"exp_avg", "exp_avg_sq"}) {
                    assertArrayEquals(before.tensors().get(name).toFloatArray(), after.tensors().get(name).toFloatArray(), name + " after skipped step " + step);
                }
            }
            scaler.update();
            host.update(finite);
            assertEquals(host.scale, scaler.scale(), "scale after step " + step);
            assertEquals(host.clean, scaler.cleanSteps(), "clean steps after step " + step);
            assertArrayEquals(rw.toFloatArray(), w.toFloatArray(), "weights after step " + step);
            assertArrayEquals(rb.toFloatArray(), b.toFloatArray(), "bias after step " + step);
        }
        assertEquals(5, host.skipped);
        assertEquals(host.skipped, scaler.skippedSteps());
        assertEquals(ref.exportState(rw).counts(), opt.exportState(w).counts(), "Adam counted the steps taken");
    }

    /** A checkpoint's scale and clean-step count, restored into a new scaler (before or after its first step), continue the run. */
    @Test void restoredStateContinuesTheRun() {
        GradScaler a = new GradScaler(64, 2, 0.5, 4);
        Optimizer opt = new SGD(model.parameters(), 0.01, 0, 0, false);
        Tensor w = model.parameters().getFirst();
        float[][] grads = {{1, 1, 1, 1}, {1, Float.NaN, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, {2, 1, 1, 1}};
        for (int i = 0; i < 3; i++) {
            w.setGrad(Tensor.of(grads[i], 1, 4));
            a.step(opt);
            a.update();
        }
        assertEquals(32, a.scale());
        assertEquals(1, a.cleanSteps());
        GradScaler fresh = new GradScaler(64, 2, 0.5, 4), used = new GradScaler(64, 2, 0.5, 4);
        w.setGrad(Tensor.of(grads[0], 1, 4));
        used.step(opt);
        used.update();
        fresh.restore(a.scale(), a.cleanSteps());
        used.restore(a.scale(), a.cleanSteps());
        for (GradScaler b : new GradScaler[]{fresh, used}) {
            assertEquals(a.scale(), b.scale());
            assertEquals(a.cleanSteps(), b.cleanSteps());
        }
        for (int i = 3; i < grads.length; i++) {
            for (GradScaler s : new GradScaler[]{a, fresh, used}) {
                w.setGrad(Tensor.of(grads[i], 1, 4));
                s.step(opt);
                s.update();
            }
            assertEquals(a.scale(), fresh.scale(), "after step " + i);
            assertEquals(a.scale(), used.scale(), "after step " + i);
            assertEquals(a.cleanSteps(), used.cleanSteps(), "after step " + i);
        }
        assertEquals(64, a.scale(), "grew once the clean steps reached four, restored ones included");
        assertThrows(IllegalArgumentException.class, () -> fresh.restore(1, 4), "clean steps beyond the interval");
    }
}
