package dev.kiln.nn;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.UnaryOp;
import dev.kiln.ops.Elementwise;

/** The attention masks the layers build; bool masks here say true = may attend, as F.scaledDotProductAttention. */
final class Masks {
    private Masks() {}

    /**
     * (L, S) bool, true where key j lies in query i's future, j > i + offset: the queries are positions
     * offset .. offset+L-1 of a sequence whose first S positions are the keys (offset 0: PyTorch's is_causal). Cached
     * (a CUDA graph capture cannot make one): never modify it.
     */
    static Tensor future(int l, int s, int offset, Device device) { return dev.kiln.ops.Attention.futureMask(l, s, offset, device); }

    /** Logical not of a bool tensor. */
    static Tensor not(Tensor mask) { return Elementwise.unary(UnaryOp.NOT, mask); }
}
