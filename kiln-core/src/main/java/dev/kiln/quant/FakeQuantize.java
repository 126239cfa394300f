package dev.kiln.quant;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.UnaryOp;
import dev.kiln.ops.Elementwise;

/**
 * Fake quantization for quantization-aware training: the forward value is what int8 inference will compute,
 * q(x)·s with q(x) = clamp(round(x / s), -127, 127) rounded as {@link Int8#quantize}; the gradient is the clipped
 * straight-through estimator (PyTorch's fake_quantize rule): 1 where x lies within the representable ±127·s, 0 where
 * it was clamped. Built from differentiable primitives, so it runs on every device and needs no kernel or gradient of
 * its own: {@code clamp(x)} carries the gradient, and the rounding error is added to it detached.
 */
public final class FakeQuantize {
    private FakeQuantize() {}

    /** One scale for the whole tensor (activations). */
    public static Tensor perTensor(Tensor x, double scale) {
        if (!(scale > 0)) throw new IllegalArgumentException("fake quantize: scale must be > 0, got " + scale);
        double limit = Int8.QMAX * scale;
        Tensor clamped = x.clamp(-limit, limit);
        return straightThrough(clamped, roundHalfAway(clamped.detach().div(scale)).mul(scale));
    }

    /** One scale per index of dim 0 (a weight's output channels); {@code scales} has shape (x.size(0)), each > 0. */
    public static Tensor perChannel(Tensor x, Tensor scales) {
        int[] shape = new int[x.dim()];
        java.util.Arrays.fill(shape, 1);
        shape[0] = x.size(0);
        Tensor s = scales.detach().reshape(shape);
        Tensor limit = s.mul(Int8.QMAX);
        Tensor clamped = x.minimum(limit).maximum(limit.neg()); // min/max pass the gradient where x is inside
        return straightThrough(clamped, roundHalfAway(clamped.detach().div(s)).mul(s));
    }

    /** The per-output-channel scales of a weight as int8 quantization gives them: max |w| of each row over 127 (1 for an all-zero row). */
    public static Tensor channelScales(Tensor w) {
        try (var ignored = dev.kiln.autograd.GradMode.disabled()) {
            Tensor max = w.abs().reshape(w.size(0), -1).max(1, false).div(Int8.QMAX);
            return Tensor.where(max.gt(0), max, Tensor.scalar(1, max.dtype(), max.device()));
        }
    }

    /** clamped's value replaced by quantized (which is clamped, rounded): the gradient flows through clamped alone. */
    private static Tensor straightThrough(Tensor clamped, Tensor quantized) {
        return clamped.add(quantized.sub(clamped.detach()));
    }

    /** Round half away from zero from primitives: trunc(v + 0.5·sign(v)), the truncation a cast to int32 and back. */
    private static Tensor roundHalfAway(Tensor v) {
        return v.add(Elementwise.unary(UnaryOp.SIGN, v).mul(0.5)).to(DType.INT32).to(v.dtype());
    }
}
