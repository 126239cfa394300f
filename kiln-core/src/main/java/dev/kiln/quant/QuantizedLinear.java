package dev.kiln.quant;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.cpu.Int8Gemm;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.ops.Quantized;

import java.util.Arrays;

/**
 * An int8 {@link Linear} for inference (the backend's {@link Quantized#int8Linear}: {@link Int8Gemm} on the CPU, dp4a on CUDA): y = dequantize(q(x) · Wqᵀ) + b, with the weight's codes per output
 * row ({@code weight}, int8 (out, in)), their scales ({@code weight_scale}, (out)) and the input's calibrated scale
 * ({@code input_scale}, a scalar). The codes are not a Tensor (Kiln has no int8 dtype): {@link Int8Model} saves them
 * as the checkpoint's I8 tensor {@code <name>.weight}; the scales and bias are float32 buffers.
 */
public final class QuantizedLinear extends Layer implements Forward {
    private final byte[] codes;
    private final int in, out;
    private final Tensor weightScale, inputScale, bias; // bias null without one
    private transient Tensor deviceCodes;                // the codes on the last device an input came from

    /** The layer of these codes (out x in, row-major), weight scales (out), input scale and bias (out, or null). */
    public QuantizedLinear(byte[] codes, int out, int in, Tensor weightScale, Tensor inputScale, Tensor bias) {
        if (codes.length != out * in) throw new IllegalArgumentException("QuantizedLinear: " + codes.length + " codes for " + out + "x" + in);
        this.codes = codes;
        this.in = in;
        this.out = out;
        this.weightScale = registerBuffer("weight_scale", weightScale);
        this.inputScale = registerBuffer("input_scale", inputScale);
        this.bias = bias == null ? null : registerBuffer("bias", bias);
    }

    /** Quantizes a float layer: per-row weight scales, and {@code inputRange} (calibrated max |x|) for the input. */
    public static QuantizedLinear of(Linear layer, double inputRange) {
        Tensor w = layer.weight();
        Int8.Rows q = Int8.quantizeRows(w.toFloatArray(), w.size(0), w.size(1));
        return new QuantizedLinear(q.codes(), q.rows(), q.cols(), Tensor.of(q.scales(), q.rows()),
                Tensor.scalar(Int8.scaleFor(inputRange)), layer.bias() == null ? null : layer.bias().detach().cpu().to(DType.FLOAT32).contiguousCopy());
    }

    /** The weight's int8 codes, (out, in) row-major (the array itself). */
    public byte[] codes() { return codes; }

    /** The codes' shape, (out, in). */
    public int[] weightShape() { return new int[]{out, in}; }

    @Override public Tensor forward(Tensor x) {
        if (x.dim() < 1 || x.size(-1) != in) {
            throw new IllegalArgumentException("QuantizedLinear: input " + Arrays.toString(x.shape()) + " does not end in " + in);
        }
        int rows = (int) (x.numel() / in);
        int[] outShape = x.shape();
        outShape[outShape.length - 1] = out;
        // the backend's int8 product (CPU: Int8Gemm; CUDA: dp4a); the codes become a uint8 tensor of the same bytes once per device
        if (deviceCodes == null || !deviceCodes.device().equals(x.device())) {
            deviceCodes = Tensor.fromHost(codes, DType.UINT8, new int[]{out, in}, Device.CPU).to(x.device()).keep();
        }
        Tensor y = Quantized.int8Linear(x.to(DType.FLOAT32).reshape(rows, in), deviceCodes, weightScale.to(x.device()),
                bias == null ? null : bias.to(x.device()), inputScale.item());
        return y.reshape(outShape);
    }

    @Override protected String extraRepr() { return "in_features=" + in + ", out_features=" + out + ", int8"; }
}
