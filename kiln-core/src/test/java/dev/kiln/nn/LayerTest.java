package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.optim.Adam;
import dev.kiln.train.ModelZoo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class LayerTest {
    @TempDir Path dir;

    @Test void initialisationFollowsPyTorchsBounds() {
        Linear l = new Linear(100, 300, new Generator(5));
        assertRange(l.parameter("weight"), 0.1);
        assertRange(l.parameter("bias"), 0.1);
        Conv2d c = new Conv2d(3, 64, 5, new Generator(5)); // fan_in 3*5*5 = 75
        assertRange(c.parameter("weight"), 1 / Math.sqrt(75));
        assertRange(c.parameter("bias"), 1 / Math.sqrt(75));
        Conv2d grouped = new Conv2d(4, 8, 3, 1, 0, 1, 2, true, new Generator(5)); // fan_in (4/2)*9 = 18
        assertArrayEquals(new int[]{8, 2, 3, 3}, grouped.parameter("weight").shape());
        assertRange(grouped.parameter("weight"), 1 / Math.sqrt(18));
        BatchNorm2d bn = new BatchNorm2d(3);
        assertArrayEquals(new float[]{1, 1, 1}, bn.parameter("weight").toFloatArray());
        assertArrayEquals(new float[]{0, 0, 0}, bn.parameter("bias").toFloatArray());
        double[] e = new Embedding(200, 50, new Generator(1)).parameter("weight").toDoubleArray();
        double mean = 0, sq = 0;
        for (double v : e) {
            mean += v / e.length;
            sq += v * v / e.length;
        }
        assertEquals(0, mean, 0.05, "embedding ~ N(0, 1)");
        assertEquals(1, sq, 0.05);
    }

    /** Inside ±bound, and spread over it (not, say, all zero or inside half of it). */
    private static void assertRange(Tensor t, double bound) {
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
        for (double v : t.toDoubleArray()) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        assertTrue(lo >= -bound && hi <= bound, "in [-" + bound + ", " + bound + "]: " + lo + " .. " + hi);
        assertTrue(lo < -0.9 * bound && hi > 0.9 * bound, "spread over the range: " + lo + " .. " + hi);
    }

    @Test void sameSeedSameModel() {
        Tensor a = ModelZoo.MLP.build(new Generator(3)).parameters().getFirst();
        Tensor b = ModelZoo.MLP.build(new Generator(3)).parameters().getFirst();
        Tensor c = ModelZoo.MLP.build(new Generator(4)).parameters().getFirst();
        assertArrayEquals(a.toFloatArray(), b.toFloatArray());
        assertFalse(java.util.Arrays.equals(a.toFloatArray(), c.toFloatArray()));
    }

    @Test void zooModelsMatchTorchRefParameterCountsAndNames() {
        Layer mlp = ModelZoo.MLP.build(new Generator(0)), cnn = ModelZoo.CNN.build(new Generator(0));
        assertEquals(669_706, mlp.parameterCount());
        assertEquals(1_199_882, cnn.parameterCount());
        assertEquals(List.of("1.weight", "1.bias", "4.weight", "4.bias", "7.weight", "7.bias"), List.copyOf(mlp.stateDict().keySet()));
        assertEquals(List.of("0.weight", "0.bias", "2.weight", "2.bias", "7.weight", "7.bias", "10.weight", "10.bias"),
                List.copyOf(cnn.stateDict().keySet()));
        Layer bn = ModelZoo.CNN_BN.build(new Generator(0));
        assertEquals(List.of("0.0.weight", "0.1.weight", "0.1.bias", "0.1.running_mean", "0.1.running_var", "0.1.num_batches_tracked"),
                List.copyOf(bn.stateDict().keySet()).subList(0, 6));
        assertFalse(bn.namedParameters().containsKey("0.1.running_mean"), "buffers are not parameters");
        assertTrue(bn.namedBuffers().containsKey("0.1.running_mean"));
    }

    @Test void stateDictRoundTripThroughSafetensors() throws IOException {
        Model a = ModelZoo.CNN_BN.build(new Generator(1)), b = ModelZoo.CNN_BN.build(new Generator(2));
        Tensor x = Tensor.randn(new Generator(9), 3, 1, 28, 28);
        a.forward(x); // move a's running statistics away from their initial values
        a.eval();
        b.eval();
        Path f = dir.resolve("m.safetensors");
        Safetensors.write(f, a.stateDict(), Map.of());
        Tensor before = b.parameters().getFirst();
        b.loadStateDict(Safetensors.read(f).tensors());
        assertSame(before, b.parameters().getFirst(), "loading writes in place: optimizers keep their tensors");
        assertArrayEquals(a.forward(x).toFloatArray(), b.forward(x).toFloatArray(), 1e-6f);
        assertEquals(1, b.stateDict().get("0.1.num_batches_tracked").item());
    }

    @Test void loadStateDictIsStrict() {
        Linear l = new Linear(2, 3, new Generator(0));
        var missing = assertThrows(IllegalArgumentException.class, () -> l.loadStateDict(Map.of("weight", Tensor.zeros(3, 2))));
        assertTrue(missing.getMessage().contains("missing [bias]"), missing.getMessage());
        var shape = assertThrows(IllegalArgumentException.class, () -> l.loadStateDict(Map.of("weight", Tensor.zeros(2, 3), "bias", Tensor.zeros(3))));
        assertTrue(shape.getMessage().contains("'weight' has shape [2, 3]"), shape.getMessage());
        var extra = assertThrows(IllegalArgumentException.class, () -> l.loadStateDict(Map.of("weight", Tensor.zeros(3, 2), "bias", Tensor.zeros(3), "x", Tensor.zeros(1))));
        assertTrue(extra.getMessage().contains("unexpected [x]"), extra.getMessage());
    }

    @Test void trainAndEvalReachEverySubmodule() {
        Sequential s = new Sequential(new Sequential(new Dropout(0.5, new Generator(0))), new BatchNorm1d(2));
        assertTrue(s.get(0).child("0").isTraining());
        s.eval();
        for (Layer m : s.layers()) assertFalse(m.isTraining());
        s.train();
        for (Layer m : s.layers()) assertTrue(m.isTraining());
    }

    @Test void replaceLayerSwapsASublayerByPathWhereItsParentCallsIt() {
        Generator g = new Generator(0);
        Sequential inner = new Sequential(new Linear(3, 3, g), new ReLU());
        Sequential s = new Sequential(inner, new Linear(3, 2, g));
        Linear swapped = new Linear(3, 3, new Generator(1));
        s.replaceLayer("0.0", swapped);
        assertSame(swapped, s.namedLayers().get("0.0"));
        assertEquals(List.of("", "0", "0.0", "0.1", "1"), List.copyOf(s.namedLayers().keySet()));
        Tensor x = Tensor.randn(g, 2, 3);
        Tensor expected = ((Linear) s.get(1)).forward(swapped.forward(x).relu());
        assertArrayEquals(expected.toFloatArray(), s.forward(x).toFloatArray(), 0f, "forward runs the new layer");
        var e = assertThrows(IllegalArgumentException.class, () -> s.replaceLayer("0.1", new MaskedBlock(3, g)));
        assertTrue(e.getMessage().contains("does not"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> s.replaceLayer("0.7", new ReLU()), "no such sublayer");
    }

    /** A layer that calls its sublayer through a final field cannot take a replacement: refused, and left as it was. */
    @Test void replaceLayerRefusesAParentThatKeepsTheOldOneInAField() {
        Generator g = new Generator(0);
        Layer block = new Layer() {
            final Linear fc = registerLayer("fc", new Linear(2, 2, g));
        };
        Layer old = block.child("fc");
        var e = assertThrows(IllegalArgumentException.class, () -> block.replaceLayer("fc", new Linear(2, 2, g)));
        assertTrue(e.getMessage().contains("through field fc"), e.getMessage());
        assertSame(old, block.child("fc"));
    }

    @Test void toDtypeConvertsParametersAndKeepsThemTrainable() {
        Layer m = ModelZoo.CNN_BN.build(new Generator(0)).to(DType.FLOAT64);
        for (Tensor p : m.parameters()) {
            assertEquals(DType.FLOAT64, p.dtype());
            assertTrue(p.requiresGrad() && p.isLeaf());
        }
        assertEquals(DType.INT64, m.stateDict().get("0.1.num_batches_tracked").dtype());
        assertTrue(m.toString().startsWith("Sequential("), m.toString());
    }

    // ---------------------------------------------------------------- user-written layers

    /** A layer as a Java developer writes it: parameters, a buffer and a sublayer in final fields. */
    static final class Net extends Layer implements Forward {
        final Linear fc;
        final Tensor scale;
        final Tensor shift;

        Net(Generator g) {
            fc = registerLayer("fc", new Linear(3, 2, g));
            scale = registerParameter("scale", Tensor.ones(2));
            shift = registerBuffer("shift", Tensor.of(0.5f, -0.5f));
        }

        @Override public Tensor forward(Tensor x) { return fc.forward(x).mul(scale).add(shift); }
    }

    @Test void toDtypeMovesTensorsInPlaceSoFieldsAndOptimizersStayValid() {
        Net net = new Net(new Generator(1));
        Tensor w = net.fc.weight();
        Adam opt = new Adam(net.parameters(), 0.1); // built before to(): must still update the same tensors
        Tensor x = Tensor.randn(new Generator(2), 4, 3);
        net.forward(x).sum().backward();
        assertNotNull(w.grad());
        float[] before = w.toFloatArray();

        Net same = net.to(DType.FLOAT64);
        assertSame(net, same);
        assertSame(w, net.fc.weight(), "the field's tensor object stays");
        assertSame(w, net.namedParameters().get("fc.weight"));
        assertSame(net.shift, net.stateDict().get("shift"));
        for (Tensor t : List.of(w, net.fc.bias(), net.scale, net.shift)) assertEquals(DType.FLOAT64, t.dtype());
        assertTrue(w.requiresGrad() && w.isLeaf() && net.scale.requiresGrad());
        assertFalse(net.shift.requiresGrad(), "a buffer is not made trainable");
        assertNull(w.grad(), "a float32 gradient of the old data is dropped");
        assertArrayEquals(before, w.toFloatArray(), "values survive the conversion");

        opt.zeroGrad();
        net.forward(x.to(DType.FLOAT64)).sum().backward();
        assertEquals(DType.FLOAT64, w.grad().dtype());
        opt.step();
        assertEquals(DType.FLOAT64, w.dtype());
        assertFalse(java.util.Arrays.equals(before, w.toFloatArray()), "the optimizer built before to() updated the moved weight");

        Net onCpu = net.to(Device.CPU); // already there: nothing changes
        assertSame(w, onCpu.fc.weight());
        Net evaluating = net.eval();
        assertFalse(evaluating.fc.isTraining());
        Net training = net.train();
        assertTrue(training.isTraining());
    }

    @Test void tiedWeightsStayTiedThroughTo() {
        class Tied extends Layer implements Forward {
            final Linear a, b;

            Tied() {
                Generator g = new Generator(3);
                a = registerLayer("a", new Linear(2, 2, false, g));
                b = registerLayer("b", new Linear(2, 2, false, g));
                b.registerParameter("shared", a.weight()); // tied: one tensor, two names (same package: protected is visible)
            }

            @Override public Tensor forward(Tensor x) { return b.forward(a.forward(x)); }
        }
        Tied t = new Tied().to(DType.FLOAT64);
        assertSame(t.a.weight(), t.b.parameter("shared"));
        assertEquals(DType.FLOAT64, t.b.parameter("shared").dtype());
        assertEquals(List.of("a.weight", "b.weight"), List.copyOf(t.namedParameters().keySet()), "a shared tensor appears once");
    }

    @Test void setDataKeepsTheObjectAndRefusesOtherShapesAndNonLeaves() {
        Tensor p = Tensor.ones(2, 2).requiresGrad(true);
        p.setData(Tensor.zeros(new int[]{2, 2}, DType.FLOAT64, Device.CPU));
        assertEquals(DType.FLOAT64, p.dtype());
        assertTrue(p.requiresGrad());
        assertThrows(IllegalArgumentException.class, () -> p.setData(Tensor.zeros(4)));
        assertThrows(IllegalArgumentException.class, () -> p.setData(Tensor.zeros(new int[]{2, 2}, DType.INT64, Device.CPU)));
        Tensor y = p.mul(2);
        assertThrows(IllegalStateException.class, () -> y.setData(Tensor.zeros(2, 2)));
        try (MemoryScope s = MemoryScope.open()) {
            p.setData(Tensor.ones(2, 2)); // made inside a scope, but a parameter's data outlives it
        }
        assertArrayEquals(new float[]{1, 1, 1, 1}, p.toFloatArray());
    }

    // ---------------------------------------------------------------- the registration check

    static final class Forgetful extends Layer implements Forward {
        final Linear block1;
        final Linear block2; // not registered

        Forgetful(Generator g) {
            block1 = registerLayer("block1", new Linear(2, 2, g));
            block2 = new Linear(2, 2, g);
        }

        @Override public Tensor forward(Tensor x) { return block2.forward(block1.forward(x)); }
    }

    @Test void anUnregisteredLayerInAFieldIsNamed() {
        Forgetful f = new Forgetful(new Generator(0));
        var e = assertThrows(IllegalStateException.class, f::parameters);
        assertEquals("Forgetful.block2 holds a Layer (Linear) that is not registered: call registerLayer(\"block2\", ...) in the constructor"
                + " (or mark the field transient to leave it out)", e.getMessage());
        assertThrows(IllegalStateException.class, f::stateDict);
        assertThrows(IllegalStateException.class, () -> f.to(DType.FLOAT64));
        // found from a parent too
        Sequential outer = new Sequential(new Linear(2, 2, new Generator(1)), f);
        var nested = assertThrows(IllegalStateException.class, outer::namedParameters);
        assertTrue(nested.getMessage().startsWith("Forgetful.block2 "), nested.getMessage());
        // the forward pass itself is not checked
        assertArrayEquals(new int[]{1, 2}, f.forward(Tensor.zeros(1, 2)).shape());
    }

    static final class LooseParameter extends Layer {
        private final Tensor gate = Tensor.zeros(3).requiresGrad(true);
        private final transient Linear teacher = new Linear(3, 3, new Generator(0)); // transient: left out on purpose
        private final Tensor constant = Tensor.ones(3); // needs no gradient: not a parameter
    }

    @Test void anUnregisteredParameterIsNamedAndTransientFieldsAreExempt() {
        var e = assertThrows(IllegalStateException.class, () -> new LooseParameter().namedParameters());
        assertTrue(e.getMessage().startsWith("LooseParameter.gate holds a tensor that requires grad that is not registered: call registerParameter(\"gate\", ...)"),
                e.getMessage());
    }

    static final class Blocks extends Layer implements Forward {
        final List<Linear> blocks = new java.util.ArrayList<>();
        final Linear[] extra;

        Blocks(boolean registerAll) {
            Generator g = new Generator(0);
            for (int i = 0; i < 3; i++) blocks.add(registerLayer("blocks" + i, new Linear(2, 2, g)));
            extra = new Linear[]{new Linear(2, 2, g), new Linear(2, 2, g)};
            if (registerAll) for (int i = 0; i < extra.length; i++) registerLayer("extra" + i, extra[i]);
        }

        @Override public Tensor forward(Tensor x) {
            for (Linear b : blocks) x = b.forward(x);
            return x;
        }
    }

    @Test void layersInListsAndArraysAreCheckedElementByElement() {
        assertEquals(10, new Blocks(true).parameters().size());
        var e = assertThrows(IllegalStateException.class, () -> new Blocks(false).parameters());
        assertTrue(e.getMessage().startsWith("Blocks.extra[0] holds a Layer (Linear) that is not registered: call registerLayer(name, ...) for each element"),
                e.getMessage());
    }

    // ---------------------------------------------------------------- layers with several inputs

    /** A layer whose forward takes a mask: no Forward, a method of its own. */
    static final class MaskedBlock extends Layer {
        final Linear fc;
        final LayerNorm norm;

        MaskedBlock(int n, Generator g) {
            fc = registerLayer("fc", new Linear(n, n, g));
            norm = registerLayer("norm", new LayerNorm(n));
        }

        Tensor forward(Tensor x, Tensor mask) { return norm.forward(x.add(fc.forward(x).tanh().mul(mask))); }
    }

    static final class MaskedNet extends Layer implements Forward {
        final Linear in;
        final MaskedBlock block;
        final Linear head;
        final Tensor mask;
        final boolean checkpoint;

        MaskedNet(Generator g, boolean checkpoint) {
            in = registerLayer("in", new Linear(4, 6, g));
            block = registerLayer("block", new MaskedBlock(6, g));
            head = registerLayer("head", new Linear(6, 3, g));
            mask = registerBuffer("mask", Tensor.of(1f, 1f, 0f, 1f, 0f, 1f));
            this.checkpoint = checkpoint;
        }

        @Override public Tensor forward(Tensor x) {
            Tensor h = in.forward(x).relu();
            h = checkpoint ? Checkpoint.apply(block, t -> block.forward(t[0], t[1]), h, mask) : block.forward(h, mask);
            return head.forward(h);
        }
    }

    @Test void aTwoInputLayerNestsMovesSavesAndGetsGradients() {
        MaskedNet net = new MaskedNet(new Generator(4), false).to(DType.FLOAT64);
        assertEquals(List.of("mask", "in.weight", "in.bias", "block.fc.weight", "block.fc.bias", "block.norm.weight", "block.norm.bias",
                "head.weight", "head.bias"), List.copyOf(net.stateDict().keySet()));
        assertEquals(8, net.parameters().size());
        assertSame(net.block.fc.weight(), net.namedParameters().get("block.fc.weight"));
        assertEquals(DType.FLOAT64, net.block.fc.weight().dtype());
        assertEquals(DType.FLOAT64, net.mask.dtype());
        LayerGradCheck.check(net, Tensor.randn(new Generator(5), new int[]{3, 4}, DType.FLOAT64, Device.CPU));
    }

    @Test void aTwoInputLayerTrainsAndCheckpointsWithTheSameGradients() {
        Tensor x = Tensor.randn(new Generator(6), new int[]{16, 4}, DType.FLOAT64, Device.CPU);
        Tensor y = Tensor.of(new long[]{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, 16);
        double[][] grads = new double[2][];
        for (int c = 0; c < 2; c++) {
            MaskedNet net = new MaskedNet(new Generator(7), c == 1).to(DType.FLOAT64);
            net.forward(x).sum().backward();
            grads[c] = net.block.fc.weight().grad().toDoubleArray();
        }
        assertArrayEquals(grads[0], grads[1], 1e-12, "checkpointed two-input block: same parameter gradients");

        MaskedNet net = new MaskedNet(new Generator(7), true);
        Adam opt = new Adam(net.parameters(), 0.05);
        Tensor xf = x.to(DType.FLOAT32);
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++) {
            try (MemoryScope s = MemoryScope.open()) {
                opt.zeroGrad();
                Tensor loss = F.crossEntropy(net.forward(xf), y);
                loss.backward();
                opt.step();
                if (step == 0) first = loss.item();
                last = loss.item();
            }
        }
        assertTrue(last < 0.5 * first, "the loss falls: " + first + " -> " + last);
    }

    @Test void sequentialRejectsALayerWithoutForward() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new Sequential(new Linear(6, 6, new Generator(0)), new ReLU(), new MaskedBlock(6, new Generator(0))));
        assertTrue(e.getMessage().startsWith("Sequential: layer 2 (MaskedBlock) does not implement Forward"), e.getMessage());
    }
}
