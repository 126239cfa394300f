package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
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
        Sequential a = ModelZoo.CNN_BN.build(new Generator(1)), b = ModelZoo.CNN_BN.build(new Generator(2));
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

    @Test void toDtypeConvertsParametersAndKeepsThemTrainable() {
        Layer m = ModelZoo.CNN_BN.build(new Generator(0)).to(DType.FLOAT64);
        for (Tensor p : m.parameters()) {
            assertEquals(DType.FLOAT64, p.dtype());
            assertTrue(p.requiresGrad() && p.isLeaf());
        }
        assertEquals(DType.INT64, m.stateDict().get("0.1.num_batches_tracked").dtype());
        assertTrue(m.toString().startsWith("Sequential("), m.toString());
    }
}
