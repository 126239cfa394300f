package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Storage;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.QuantFormat;

import java.util.Map;
import java.util.WeakHashMap;

/**
 * The quantized products on CUDA (quantized.cu): the input quantized into codes padded to multiples of 16 (im2col rows
 * for a convolution), the codes multiplied on tensor cores by cuBLASLt (int8 in exact int32, FP8 E4M3 in float32) or,
 * for int8 where cuBLASLt takes no problem, by the dp4a kernel; then one pass dequantizes (input scale, per-channel
 * weight scales, bias) into the output, NCHW for a convolution.
 */
final class QuantizedCuda extends CudaFamily {
    private final Kernels.Single quantizeRows, quantizeIm2col, padCodes, dp4a, dequantizeI32, dequantizeF32;
    /** Whether products go to cuBLASLt first; QuantizedGpuTest turns it off to check the dp4a path, which the H200 otherwise never takes. */
    static volatile boolean useLt = true;
    /** Each weight's codes padded to (np, kp), made once per codes tensor (layers keep theirs on the device). */
    private final Map<Storage, Tensor> padded = new WeakHashMap<>();

    QuantizedCuda(CudaBackend backend) {
        super(backend);
        quantizeRows = new Kernels.Single(dev, "quantized.cu", "quantize_rows");
        quantizeIm2col = new Kernels.Single(dev, "quantized.cu", "quantize_im2col");
        padCodes = new Kernels.Single(dev, "quantized.cu", "pad_codes");
        dp4a = new Kernels.Single(dev, "quantized.cu", "int8_gemm_dp4a");
        dequantizeI32 = new Kernels.Single(dev, "quantized.cu", "dequantize_i32");
        dequantizeF32 = new Kernels.Single(dev, "quantized.cu", "dequantize_f32");
    }

    private static int pad16(long v) { return (int) ((v + 15) / 16 * 16); }

