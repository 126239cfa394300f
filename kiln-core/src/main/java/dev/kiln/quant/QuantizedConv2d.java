package dev.kiln.quant;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.QuantFormat;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.ops.Quantized;

/**
 * An int8 or FP8 {@link Conv2d} (groups 1) for inference, the backend's {@link Quantized#conv2d}: the input quantized
 * with its calibrated scale into im2col rows (zero padding is code 0, exact), multiplied with the per-output-channel
 * codes and dequantized (the CPU's {@link dev.kiln.cpu.Int8Gemm} per image; im2col and the cuBLASLt product on CUDA).
 * Buffers and saving as {@link QuantizedLinear}: {@code weight_scale} (out), {@code input_scale} (scalar), {@code bias};
 * the codes are the checkpoint's 8-bit {@code <name>.weight}.
 */
public final class QuantizedConv2d extends Layer implements Forward {
    private final QuantFormat format;
    private final byte[] codes;
    private final int out, in, kernel;
    private final Conv2dParams geometry;
    private final double scale;                       // input_scale's value, read at construction (from a GPU it would sync every call); QuantizedModel.load builds layers from the file's scales
    private final Tensor weightScale, bias;
    private transient Tensor deviceCodes; // the codes on the last device an input came from
    private boolean relu;                 // a following ReLU folded in (QuantizedModel.foldReLUs)

    /** The layer of these codes (out, in, k, k), scales, geometry (groups 1) and bias (or null). */
    public QuantizedConv2d(QuantFormat format, byte[] codes, int out, int in, int kernel, Conv2dParams geometry, Tensor weightScale, Tensor inputScale, Tensor bias) {
        if (geometry.groups() != 1) throw new IllegalArgumentException("QuantizedConv2d: groups " + geometry.groups() + " (only 1 is supported)");
        if (codes.length != out * in * kernel * kernel) throw new IllegalArgumentException("QuantizedConv2d: " + codes.length + " codes for " + out + "x" + in + "x" + kernel + "x" + kernel);
        this.format = format;
        this.codes = codes;
        this.out = out;
        this.in = in;
        this.kernel = kernel;
        this.geometry = geometry;
        this.weightScale = registerBuffer("weight_scale", weightScale);
        registerBuffer("input_scale", inputScale);
        this.scale = inputScale.item();
        this.bias = bias == null ? null : registerBuffer("bias", bias);
    }

    /** Quantizes a float convolution: per-output-channel weight scales, {@code inputRange} (calibrated max |x|) for the input. */
    public static QuantizedConv2d of(QuantFormat format, Conv2d layer, double inputRange) {
        Tensor w = layer.weight();
        int o = w.size(0), c = w.size(1), k = w.size(2);
        if (w.size(3) != k) throw new IllegalArgumentException("QuantizedConv2d: square kernels only, got " + java.util.Arrays.toString(w.shape()));
        QuantizedRows q = QuantizedRows.of(format, w.toFloatArray(), o, c * k * k);
        return new QuantizedConv2d(format, q.codes(), o, c, k, layer.geometry(), Tensor.of(q.scales(), o), Tensor.scalar(QuantizedRows.scaleFor(format, inputRange)),
                layer.bias() == null ? null : layer.bias().detach().cpu().to(DType.FLOAT32).contiguousCopy());
    }

    public QuantFormat format() { return format; }

    /** Folds the ReLU that follows this layer into its output pass (max(y, 0)); the caller drops that ReLU. */
    void foldReLU() { relu = true; }

    /** Whether a following ReLU is folded into this layer. */
    public boolean foldsReLU() { return relu; }

    /** The weight's codes, (out, in, k, k) row-major (the array itself). */
    public byte[] codes() { return codes; }

    /** The codes' shape, (out, in, k, k). */
    public int[] weightShape() { return new int[]{out, in, kernel, kernel}; }

    @Override public Tensor forward(Tensor x) {
        if (x.dim() != 4 || x.size(1) != in) throw new IllegalArgumentException("QuantizedConv2d: expected (N, " + in + ", H, W), got " + java.util.Arrays.toString(x.shape()));
        if (deviceCodes == null || !deviceCodes.device().equals(x.device())) {
            deviceCodes = Tensor.fromHost(codes, DType.UINT8, weightShape(), Device.CPU).to(x.device()).keep();
        }
        return Quantized.conv2d(format, x.to(DType.FLOAT32), deviceCodes, geometry, weightScale.to(x.device()),
                bias == null ? null : bias.to(x.device()), scale, relu);
    }

    @Override protected String extraRepr() { return in + ", " + out + ", kernel_size=(" + kernel + ", " + kernel + "), " + format.cliName() + (relu ? ", relu" : ""); }
}
