package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import static dev.kiln.Backends.get;

/**
 * The Quantized family: int8 inference products. {@code int8Linear} is y = dequantize(q(x) · Wqᵀ) + b for a float32 x (M, K),
 * int8 weight codes (N, K) carried in a uint8 tensor (Kiln has no int8 dtype: the bytes are the two's-complement codes),
 * per-row weight scales (N) and the input's scale. Inference only: it records no gradient.
 */
public final class Quantized {
    private Quantized() {}

    public static Tensor int8Linear(Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale) {
        Checks.sameDevice("int8_linear", x, codes);
        Checks.sameDevice("int8_linear", x, weightScale);
        if (bias != null) Checks.sameDevice("int8_linear", x, bias);
        if (x.dtype() != DType.FLOAT32 || x.dim() != 2) throw new IllegalArgumentException("int8_linear: x must be float32 (M, K), got " + x.dtype() + " " + Shape.str(x.shape()));
        if (codes.dtype() != DType.UINT8 || codes.dim() != 2 || codes.size(1) != x.size(1)) {
            throw new IllegalArgumentException("int8_linear: codes must be uint8-carried int8 (N, " + x.size(1) + "), got " + codes.dtype() + " " + Shape.str(codes.shape()));
        }
        int n = codes.size(0);
        if (weightScale.dtype() != DType.FLOAT32 || weightScale.numel() != n) throw new IllegalArgumentException("int8_linear: weight scales must be float32 (" + n + ")");
        if (bias != null && (bias.dtype() != DType.FLOAT32 || bias.numel() != n)) throw new IllegalArgumentException("int8_linear: bias must be float32 (" + n + ")");
        if (!(inputScale > 0)) throw new IllegalArgumentException("int8_linear: input scale must be > 0, got " + inputScale);
        return get(x.device()).int8Linear(x.detach(), codes, weightScale, bias, inputScale);
    }
}
