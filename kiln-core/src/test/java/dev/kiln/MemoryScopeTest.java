package dev.kiln;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class MemoryScopeTest {
    @Test void releasesIntermediatesButKeepsLeafGradientsAndKeptTensors() {
        Tensor w = Tensor.randn(new Generator(1), 4, 3).requiresGrad(true);
        Tensor x = Tensor.randn(new Generator(2), 5, 4);
        Tensor h, kept;
        try (MemoryScope scope = MemoryScope.open()) {
            h = x.matmul(w).relu();
            kept = h.sum().keep();
            h.sum().backward();
            assertTrue(scope.size() > 0);
        }
        assertTrue(h.storage().isReleased(), "an intermediate made in the scope is released when it closes");
        assertFalse(kept.storage().isReleased(), "keep() takes a tensor out of the scope");
        assertFalse(w.grad().storage().isReleased(), "leaf gradients outlive the step");
        assertFalse(w.storage().isReleased(), "tensors made outside the scope are untouched");
        var e = assertThrows(IllegalStateException.class, h::toFloatArray);
        assertTrue(e.getMessage().contains("released"), e.getMessage());
    }

    @Test void gradientsAccumulateAcrossScopesAndZeroGradFreesThem() {
        Tensor w = Tensor.of(new double[]{1, 2}, 2).requiresGrad(true);
        for (int i = 0; i < 2; i++) {
            try (MemoryScope s = MemoryScope.open()) {
                w.mul(w).sum().backward();
            }
        }
        assertArrayEquals(new double[]{4, 8}, w.grad().toDoubleArray());
        Tensor g = w.grad();
        w.zeroGrad();
        assertNull(w.grad());
        assertTrue(g.storage().isReleased());
    }

    @Test void sharedGradientIsCopiedPerLeaf() {
        Tensor a = Tensor.of(new double[]{1}, 1).requiresGrad(true);
        Tensor b = Tensor.of(new double[]{2}, 1).requiresGrad(true);
        a.add(b).sum().backward();
        a.zeroGrad();
        assertEquals(1.0, b.grad().item(), "b's gradient must not share a's freed buffer");
    }

    @Test void eachBackwardsTemporariesGoBackWhenItReturns() {
        Tensor x = Tensor.randn(new Generator(3), 6).requiresGrad(true);
        Tensor[] temporary = new Tensor[1], returned = new Tensor[1];
        try (MemoryScope step = MemoryScope.open()) {
            Tensor y = dev.kiln.autograd.Autograd.record("test_op", x.detach().mul(2), g -> {
                temporary[0] = g.mul(1);            // made inside the op's backward, not returned
                returned[0] = temporary[0].mul(2);  // the gradient it returns
                return new Tensor[]{returned[0]};
            }, x);
            Tensor h = y.mul(3);                    // an intermediate: its gradient feeds test_op's backward
            h.sum().backward();
            assertTrue(temporary[0].storage().isReleased(), "a backward's temporary is released as soon as it returns");
            assertFalse(y.storage().isReleased(), "forward tensors live until the step ends");
            assertArrayEquals(new double[]{6, 6, 6, 6, 6, 6}, x.grad().toDoubleArray(), 0);
        }
        assertFalse(x.grad().storage().isReleased(), "the leaf's gradient outlives the step");
    }

    @Test void withoutAScopeBackwardLeavesItsTemporariesToTheCollector() {
        Tensor x = Tensor.randn(new Generator(4), 3).requiresGrad(true);
        Tensor[] temporary = new Tensor[1];
        dev.kiln.autograd.Autograd.record("test_op", x.detach().mul(1), g -> {
            temporary[0] = g.mul(1);
            return new Tensor[]{temporary[0].mul(1)};
        }, x).mul(2).sum().backward();
        assertFalse(temporary[0].storage().isReleased());
        assertArrayEquals(new double[]{2, 2, 2}, x.grad().toDoubleArray(), 0);
    }

    @Test void summedAndCastGradientsAreReleasedOnceAdded() {
        Tensor w = Tensor.randn(new Generator(5), 4, 4).requiresGrad(true);
        Tensor[] parts = new Tensor[2];
        try (MemoryScope step = MemoryScope.open()) {
            Tensor h = w.mul(2);                    // h feeds two ops: its gradient is the sum of theirs
            Tensor a = dev.kiln.autograd.Autograd.record("left", h.detach().mul(1), g -> new Tensor[]{parts[0] = g.mul(3)}, h);
            Tensor b = dev.kiln.autograd.Autograd.record("right", h.detach().mul(1), g -> new Tensor[]{parts[1] = g.mul(5)}, h);
            a.add(b).sum().backward();
            assertTrue(parts[0].storage().isReleased() && parts[1].storage().isReleased(), "the addends of a gradient sum are spent");
        }
        for (double v : w.grad().toDoubleArray()) assertEquals(16, v, 0);
    }

    @Test void promoteMovesMemoryToTheEnclosingScope() {
        Tensor inner;
        try (MemoryScope outer = MemoryScope.open()) {
            try (MemoryScope nested = MemoryScope.open()) {
                inner = Tensor.zeros(new int[]{2}, DType.FLOAT32, Device.CPU);
                MemoryScope.promote(inner);
            }
            assertFalse(inner.storage().isReleased(), "promoted: the nested scope leaves it alone");
        }
        assertTrue(inner.storage().isReleased(), "the enclosing scope releases it");
    }
}
