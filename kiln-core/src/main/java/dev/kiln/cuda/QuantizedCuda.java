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
 * for a convolution, read through the input's strides), the codes multiplied on tensor cores by cuBLASLt (int8 in exact
 * int32, FP8 E4M3 in float32) or, for int8 where cuBLASLt takes no problem, by the dp4a kernel; then one pass
 * dequantizes (input scale, per-channel weight scales, bias) into the output, a convolution's channels-last.
 * An int8 convolution with few codes a row (a first layer) runs as one direct kernel instead.
 */
final class QuantizedCuda extends CudaFamily {
    private final Kernels.Single quantizeRows, quantizeIm2col, quantizeFlat, im2colCodes, padCodes, dp4a, dequantizeI32, dequantizeF32, dequantizeTI32, dequantizeTF32, direct;
    /** int8_conv_direct's limits: codes a row (c * kh * kw) and output channels. */
    private static final int DIRECT_K = 32, DIRECT_OUT = 64;
    /** Whether small int8 convolutions take the direct kernel; QuantizedGpuTest turns it off to check them through the product too. */
    static volatile boolean useDirect = true;
    /** Whether products go to cuBLASLt first; QuantizedGpuTest turns it off to check the dp4a path, which the H200 otherwise never takes. */
    static volatile boolean useLt = true;
    /** Each weight's codes padded to (np, kp), made once per codes tensor (layers keep theirs on the device). */
    private final Map<Storage, Padded> padded = new WeakHashMap<>();

    QuantizedCuda(CudaBackend backend) {
        super(backend);
        quantizeRows = new Kernels.Single(dev, "quantized.cu", "quantize_rows");
        quantizeIm2col = new Kernels.Single(dev, "quantized.cu", "quantize_im2col");
        padCodes = new Kernels.Single(dev, "quantized.cu", "pad_codes");
        quantizeFlat = new Kernels.Single(dev, "quantized.cu", "quantize_flat");
        im2colCodes = new Kernels.Single(dev, "quantized.cu", "im2col_codes");
        dp4a = new Kernels.Single(dev, "quantized.cu", "int8_gemm_dp4a");
        dequantizeI32 = new Kernels.Single(dev, "quantized.cu", "dequantize_i32");
        dequantizeF32 = new Kernels.Single(dev, "quantized.cu", "dequantize_f32");
        dequantizeTI32 = new Kernels.Single(dev, "quantized.cu", "dequantize_t_i32");
        dequantizeTF32 = new Kernels.Single(dev, "quantized.cu", "dequantize_t_f32");
        direct = new Kernels.Single(dev, "quantized.cu", "int8_conv_direct");
    }

    private static int pad16(long v) { return (int) ((v + 15) / 16 * 16); }

    Tensor linear(QuantFormat format, Tensor x, Tensor codes, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        int m = x.size(0), k = x.size(1), n = codes.size(0), mp = pad16(m), kp = pad16(k);
        Tensor out = newTensor(new int[]{m, n}, DType.FLOAT32);
        if (m == 0 || n == 0) return out;
        requireInt("quantized linear", (long) mp * Math.max(kp, pad16(n)));
        Tensor xc = contiguous(x), xq = newTensor(new int[]{mp, kp}, DType.UINT8);
        quantize(format, Launch.args().ptr(ptr(xq)).ptr(ptr(xc)).i32(m).i32(k).i32(mp).i32(kp), (long) mp * kp, quantizeRows, inputScale);
        drop(xc, x);
        product(format, out, xq, mp, kp, codes, k, 1, weightScale, bias, inputScale, relu, m, false);
        return out;
    }