    Tensor linear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale) {
        int m = x.size(0), k = x.size(1), n = codes.size(0), mp = pad16(m), kp = pad16(k);
        Tensor out = newTensor(new int[]{m, n}, DType.FLOAT32);
        if (m == 0 || n == 0) return out;
        requireInt("quantized linear", (long) mp * Math.max(kp, pad16(n)));
        Tensor xc = contiguous(x), xq = newTensor(new int[]{mp, kp}, DType.UINT8);
        quantize(format, Launch.args().ptr(ptr(xq)).ptr(ptr(xc)).i32(m).i32(k).i32(mp).i32(kp), (long) mp * kp, quantizeRows, inputScale);
        drop(xc, x);
        product(format, out, xq, mp, kp, codes, weightScale, bias, inputScale, m, 1);
        return out;
    }

    Tensor conv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams g, Tensor weightScale, Tensor bias, double inputScale) {
        int batch = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = codes.size(0), kh = codes.size(2), kw = codes.size(3);
        int oh = g.outH(h, kh), ow = g.outW(w, kw);
        long rows = (long) batch * oh * ow;
        requireInt("quantized conv2d", pad16(rows) * (long) Math.max(pad16((long) c * kh * kw), pad16(o)));
        int rp = pad16(rows), kp = pad16((long) c * kh * kw);
        Tensor out = newTensor(new int[]{batch, o, oh, ow}, DType.FLOAT32);
        if (rows == 0 || o == 0) return out;
        Tensor xc = contiguous(x), xq = newTensor(new int[]{rp, kp}, DType.UINT8);
        quantize(format, Launch.args().ptr(ptr(xq)).ptr(ptr(xc)).ints(batch, c, h, w, kh, kw, oh, ow, g.strideH(), g.strideW(),
                g.padH(), g.padW(), g.dilationH(), g.dilationW()).i32(rp).i32(kp), (long) rp * kp, quantizeIm2col, inputScale);
        drop(xc, x);
        product(format, out, xq, rp, kp, codes.reshape(o, -1), weightScale, bias, inputScale, (int) rows, oh * ow);
        return out;
    }

    /** The kernels index in 32 bits (several times cheaper divisions than 64): every padded buffer stays under 2^31 elements. */
    private static void requireInt(String op, long elements) {
        if (elements > Integer.MAX_VALUE) throw new IllegalArgumentException(op + ": " + elements + " elements in one buffer (at most 2^31 - 1); use a smaller batch");
    }

    /** The scale is a float32 (as checkpoints store it and the CPU's Int8Gemm.quantize takes it), 1/scale a double of it. */
    private void quantize(QuantFormat format, Launch args, long total, Kernels.Single kernel, double inputScale) {
        float scale = (float) inputScale;
        args.i32(format == QuantFormat.FP8_E4M3 ? 1 : 0).f64(1.0 / scale).f64(scale).go(dev, kernel.get(), grid(total), BLOCK);
    }

    /**
     * out = dequantize(xq · codesᵀ): xq (rp, kp) padded codes of {@code rows} real rows, codes (n, k); {@code p} output
     * positions per image (1 for a linear layer). The product runs on the padded problem; padding adds zeros.
     */
    private void product(QuantFormat format, Tensor out, Tensor xq, int rp, int kp, Tensor codes, Tensor weightScale, Tensor bias,
                         double inputScale, int rows, int p) {
        int n = codes.size(0), np = pad16(n);
        Tensor wp = paddedCodes(codes, np, kp);
        Tensor acc = newTensor(new int[]{rp, np}, format == QuantFormat.INT8 ? DType.INT32 : DType.FLOAT32);
        // row-major acc (rp, np) = xq · wpᵀ is column-major (np x rp) = Aᵀ·B with A = wp, B = xq read column-major as (kp x np), (kp x rp)
        if (!(useLt && Blas.tryLtQuantized(dev, format, np, rp, kp, ptr(wp), ptr(xq), ptr(acc)))) {
            if (format != QuantFormat.INT8) {
                throw new UnsupportedOperationException("fp8 products need cuBLASLt's FP8 tensor-core kernels (compute capability 8.9 or later)"
                        + " and got none for " + rp + "x" + np + "x" + kp);
            }
            Launch.args().ptr(ptr(acc)).ptr(ptr(xq)).ptr(ptr(wp)).i64(rp).i64(np).i64(kp).go(dev, dp4a.get(), rp / 16, np / 16, 1, 256, 0);
        }
        xq.storage().release();
        Tensor sc = contiguous(weightScale), bc = bias == null ? null : contiguous(bias);
        long total = (long) rows * n;
        Launch.args().ptr(ptr(out)).ptr(ptr(acc)).i32(np).ptr(ptr(sc)).ptr(bc == null ? 0 : ptr(bc)).i32(bc == null ? 0 : 1)
                .f64((float) inputScale).i32(rows).i32(n).i32(p)
                .go(dev, (format == QuantFormat.INT8 ? dequantizeI32 : dequantizeF32).get(), grid(total), BLOCK);
        acc.storage().release();
        if (!cacheable(codes)) wp.storage().release();
        drop(sc, weightScale);
        if (bc != null) drop(bc, bias);
    }

    /** A whole contiguous codes tensor (a layer's) gets its padded copy kept; any other is padded per call. */
    private static boolean cacheable(Tensor codes) { return codes.isContiguous() && codes.offset() == 0; }

    private Tensor paddedCodes(Tensor codes, int np, int kp) {
        boolean whole = cacheable(codes);
        synchronized (padded) {
            Tensor cached = whole ? padded.get(codes.storage()) : null;
            if (cached != null && cached.size(0) == np && cached.size(1) == kp) return cached;
            Tensor cc = contiguous(codes), wp = newTensor(new int[]{np, kp}, DType.UINT8);
            int n = codes.size(0), k = codes.size(1);
            Launch.args().ptr(ptr(wp)).ptr(ptr(cc)).i64(n).i64(k).i64(np).i64(kp).go(dev, padCodes.get(), grid((long) np * kp), BLOCK);
            drop(cc, codes);
            if (whole) padded.put(codes.storage(), wp.keep());
            return wp;
        }
    }
}
