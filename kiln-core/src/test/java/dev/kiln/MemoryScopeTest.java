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
}