    /** The output is channels-last: its rows are the product's rows (positions), so no pass reorders them. */
    Tensor conv2d(QuantFormat format, Tensor x, Tensor codes, Conv2dParams g, Tensor weightScale, Tensor bias, double inputScale, boolean relu) {
        int batch = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), o = codes.size(0), kh = codes.size(2), kw = codes.size(3);
        int oh = g.outH(h, kh), ow = g.outW(w, kw), k = c * kh * kw;
        long rows = (long) batch * oh * ow;
        requireInt("quantized conv2d", Math.max(x.numel(), pad16(rows) * (long) Math.max(pad16(k), pad16(o))));
        int rp = pad16(rows), kp = pad16(k);
        Tensor out = newChannelsLast(new int[]{batch, o, oh, ow}, DType.FLOAT32);
        if (rows == 0 || o == 0) return out;
        Tensor xc = x.isChannelsLast() ? x : contiguous(x);   // read through its strides
        int[] st = xc.strides();
        Tensor oc = codes.reshape(o, -1);
        if (format == QuantFormat.INT8 && k <= DIRECT_K && o <= DIRECT_OUT && useDirect) {
            Tensor wp = paddedCodes(oc, pad16(o), kp, c, kh * kw);
            Tensor sc = contiguous(weightScale), bc = bias == null ? null : contiguous(bias);
            float scale = (float) inputScale;
            Launch.args().ptr(ptr(out)).ptr(ptr(xc)).ptr(ptr(wp)).ints(batch, c, h, w, kh, kw, oh, ow, g.strideH(), g.strideW(),
                    g.padH(), g.padW(), g.dilationH(), g.dilationW(), st[0], st[1], st[2], st[3]).i32(kp).i32(o)
                    .ptr(ptr(sc)).ptr(bc == null ? 0 : ptr(bc)).i32(bc == null ? 0 : 1).i32(relu ? 1 : 0).f64(1.0 / scale).f64(scale)
                    .go(dev, direct.get(), grid(rows * (o % 4 == 0 ? o / 4 : o)), BLOCK);
            drop(xc, x);
            drop(sc, weightScale);
            if (bc != null) drop(bc, bias);
            return out;
        }
        Tensor xq = newTensor(new int[]{rp, kp}, DType.UINT8);
        int[] geo = {batch, c, h, w, kh, kw, oh, ow, g.strideH(), g.strideW(), g.padH(), g.padW(), g.dilationH(), g.dilationW(), st[0], st[1], st[2], st[3]};
        if (c % 16 == 0 && xc.isChannelsLast() && ptr(xc) % 16 == 0) {   // quantized once, then copied in 16-byte pieces
            Tensor xcodes = newTensor(new int[]{(int) xc.numel()}, DType.UINT8);
            quantize(format, Launch.args().ptr(ptr(xcodes)).ptr(ptr(xc)).i32((int) (xc.numel() / 16)), xc.numel(), quantizeFlat, inputScale);
            Launch.args().ptr(ptr(xq)).ptr(ptr(xcodes)).ints(geo).i32(rp).i32(kp).go(dev, im2colCodes.get(), grid((long) rp * kp / 16), BLOCK);
            xcodes.storage().release();
        } else {
            quantize(format, Launch.args().ptr(ptr(xq)).ptr(ptr(xc)).ints(geo).i32(rp).i32(kp), (long) rp * kp, quantizeIm2col, inputScale);
        }
        drop(xc, x);
        product(format, out, xq, rp, kp, oc, c, kh * kw, weightScale, bias, inputScale, relu, (int) rows, true);
        return out;
    }

    /** The kernels index in 32 bits (several times cheaper divisions than 64): every padded buffer stays under 2^31 elements. */
    private static void requireInt(String op, long elements) {
        if (elements > Integer.MAX_VALUE) throw new IllegalArgumentException(op + ": " + elements + " elements in one buffer (at most 2^31 - 1); use a smaller batch");
    }

    /** The scale is a float32 (as checkpoints store it and the CPU's Int8Gemm.quantize takes it), 1/scale a double of it. */
    private void quantize(QuantFormat format, Launch args, long codes, Kernels.Single kernel, double inputScale) {
        float scale = (float) inputScale;
        args.i32(format == QuantFormat.FP8_E4M3 ? 1 : 0).f64(1.0 / scale).f64(scale).go(dev, kernel.get(), grid(codes / 16), BLOCK);
    }

    /**
     * out (rows, n) = dequantize(xq · codesᵀ): xq (rp, kp) padded codes of {@code rows} real rows, codes (n, k) whose
     * columns are {@code c} channels of {@code taps} kernel taps each (k and 1 for a linear layer). {@code transposed}
     * (a convolution's few channels and many rows) makes the product as (n, rows), for which cuBLASLt picks tiles that
     * fit (measured 34 against 55 us for 147k x 64 x 288 on an H200), and dequantizes it through shared-memory tiles.
     * The product runs on the padded problem; padding adds zeros. {@code relu}: a following ReLU folded into the
     * dequantizing pass.
     */
    private void product(QuantFormat format, Tensor out, Tensor xq, int rp, int kp, Tensor codes, int c, int taps, Tensor weightScale,
                         Tensor bias, double inputScale, boolean relu, int rows, boolean transposed) {
        int n = codes.size(0), np = pad16(n);
        Tensor wp = paddedCodes(codes, np, kp, c, taps);
        Tensor acc = newTensor(new int[]{rp, np}, format == QuantFormat.INT8 ? DType.INT32 : DType.FLOAT32);
        // row-major acc (rp, np) = xq · wpᵀ is column-major (np x rp) = Aᵀ·B with A = wp, B = xq read column-major as (kp x np),
        // (kp x rp); its transpose (np, rp) row-major swaps A and B
        boolean lt = useLt && (transposed ? Blas.tryLtQuantized(dev, format, rp, np, kp, ptr(xq), ptr(wp), ptr(acc))
                : Blas.tryLtQuantized(dev, format, np, rp, kp, ptr(wp), ptr(xq), ptr(acc)));
        if (!lt) {
            if (format != QuantFormat.INT8) {
                throw new UnsupportedOperationException("fp8 products need cuBLASLt's FP8 tensor-core kernels (compute capability 8.9 or later)"
                        + " and got none for " + rp + "x" + np + "x" + kp);
            }
            Launch.args().ptr(ptr(acc)).ptr(ptr(xq)).ptr(ptr(wp)).i64(rp).i64(np).i64(kp).go(dev, dp4a.get(), rp / 16, np / 16, 1, 256, 0);
            transposed = false;
        }
        xq.storage().release();
        Tensor sc = contiguous(weightScale), bc = bias == null ? null : contiguous(bias);
        Launch args = Launch.args().ptr(ptr(out)).ptr(ptr(acc)).i32(transposed ? rp : np).ptr(ptr(sc)).ptr(bc == null ? 0 : ptr(bc))
                .i32(bc == null ? 0 : 1).i32(relu ? 1 : 0).f64((float) inputScale).i32(rows).i32(n);
        boolean int8 = format == QuantFormat.INT8;
        if (transposed) {
            args.go(dev, (int8 ? dequantizeTI32 : dequantizeTF32).get(), (rows + 31) / 32, (n + 31) / 32, 1, 256, 0);
        } else {
            args.go(dev, (int8 ? dequantizeI32 : dequantizeF32).get(), grid((long) rows * n), BLOCK);
        }
        acc.storage().release();
        if (!cacheable(codes)) wp.storage().release();
        drop(sc, weightScale);
        if (bc != null) drop(bc, bias);
    }

    /** A whole contiguous codes tensor (a layer's) gets its padded copy kept; any other is padded per call. */
    private static boolean cacheable(Tensor codes) { return codes.isContiguous() && codes.offset() == 0; }

    private Tensor paddedCodes(Tensor codes, int np, int kp, int c, int taps) {
        boolean whole = cacheable(codes);
        synchronized (padded) {
            Padded cached = whole ? padded.get(codes.storage()) : null;
            if (cached != null && cached.codes.size(0) == np && cached.codes.size(1) == kp && cached.c == c && cached.taps == taps) return cached.codes;
            Tensor cc = contiguous(codes), wp = newTensor(new int[]{np, kp}, DType.UINT8);
            int n = codes.size(0), k = codes.size(1);
            Launch.args().ptr(ptr(wp)).ptr(ptr(cc)).i32(n).i32(k).i32(np).i32(kp).i32(c).i32(taps).go(dev, padCodes.get(), grid((long) np * kp), BLOCK);
            drop(cc, codes);
            if (whole) padded.put(codes.storage(), new Padded(wp.keep(), c, taps));
            return wp;
        }
    }

    /** A weight's padded codes and the column order they were made in (c channels of taps taps). */
    private record Padded(Tensor codes, int c, int taps) {}
}
