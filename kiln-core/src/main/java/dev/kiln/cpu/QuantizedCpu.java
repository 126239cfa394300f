package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;

/** The int8 linear product on the CPU: the input quantized by {@link Int8Gemm#quantize}, the product by {@link Int8Gemm}. */
final class QuantizedCpu {
    private QuantizedCpu() {}

    static Tensor int8Linear(Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale) {
        int m = x.size(0), k = x.size(1), n = codes.size(0);
        byte[] xq = Int8Gemm.quantize(x.toFloatArray(), (float) inputScale);
        float[] out = new float[m * n];
        Tensor w = codes.isContiguous() && codes.offset() == 0 ? codes : codes.contiguousCopy(); // read in place, not copied per call
        Int8Gemm.gemm(xq, m, k, (byte[]) CpuStorage.arrayOf(w), n, (float) inputScale, weightScale.toFloatArray(),
                bias == null ? null : bias.toFloatArray(), false, out);
        return Tensor.fromHost(out, DType.FLOAT32, new int[]{m, n}, Device.CPU);
    }
}
