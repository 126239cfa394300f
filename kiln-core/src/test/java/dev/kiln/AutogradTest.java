package dev.kiln;

import dev.kiln.autograd.GradMode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The autograd engine's contract: accumulation, no-grad, detach, hooks, retained graphs, deep graphs. */
class AutogradTest {
    @Test void gradientsAccumulateIntoLeavesAcrossBackwardCalls() {
        Tensor x = Tensor.of(new double[]{1, 2, 3}, 3).requiresGrad(true);
        x.mul(x).sum().backward();
        x.mul(3).sum().backward();
        assertArrayEquals(new double[]{5, 7, 9}, x.grad().toDoubleArray());
    }

    @Test void noGradScopeRecordsNothingAndDetachCutsTheGraph() {
        Tensor x = Tensor.of(new double[]{1, 2}, 2).requiresGrad(true);
        Tensor y;
        try (GradMode g = GradMode.disabled()) {
            y = x.mul(2);
        }
        assertFalse(y.requiresGrad());
        assertNull(y.gradFn());
        Tensor z = x.mul(2).detach();
        assertFalse(z.requiresGrad());
        assertThrows(IllegalStateException.class, () -> z.sum().backward());
        assertTrue(GradMode.isEnabled(), "the scope restores grad mode when it closes");
    }

    @Test void hookReplacesTheGradientAndPostAccumulateHookSeesTheResult() {
        Tensor x = Tensor.of(new double[]{1, 2}, 2).requiresGrad(true);
        List<double[]> seen = new ArrayList<>();
        x.registerHook(g -> g.mul(10));
        x.registerPostAccumulateHook(g -> seen.add(g.toDoubleArray()));
        x.mul(x).sum().backward();
        assertArrayEquals(new double[]{20, 40}, x.grad().toDoubleArray());
        assertEquals(1, seen.size());
        assertArrayEquals(new double[]{20, 40}, seen.getFirst());
    }

    @Test void secondBackwardNeedsRetainGraph() {
        Tensor x = Tensor.of(new double[]{2}, 1).requiresGrad(true);
        Tensor y = x.exp().sum();
        y.backward(Tensor.scalar(1, DType.FLOAT64, Device.CPU), true);
        y.backward(Tensor.scalar(1, DType.FLOAT64, Device.CPU), false);
        assertEquals(2 * Math.exp(2), x.grad().item(), 1e-12);
        var e = assertThrows(IllegalStateException.class, y::backward);
        assertTrue(e.getMessage().contains("second time"), e.getMessage());
    }

    @Test void deepGraphBackwardDoesNotOverflowTheStack() {
        Tensor x = Tensor.of(new double[]{1}, 1).requiresGrad(true);
        Tensor y = x;
        for (int i = 0; i < 20_000; i++) y = y.mul(1.0);
        y.sum().backward();
        assertEquals(1.0, x.grad().item());
    }

    @Test void leafGradientsOfALinearLayerAreHandedOverWithoutCopies() {
        var model = new dev.kiln.nn.Sequential(new dev.kiln.nn.Linear(6, 5, new Generator(1)), new dev.kiln.nn.ReLU(),
                new dev.kiln.nn.Linear(5, 3, new Generator(2)));
        Tensor x = Tensor.randn(new Generator(3), 4, 6);
        Tensor y = Tensor.of(new long[]{0, 2, 1, 2}, 4);
        Tensor loss = dev.kiln.nn.F.crossEntropy(model.forward(x), y);
        try (var prof = dev.kiln.profile.Profiler.start()) {
            loss.backward();
            prof.close();
            long copies = prof.spans().stream().filter(s -> s.name().startsWith("copy")).count();
            assertEquals(0, copies, "backward copied a gradient: " + prof.summary());
        }
        for (Tensor p : model.parameters()) {
            assertNotNull(p.grad());
            assertTrue(p.grad().isContiguous());
        }
    }

    @Test void aGradientSharedByTwoLeavesIsNotShared() {
        Tensor a = Tensor.of(new double[]{1, 2}, 2).requiresGrad(true);
        Tensor b = Tensor.of(new double[]{3, 4}, 2).requiresGrad(true);
        a.add(b).mul(2).sum().backward();
        assertNotSame(a.grad().storage(), b.grad().storage());
        a.zeroGrad();
        assertArrayEquals(new double[]{2, 2}, b.grad().toDoubleArray());
    }

    @Test void onlyFloatingTensorsRequireGrad() {
        var e = assertThrows(IllegalArgumentException.class, () -> Tensor.of(new long[]{1}, 1).requiresGrad(true));
        assertTrue(e.getMessage().contains("int64"), e.getMessage());
    }

    /** An intermediate's gradient goes back to its pool once its node has run; leaf gradients and shared memory stay. */
    @Test void backwardReleasesSpentIntermediateGradients() {
        try (MemoryScope step = MemoryScope.open()) {
            Tensor x = Tensor.of(new double[]{1, 2, 3}, 3).requiresGrad(true);
            Tensor[] seen = new Tensor[2];
            Tensor h = x.mul(3);
            Tensor out = dev.kiln.autograd.Autograd.record("probe", h.detach().mul(1), g -> {
                seen[0] = g;
                return new Tensor[]{g.mul(2)};
            }, h);
            Tensor kept = dev.kiln.autograd.Autograd.record("pass", out.detach().mul(1), g -> {
                seen[1] = g;
                return new Tensor[]{g};   // passed through: the same memory is out's gradient, still pending
            }, out);
            kept.mul(2).sum().backward();   // the mul: a gradient of its own memory, not a view of the root gradient
            assertArrayEquals(new double[]{12, 12, 12}, x.grad().toDoubleArray(), 0);
            assertTrue(seen[0].storage().isReleased(), "the probe's gradient is spent once the probe ran");
            assertTrue(seen[1].storage() == seen[0].storage(), "the pass-through handed on its gradient's memory");
            assertFalse(x.grad().storage().isReleased());
        }
    }
}
