package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.QuantFormat;

import static dev.kiln.Backends.get;

/**
 * The Quantized family: 8-bit inference products, int8 or FP8 E4M3 ({@link QuantFormat}). {@code linear} is
 * y = dequantize(q(x) · Wqᵀ) + b for a float32 x (M, K), weight codes (N, K) carried in a uint8 tensor (the bytes are the
 * format's codes), per-row weight scales (N) and the input's scale; {@code conv2d} the same products over the im2col rows
 * of an NCHW input with codes (O, C, kh, kw). {@code relu} applies max(y, 0) in the same pass (a following ReLU folded
 * in). Inference only: they record no gradient.
 */
public final class Quantized {
    private Quantized() {}

    public static Tensor linear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        String op = format.cliName() + "_linear";
        if (x.dtype() != DType.FLOAT32 || x.dim() != 2) throw new IllegalArgumentException(op + ": x must be float32 (M, K), got " + x.dtype() + " " + Shape.str(x.shape()));
        if (codes.dtype() != DType.UINT8 || codes.dim() != 2 || codes.size(1) != x.size(1)) {
            throw new IllegalArgumentException(op + ": codes must be uint8-carried (N, " + x.size(1) + "), got " + codes.dtype() + " " + Shape.str(codes.shape()));
        }
        checkRest(op, x, codes, weightScale, bias, inputScale);
        return get(x.device()).quantizedLinear(format, x.detach(), codes, weightScale, bias, inputScale, relu);
    }

    public static Tensor conv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams geometry, Tensor weightScale, Tensor bias, double inputScale,
                                boolean relu) {
        String op = format.cliName() + "_conv2d";
        if (x.dtype() != DType.FLOAT32 || x.dim() != 4) throw new IllegalArgumentException(op + ": x must be float32 (N, C, H, W), got " + x.dtype() + " " + Shape.str(x.shape()));
        if (codes.dtype() != DType.UINT8 || codes.dim() != 4 || codes.size(1) != x.size(1)) {
            throw new IllegalArgumentException(op + ": codes must be uint8-carried (O, " + x.size(1) + ", kh, kw), got " + codes.dtype() + " " + Shape.str(codes.shape()));
        }
        if (geometry.groups() != 1) throw new IllegalArgumentException(op + ": groups " + geometry.groups() + " (only 1 is supported)");
        if (geometry.outH(x.size(2), codes.size(2)) < 1 || geometry.outW(x.size(3), codes.size(3)) < 1) {
            throw new IllegalArgumentException(op + ": kernel " + Shape.str(codes.shape()) + " does not fit input " + Shape.str(x.shape()));
        }
        checkRest(op, x, codes, weightScale, bias, inputScale);
        return get(x.device()).quantizedConv2d(format, x.detach(), codes, geometry, weightScale, bias, inputScale, relu);
    }

    private static void checkRest(String op, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale) {
        Checks.sameDevice(op, x, codes);
        Checks.sameDevice(op, x, weightScale);
        if (bias != null) Checks.sameDevice(op, x, bias);
        int n = codes.size(0);
        if (weightScale.dtype() != DType.FLOAT32 || weightScale.numel() != n) throw new IllegalArgumentException(op + ": weight scales must be float32 (" + n + ")");
        if (bias != null && (bias.dtype() != DType.FLOAT32 || bias.numel() != n)) throw new IllegalArgumentException(op + ": bias must be float32 (" + n + ")");
        if (!(inputScale > 0)) throw new IllegalArgumentException(op + ": input scale must be > 0, got " + inputScale);
    }
}
