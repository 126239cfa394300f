package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;
import dev.kiln.backend.Pool2dParams;

import static dev.kiln.Backends.get;

/** 2-D pooling over x (N, C, H, W): max, average and adaptive average. */
public final class Pooling {
    private Pooling() {}

    public static Tensor maxPool2d(Tensor x, Pool2dParams p) {
        check("max_pool2d", x, p);
        Backend be = get(x.device());
        if (!Autograd.records(x)) return be.maxPool2dValues(x, p);   // inference: no indices to make
        Tensor[] outAndIndices = be.maxPool2d(x, p);
        Tensor indices = outAndIndices[1];
        int[] xShape = x.shape();
        return Autograd.record("max_pool2d", outAndIndices[0], g -> new Tensor[]{be.maxPool2dBackward(g, indices, xShape, p)}, x);
    }

    public static Tensor avgPool2d(Tensor x, Pool2dParams p) {
        check("avg_pool2d", x, p);
        Backend be = get(x.device());
        Tensor out = be.avgPool2d(x, p);
        int[] xShape = x.shape();
        return Autograd.record("avg_pool2d", out, g -> new Tensor[]{be.avgPool2dBackward(g, xShape, p)}, x);
    }

    /**
     * Average over PyTorch's adaptive bins: output cell i covers rows floor(i*H/outH) .. ceil((i+1)*H/outH).
     * When the sizes divide, that is a plain average pool; otherwise the bins overlap or vary in size, and the
     * result is P_h x P_w^T with per-bin averaging matrices built from the shapes alone (so it runs on any device).
     */
    public static Tensor adaptiveAvgPool2d(Tensor x, int outH, int outW) {
        if (x.dim() != 4) {
            throw new IllegalArgumentException("adaptive_avg_pool2d: expected input of rank 4 (N, C, H, W), got shape " + Shape.str(x.shape()));
        }
        Checks.floating("adaptive_avg_pool2d", x);
        if (outH < 1 || outW < 1) {
            throw new IllegalArgumentException("adaptive_avg_pool2d: output size must be positive, got " + outH + "x" + outW);
        }
        int h = x.shape()[2], w = x.shape()[3];
        if (h % outH == 0 && w % outW == 0) {
            int kh = h / outH, kw = w / outW;
            return avgPool2d(x, new Pool2dParams(kh, kw, kh, kw, 0, 0, true));
        }
        Tensor ph = binMatrix(outH, h, x.dtype(), x);             // (outH, H)
        Tensor pwT = binMatrix(outW, w, x.dtype(), x).t();         // (W, outW)
        return ph.matmul(x.matmul(pwT));
    }

    /** (out, in) matrix whose row i averages PyTorch's adaptive bin i of an axis of length in. */
    private static Tensor binMatrix(int out, int in, DType dtype, Tensor like) {
        double[] m = new double[out * in];
        for (int i = 0; i < out; i++) {
            int start = Math.floorDiv(i * in, out);
            int end = -Math.floorDiv(-(i + 1) * in, out); // ceil
            for (int j = start; j < end; j++) m[i * in + j] = 1.0 / (end - start);
        }
        return Tensor.of(m, out, in).to(dtype).to(like.device());
    }

    static void check(String op, Tensor x, Pool2dParams p) {
        if (x.dim() != 4) {
            throw new IllegalArgumentException(op + ": expected input of rank 4 (N, C, H, W), got shape " + Shape.str(x.shape()));
        }
        Checks.floating(op, x);
        int h = x.shape()[2], w = x.shape()[3];
        if (p.outH(h) < 1 || p.outW(w) < 1) {
            throw new IllegalArgumentException(op + ": kernel " + p.kernelH() + "x" + p.kernelW() + " is larger than the padded input "
                    + (h + 2 * p.padH()) + "x" + (w + 2 * p.padW()) + " (input " + Shape.str(x.shape()) + ")");
        }
    }
}
