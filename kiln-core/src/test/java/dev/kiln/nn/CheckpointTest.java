package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CheckpointTest {
    /** An MLP with dropout; with {@code checkpoint} its two hidden blocks are wrapped in Checkpoint. */
    static Sequential mlp(long seed, boolean checkpoint) {
        Generator g = new Generator(seed);
        Sequential b1 = new Sequential(new Linear(12, 16, g), new ReLU(), new Dropout(0.3, g));
        Sequential b2 = new Sequential(new Linear(16, 16, g), new Tanh(), new Dropout(0.3, g));
        Layer head = new Linear(16, 5, g);
        return checkpoint ? new Sequential(new Checkpoint(b1), new Checkpoint(b2), head) : new Sequential(b1, b2, head);
    }

    /** Two training steps (so the dropout generator moves on between them); returns the last step's gradients. */
    static double[][] gradients(boolean checkpoint, Device device) {
        Sequential m = mlp(7, checkpoint).to(DType.FLOAT64).to(device);
        m.train();
        double[][] out = null;
        for (int step = 0; step < 2; step++) {
            try (MemoryScope s = MemoryScope.open()) {
                m.zeroGrad();
                Tensor x = Tensor.randn(new Generator(100 + step), new int[]{8, 12}, DType.FLOAT64, device).requiresGrad(true);
                Tensor y = m.forward(x);
                y.mul(y).sum().backward();
                List<Tensor> ps = m.parameters();
                out = new double[ps.size() + 1][];
                for (int i = 0; i < ps.size(); i++) out[i] = ps.get(i).grad().toDoubleArray();
                out[ps.size()] = x.grad().toDoubleArray();
            }
        }
        return out;
    }

    @Test void checkpointedGradientsEqualPlainOnesWithDropout() {
        double[][] plain = gradients(false, Device.CPU), ckpt = gradients(true, Device.CPU);
        assertEquals(plain.length, ckpt.length);
        for (int i = 0; i < plain.length; i++) assertArrayEquals(plain[i], ckpt[i], 1e-12, "gradient " + i);
    }

    /**
     * A checkpointed block records one node whose inputs are the block's input and its parameters: none of the block's
     * activations (which would carry grad_fns of their own) is kept in the graph.
     */
    @Test void theForwardKeepsNoGraphInside() {
        Sequential m = mlp(1, true).to(DType.FLOAT64);
        Tensor x = Tensor.randn(new Generator(2), new int[]{4, 12}, DType.FLOAT64, Device.CPU);
        Tensor y = ((Checkpoint) m.get(0)).forward(x);
        assertTrue(y.requiresGrad(), "parameters need gradients, so the checkpoint records a node");
        var node = y.gradFn();
        assertTrue(node.op().contains("checkpoint"), node.op());
        java.util.Set<Tensor> params = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        params.addAll(m.get(0).parameters());
        for (Tensor in : node.inputs()) {
            if (in == null) continue;
            assertTrue(in == x || params.contains(in), "the node keeps only the block's input and parameters");
            assertNull(in.gradFn(), "an input with a grad_fn would be an activation of the block kept alive");
        }
        assertEquals(2, java.util.Arrays.stream(node.inputs()).filter(params::contains).count(), "the Linear's weight and bias");
    }
}
