package dev.kiln.quant;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.cpu.Int8Gemm;
import dev.kiln.cpu.Parallel;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;

/**
 * An int8 {@link Conv2d} (groups 1) for inference on the CPU: the input is quantized with its calibrated scale, laid
 * out as im2col rows of int8 (zero padding is code 0, exact), multiplied with the per-output-channel int8 weight by
 * {@link Int8Gemm} and dequantized in its epilogue. Buffers and saving as {@link QuantizedLinear}: {@code weight_scale}
 * (out), {@code input_scale} (scalar), {@code bias}; the codes are the checkpoint's I8 {@code <name>.weight}.
 */
public final class QuantizedConv2d extends Layer implements Forward {
    private final byte[] codes;
    private final int out, in, kernel;
    private final Conv2dParams geometry;
    private final Tensor weightScale, inputScale, bias;

    /** The layer of these codes (out, in, k, k), scales, geometry (groups 1) and bias (or null). */
    public QuantizedConv2d(byte[] codes, int out, int in, int kernel, Conv2dParams geometry, Tensor weightScale, Tensor inputScale, Tensor bias) {
        if (geometry.groups() != 1) throw new IllegalArgumentException("QuantizedConv2d: groups " + geometry.groups() + " (only 1 is supported)");
        if (codes.length != out * in * kernel * kernel) throw new IllegalArgumentException("QuantizedConv2d: " + codes.length + " codes for " + out + "x" + in + "x" + kernel + "x" + kernel);
        this.codes = codes;
        this.out = out;
        this.in = in;
        this.kernel = kernel;
        this.geometry = geometry;
        this.weightScale = registerBuffer("weight_scale", weightScale);
        this.inputScale = registerBuffer("input_scale", inputScale);
        this.bias = bias == null ? null : registerBuffer("bias", bias);
    }

    /** Quantizes a float convolution: per-output-channel weight scales, {@code inputRange} (calibrated max |x|) for the input. */
    public static QuantizedConv2d of(Conv2d layer, double inputRange) {
        Tensor w = layer.weight();
        int o = w.size(0), c = w.size(1), k = w.size(2);
        if (w.size(3) != k) throw new IllegalArgumentException("QuantizedConv2d: square kernels only, got " + java.util.Arrays.toString(w.shape()));
        Int8.Rows q = Int8.quantizeRows(w.toFloatArray(), o, c * k * k);
        return new QuantizedConv2d(q.codes(), o, c, k, layer.geometry(), Tensor.of(q.scales(), o), Tensor.scalar(Int8.scaleFor(inputRange)),
                layer.bias() == null ? null : layer.bias().detach().cpu().to(DType.FLOAT32).contiguousCopy());
    }

    /** The weight's int8 codes, (out, in, k, k) row-major (the array itself). */
    public byte[] codes() { return codes; }

    /** The codes' shape, (out, in, k, k). */
    public int[] weightShape() { return new int[]{out, in, kernel, kernel}; }

    @Override public Tensor forward(Tensor x) {
        Int8Model.requireCpu(x, "QuantizedConv2d");
        if (x.dim() != 4 || x.size(1) != in) throw new IllegalArgumentException("QuantizedConv2d: expected (N, " + in + ", H, W), got " + java.util.Arrays.toString(x.shape()));
        int n = x.size(0), h = x.size(2), w = x.size(3), oh = geometry.outH(h, kernel), ow = geometry.outW(w, kernel), p = oh * ow, k = in * kernel * kernel;
        float scale = (float) inputScale.item();
        byte[] qx = Int8.quantize(x.toFloatArray(), scale);
        float[] y = new float[n * out * p], wScale = weightScale.toFloatArray(), b = bias == null ? null : bias.toFloatArray();
        // one image per task: its im2col rows (P x k codes) stay in cache for the product, which writes NCHW directly
        Parallel.balanced(n, (i0, i1) -> {
            byte[] cols = new byte[p * k];
            for (int img = i0; img < i1; img++) {
                im2col(qx, img, h, w, oh, ow, cols);
                Int8Gemm.gemm(cols, 0, p, k, codes, out, scale, wScale, b, false, new Int8Gemm.Out(y, img * out * p, 1, p));
            }
        });
        return Tensor.fromHost(y, DType.FLOAT32, new int[]{n, out, oh, ow}, Device.CPU);
    }

    /** Image {@code img}'s rows of k = C·kh·kw codes, one per output position, in the weight's (c, i, j) order; outside the image: 0. */
    private void im2col(byte[] qx, int img, int h, int w, int oh, int ow, byte[] cols) {
        java.util.Arrays.fill(cols, (byte) 0);
        int k = in * kernel * kernel;
        for (int y = 0; y < oh; y++) for (int x = 0; x < ow; x++) {
            int row = (y * ow + x) * k;
            for (int c = 0; c < in; c++) for (int i = 0; i < kernel; i++) {
                int iy = y * geometry.strideH() - geometry.padH() + i * geometry.dilationH();
                if (iy < 0 || iy >= h) continue;
                int src = ((img * in + c) * h + iy) * w, dst = row + (c * kernel + i) * kernel;
                for (int j = 0; j < kernel; j++) {
                    int ix = x * geometry.strideW() - geometry.padW() + j * geometry.dilationW();
                    if (ix >= 0 && ix < w) cols[dst + j] = qx[src + ix];
                }
            }
        }
    }

    @Override protected String extraRepr() { return in + ", " + out + ", kernel_size=(" + kernel + ", " + kernel + "), int8"; }
}
