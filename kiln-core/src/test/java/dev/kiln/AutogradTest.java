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

    /**
     * A leaf's gradient buffer (a data-parallel bucket's slice) receives its gradient: written there by linear's, layer
     * norm's, batch norm's and a cast's backward when the leaf has one consumer, copied there otherwise (a weight used twice, used as its own input, or
     * given a hook); values as without a buffer, the rest of the flat tensor untouched and never released.
     */
    @Test void gradientBuffersReceiveTheGradientWhateverTheGraph() {
        Generator gen = new Generator(7);
        Tensor x = Tensor.randn(gen, new int[]{5, 4}, DType.FLOAT64, Device.CPU);
        List<java.util.function.Function<Tensor[], Tensor>> graphs = List.of(
                p -> dev.kiln.nn.F.linear(x, p[0], p[1]).tanh().sum(),                                          // one consumer
                p -> dev.kiln.nn.F.linear(dev.kiln.nn.F.linear(x, p[0], p[1]).tanh(), p[0], null).sum(),         // the weight twice
                p -> dev.kiln.nn.F.linear(p[0], p[0], p[1]).sum(),                                               // its own input
                p -> dev.kiln.nn.F.linear(x, p[0], p[1]).mul(p[1]).sum(),                                        // the bias twice
                p -> dev.kiln.nn.F.layerNorm(x.matmul(p[0]), new int[]{4}, p[1], p[1], 1e-5).tanh().sum(),       // layer norm's, twice
                p -> dev.kiln.nn.F.layerNorm(x.matmul(p[0]), new int[]{4}, p[1], null, 1e-5).tanh().sum(),       // layer norm's weight
                p -> x.matmul(p[0].to(DType.FLOAT32)).to(DType.FLOAT64).add(p[1]).tanh().sum(),                 // a cast's, then an add's
                p -> dev.kiln.nn.F.batchNorm(x.matmul(p[0]), null, null, p[1], Tensor.zeros(new int[]{4}, DType.FLOAT64, Device.CPU), true, 0.1, 1e-5).tanh().sum());  // batch norm's
        for (int k = 0; k < graphs.size(); k++) {
            Tensor w0 = Tensor.randn(gen, new int[]{4, 4}, DType.FLOAT64, Device.CPU), b0 = Tensor.randn(gen, new int[]{4}, DType.FLOAT64, Device.CPU);
            Tensor w = w0.detach().requiresGrad(true), b = b0.detach().requiresGrad(true);
            graphs.get(k).apply(new Tensor[]{w, b}).backward();
            double[] dw = w.grad().toDoubleArray(), db = b.grad().toDoubleArray();

            Tensor flat = Tensor.full(new int[]{3 + 16 + 4 + 2}, -1.0, DType.FLOAT64, Device.CPU);
            Tensor wb = w0.detach().requiresGrad(true), bb = b0.detach().requiresGrad(true);
            wb.setGradBuffer(flat.narrow(0, 3, 16).view(4, 4));
            bb.setGradBuffer(flat.narrow(0, 19, 4));
            if (k == 0) bb.registerHook(g -> g.mul(1.0));   // a hooked leaf is copied into its buffer
            for (int pass = 0; pass < 2; pass++) {
                graphs.get(k).apply(new Tensor[]{wb, bb}).backward();
                assertSame(flat.storage(), wb.grad().storage(), "graph " + k + ": the weight's gradient is its buffer");
                assertSame(flat.storage(), bb.grad().storage(), "graph " + k + ": the bias's gradient is its buffer");
                assertArrayEquals(dw, wb.grad().toDoubleArray(), 1e-12, "graph " + k + " pass " + pass + ": weight gradient");
                assertArrayEquals(db, bb.grad().toDoubleArray(), 1e-12, "graph " + k + " pass " + pass + ": bias gradient");
                double[] all = flat.toDoubleArray();
                for (int i : new int[]{0, 1, 2, 23, 24}) assertEquals(-1.0, all[i], "graph " + k + ": the flat tensor outside the slices");
                wb.zeroGrad();
                bb.zeroGrad();
            }
            graphs.get(k).apply(new Tensor[]{wb, bb}).backward();
            graphs.get(k).apply(new Tensor[]{wb, bb}).backward();   // accumulating: a sum of its own beside the buffer
            for (int i = 0; i < dw.length; i++) assertEquals(2 * dw[i], wb.grad().toDoubleArray()[i], 1e-12, "graph " + k + ": accumulated");
        }
    }

    /**
     * A backward may take the gradient its input already has from other consumers and return its own plus that one
     * (Autograd.takePendingGradient): the engine then adds nothing. Offered only when another consumer ran first.
     */
    @Test void aBackwardThatTakesThePendingGradientReturnsTheSum() {
        for (boolean probeFirst : new boolean[]{false, true}) {
            Tensor x = Tensor.of(new double[]{1, -2, 3}, 3).requiresGrad(true);
            boolean[] taken = {false};
            Tensor a = x.mul(2);
            Tensor b = dev.kiln.autograd.Autograd.record("probe", x.detach().mul(3), g -> {
                Tensor pending = dev.kiln.autograd.Autograd.takePendingGradient(x);
                taken[0] = pending != null;
                Tensor own = g.mul(3);
                return new Tensor[]{pending == null ? own : own.add(pending)};
            }, x);
            // the engine runs the sum's second input's backward first: the probe sees a's gradient only when it is first
            (probeFirst ? b.add(a) : a.add(b)).sum().backward();
            assertEquals(probeFirst, taken[0], "pending gradient offered");
            assertArrayEquals(new double[]{5, 5, 5}, x.grad().toDoubleArray(), 1e-12);
        }
    }

    /**
     * A backward may write into the pending gradient (Autograd.takeWritablePendingGradient) only when nothing else can
     * see its memory: a fresh gradient is offered; one shared with the backward's own incoming gradient, or one a
     * hook has seen, is not, and what they hold stays unwritten.
     */
    @Test void aPendingGradientIsWrittenInPlaceOnlyWhenNothingElseSeesIt() {
        for (String graph : new String[]{"fresh", "shared", "hooked"}) {
            Tensor x = Tensor.of(new double[]{1, -2, 3}, 3).requiresGrad(true);
            boolean[] taken = {false};
            Tensor[] seen = {null};
            Tensor b = dev.kiln.autograd.Autograd.record("probe", x.detach().mul(3), g -> {
                Tensor pending = dev.kiln.autograd.Autograd.takeWritablePendingGradient(x);
                taken[0] = pending != null;
                Tensor[] out = {g.mul(3)};
                if (pending != null) {
                    pending.copyFrom(pending.add(out[0]));   // in place, as cuDNN's beta = 1 does
                    out[0] = pending;
                }
                // the engine releases spent gradients after this backward: read what the hook saw now
                if (seen[0] != null) assertArrayEquals(new double[]{4, 4, 4}, seen[0].toDoubleArray(), 1e-12, "what the hook saw");
                return out;
            }, x);
            Tensor other = switch (graph) {
                case "fresh" -> x.mul(2);                  // mul's backward makes a new tensor: writable
                case "shared" -> x.reshape(3, 1).reshape(3);   // views of the sum's gradient, which the probe also gets
                default -> {
                    Tensor u = x.reshape(3, 1);
                    u.registerHook(h -> { seen[0] = h; return h; });
                    yield u.mul(2).reshape(3);              // x's pending gradient is a view of what the hook saw
                }
            };
            // mul(2) makes the sum's gradient a tensor of its own, which add hands to both inputs; the sum's second
            // input runs first, so the probe finds x's gradient from it pending
            b.add(other).mul(2).sum().backward();
            assertEquals(graph.equals("fresh"), taken[0], graph + ": offered for writing");
            double[] want = graph.equals("shared") ? new double[]{8, 8, 8} : new double[]{10, 10, 10};
            assertArrayEquals(want, x.grad().toDoubleArray(), 1e-12, graph);
            assertEquals(graph.equals("hooked"), seen[0] != null, graph + ": hook ran");
        }
    }

    /** A tensor a hook hands to the graph stays the caller's: the engine never releases or writes its memory. */
    @Test void aTensorAHookReturnsIsNeverReleased() {
        Tensor x = Tensor.of(new double[]{1, -2, 3}, 3).requiresGrad(true);
        Tensor mine = Tensor.of(new double[]{7, 7, 7}, 3);
        Tensor t = x.mul(2).add(x.mul(3));   // add hands its gradient, the hook's tensor, to both products
        t.registerHook(h -> mine);
        t.sum().backward();
        assertArrayEquals(new double[]{35, 35, 35}, x.grad().toDoubleArray(), 1e-12);
        assertArrayEquals(new double[]{7, 7, 7}, mine.toDoubleArray(), 1e-12, "the hook's tensor after backward");
    }
}
