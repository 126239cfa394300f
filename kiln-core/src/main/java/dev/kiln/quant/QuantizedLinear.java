package dev.kiln.quant;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.ops.Quantized;

import java.util.Arrays;

/**
 * An int8 or FP8 {@link Linear} for inference (the backend's {@link Quantized#linear}: {@link dev.kiln.cpu.Int8Gemm} or
 * decoded FP8 on the CPU, cuBLASLt tensor cores on CUDA): y = dequantize(q(x) · Wqᵀ) + b, with the weight's codes per
 * output row ({@code weight}, (out, in)), their scales ({@code weight_scale}, (out)) and the input's calibrated scale
 * ({@code input_scale}, a scalar). The codes are not a Tensor (Kiln has no 8-bit signed or float dtype):
 * {@link QuantizedModel} saves them as the checkpoint's I8 or F8_E4M3 tensor {@code <name>.weight}; the scales and bias
 * are float32 buffers.
 */
public final class QuantizedLinear extends Layer implements Forward {
    private final QuantFormat format;
    private final byte[] codes;
    private final int in, out;
    private final double scale;                       // input_scale's value, read at construction (from a GPU it would sync every call); QuantizedModel.load builds layers from the file's scales
    private final Tensor weightScale, bias; // bias null without one
    private transient Tensor deviceCodes;                // the codes on the last device an input came from
    private boolean relu;                                // a following ReLU folded in (QuantizedModel.foldReLUs)

    /** The layer of these codes (out x in, row-major), weight scales (out), input scale and bias (out, or null). */
    public QuantizedLinear(QuantFormat format, byte[] codes, int out, int in, Tensor weightScale, Tensor inputScale, Tensor bias) {
        if (codes.length != out * in) throw new IllegalArgumentException("QuantizedLinear: " + codes.length + " codes for " + out + "x" + in);
        this.format = format;
        this.codes = codes;
        this.in = in;
        this.out = out;
        this.weightScale = registerBuffer("weight_scale", weightScale);
        registerBuffer("input_scale", inputScale);
        this.scale = inputScale.item();
        this.bias = bias == null ? null : registerBuffer("bias", bias);
    }

    /** Quantizes a float layer: per-row weight scales, and {@code inputRange} (calibrated max |x|) for the input. */
    public static QuantizedLinear of(QuantFormat format, Linear layer, double inputRange) {
        Tensor w = layer.weight();
        QuantizedRows q = QuantizedRows.of(format, w.toFloatArray(), w.size(0), w.size(1));
        return new QuantizedLinear(format, q.codes(), q.rows(), q.cols(), Tensor.of(q.scales(), q.rows()),
                Tensor.scalar(QuantizedRows.scaleFor(format, inputRange)), layer.bias() == null ? null : layer.bias().detach().cpu().to(DType.FLOAT32).contiguousCopy());
    }

    public QuantFormat format() { return format; }

    /** Folds the ReLU that follows this layer into its output pass (max(y, 0)); the caller drops that ReLU. */
    void foldReLU() { relu = true; }

    /** Whether a following ReLU is folded into this layer. */
    public boolean foldsReLU() { return relu; }

    /** The weight's codes, (out, in) row-major (the array itself). */
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
        // the codes become a uint8 tensor of the same bytes once per device
        if (deviceCodes == null || !deviceCodes.device().equals(x.device())) {
            deviceCodes = Tensor.fromHost(codes, DType.UINT8, new int[]{out, in}, Device.CPU).to(x.device()).keep();
        }
        Tensor y = Quantized.linear(format, x.to(DType.FLOAT32).reshape(rows, in), deviceCodes, weightScale.to(x.device()),
                bias == null ? null : bias.to(x.device()), scale, relu);
        return y.reshape(outShape);
    }

    @Override protected String extraRepr() { return "in_features=" + in + ", out_features=" + out + ", " + format.cliName() + (relu ? ", relu" : ""); }
}
