package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;

/** The int8 linear product on CUDA (quantized.cu): quantize the input, then dp4a tiles with the dequantizing epilogue. */
final class QuantizedCuda extends CudaFamily {
    private final Kernels.Single quantize, linear;

    QuantizedCuda(CudaBackend backend) {
        super(backend);
        quantize = new Kernels.Single(dev, "quantized.cu", "int8_quantize");
        linear = new Kernels.Single(dev, "quantized.cu", "int8_linear");
    }

    Tensor int8Linear(Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale) {
        int m = x.size(0), k = x.size(1), n = codes.size(0);
        Tensor xc = contiguous(x), wc = contiguous(codes), sc = contiguous(weightScale), bc = bias == null ? null : contiguous(bias);
        Tensor xq = newTensor(new int[]{m, k}, DType.UINT8), out = newTensor(new int[]{m, n}, DType.FLOAT32);
        long total = (long) m * k;
        if (total > 0) Launch.args().ptr(ptr(xq)).ptr(ptr(xc)).i64(total).f64(1.0 / inputScale).go(dev, quantize.get(), grid(total), BLOCK);
        if (m > 0 && n > 0) {
            Launch.args().ptr(ptr(out)).ptr(ptr(xq)).ptr(ptr(wc)).ptr(ptr(sc)).ptr(bc == null ? 0 : ptr(bc)).i32(bc == null ? 0 : 1)
                    .f64(inputScale).i64(m).i64(n).i64(k).go(dev, linear.get(), (n + 15) / 16, (m + 15) / 16, 1, 256, 0);
        }
        xq.storage().release();
        drop(xc, x);
        drop(wc, codes);
        drop(sc, weightScale);
        if (bc != null) drop(bc, bias);
        return out;
    }
}
