package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.UnaryOp;

import java.util.Arrays;

import static dev.kiln.Backends.get;

/** The Matmul family: matrix products (1-D, 2-D and batched with broadcast batch dimensions, as torch.matmul) and linear. */
public final class Matmul {
    private Matmul() {}

    public static Tensor matmul(Tensor a, Tensor b) {
        Checks.sameDevice("matmul", a, b);
        a = Autocast.cast(AutocastPolicy.MATMUL, a);
        b = Autocast.cast(AutocastPolicy.MATMUL, b);
        if (a.dim() == 0 || b.dim() == 0) {
            throw new IllegalArgumentException("matmul: both arguments need at least 1 dimension, got shapes "
                    + Shape.str(a.shape()) + " and " + Shape.str(b.shape()));
        }
        if (a.dim() == 1 && b.dim() == 1) return dot(a, b);
        if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
        if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
        DType t = DType.promote(a.dtype(), b.dtype());
        if (!t.isFloating()) throw new IllegalArgumentException("matmul: expected floating tensors, got " + a.dtype() + " and " + b.dtype());
        if (a.dtype() != t) a = a.to(t);
        if (b.dtype() != t) b = b.to(t);
        int[] as = a.shape(), bs = b.shape();
        int m = as[as.length - 2], k = as[as.length - 1], k2 = bs[bs.length - 2], n = bs[bs.length - 1];
        if (k != k2) {
            throw new IllegalArgumentException("matmul: mat1 and mat2 shapes cannot be multiplied ("
                    + m + "x" + k + " and " + k2 + "x" + n + ")" + (as.length > 2 || bs.length > 2
                    ? " (full shapes " + Shape.str(as) + " and " + Shape.str(bs) + ")" : ""));
        }
        // [..., M, K] x [K, N]: fold the batch into M, one GEMM instead of a batch of small ones
        if (b.dim() == 2 && a.dim() > 2) {
            int[] outShape = Arrays.copyOf(as, as.length);
            outShape[as.length - 1] = n;
            return matmul2d(a.reshape(-1, k), b).reshape(outShape);
        }
        if (a.dim() == 2 && b.dim() == 2) return matmul2d(a, b);
        int[] batch = Shape.broadcast(Arrays.copyOf(as, as.length - 2), Arrays.copyOf(bs, bs.length - 2));
        if (batch == null) {
            throw new IllegalArgumentException("matmul: batch dimensions of " + Shape.str(as) + " and " + Shape.str(bs) + " cannot be broadcast");
        }
        int bsz = (int) Shape.numel(batch);
        Tensor a3 = a.expand(concat(batch, m, k)).reshape(bsz, m, k);
        Tensor b3 = b.expand(concat(batch, k, n)).reshape(bsz, k, n);
        return bmm(a3, b3).reshape(concat(batch, m, n));
    }

    /** 1-D x 1-D: the inner product, a scalar (the vector-vector case of torch.matmul). */
    private static Tensor dot(Tensor a, Tensor b) {
        if (a.shape()[0] != b.shape()[0]) {
            throw new IllegalArgumentException("matmul: 1-D tensors of different lengths cannot be multiplied ("
                    + a.shape()[0] + " and " + b.shape()[0] + ")");
        }
        return matmul(a.unsqueeze(0), b.unsqueeze(1)).reshape();
    }

    /**
     * x (..., in) times w (out, in) transposed, plus b (out) when not null: one backend call over all leading dims, so a
     * backend can add the bias in the GEMM's epilogue, and a backward that takes the weight and bias gradients together.
     */
    public static Tensor linear(Tensor x, Tensor w, Tensor b) { return linear(x, w, b, null); }

    /**
     * {@code residual + linear(x, w, b)} as one op when residual is not null (of the output's shape): the sum is the only
     * new tensor (a residual stream's separate add keeps the product's output alive as well), and a backend adds the
     * residual in the GEMM's epilogue. Under autocast the product runs in the low precision and the sum in the residual's
     * dtype (a float32 residual stream stays float32, as PyTorch's add of the two would); the residual's gradient is the
     * output's.
     */
    public static Tensor linear(Tensor x, Tensor w, Tensor b, Tensor residual) {
        int[] outShape = checkLinear(x, w, b, residual);
        Tensor w0 = w, b0 = b;
        // under autocast the bias is cast too, so the sum stays in the low precision (PyTorch's addmm does the same)
        x = Autocast.cast(AutocastPolicy.LINEAR, x);
        DType t = x.dtype();
        boolean widening = residual != null && residual.dtype() != t;   // a 16-bit product onto a float32 residual stream
        Tensor wl = castUnrecorded(w), bl = widening ? b : castUnrecorded(b);
        if (!fusable(t, wl, bl, residual)) {   // mixed dtypes: matmul promotes
            Tensor y = x.matmul(Autocast.cast(AutocastPolicy.LINEAR, w).t());
            y = b == null ? y : y.add(widening ? b : Autocast.cast(AutocastPolicy.LINEAR, b));
            return residual == null ? y : residual.add(y);
        }
        Tensor x2 = x.reshape(-1, w.shape()[1]);
        Tensor r2 = residual == null ? null : residual.reshape(-1, w.shape()[0]);
        Backend be = get(x.device());
        Tensor y = be.linear(x2, wl, bl, r2);
        return Autograd.record(residual == null ? "linear" : "linear_residual", y, out -> {
            Tensor g = out.dtype() == t ? out : out.to(t);   // the product's gradient in its own precision
            Tensor[] wb = parameterGrads(be, g, x2, w0, b0);
            return new Tensor[]{x2.requiresGrad() ? g.matmul(wl) : null, wb[0], wb[1], r2 != null && r2.requiresGrad() ? out : null};
        }, x2, w0, b0, r2).reshape(outShape);
    }

    /**
     * A parameter cast as autocast's linear rule asks, without a cast node: linear records the parameter itself, and its
     * backward gives it a gradient of its own dtype straight from the product (see {@link #parameterGrads}).
     */
    private static Tensor castUnrecorded(Tensor p) {
        if (p == null || Autocast.castType(AutocastPolicy.LINEAR, p) == p.dtype()) return p;
        return Tensor.noGrad(() -> Autocast.cast(AutocastPolicy.LINEAR, p));
    }

    /**
     * linear's weight and bias gradients for the parameters w and b (either may be null or need none) from the product's
     * gradient g and input x: in the parameters' dtype (float32 under autocast, from the 16-bit product without a cast
     * pass) and, where the engine grants it, written straight into the parameter's gradient buffer.
     */
    private static Tensor[] parameterGrads(Backend be, Tensor g, Tensor x, Tensor w, Tensor b) {
        boolean wg = w.requiresGrad(), bg = b != null && b.requiresGrad();
        if (!wg) return new Tensor[]{null, bg ? g.sum(0, false) : null};
        boolean withBias = bg && b.dtype() == w.dtype();   // one product writes both only in one dtype
        Tensor dw = Autograd.gradientOutput(w), db = withBias ? Autograd.gradientOutput(b) : null;
        be.linearBackwardWeight(g, x, dw, db);
        return new Tensor[]{dw, withBias ? db : bg ? g.sum(0, false) : null};
    }

    /** linear's argument checks; the output's shape. */
    private static int[] checkLinear(Tensor x, Tensor w, Tensor b, Tensor residual) {
        Checks.sameDevice("linear", x, w);
        if (w.dim() != 2) throw new IllegalArgumentException("linear: expected weight of rank 2 (out, in), got shape " + Shape.str(w.shape()));
        if (x.dim() < 1 || x.size(-1) != w.shape()[1]) {
            throw new IllegalArgumentException("linear: input " + Shape.str(x.shape()) + " has " + (x.dim() < 1 ? 0 : x.size(-1))
                    + " features but weight " + Shape.str(w.shape()) + " expects " + w.shape()[1]);
        }
        if (b != null) {
            Checks.sameDevice("linear", x, b);
            if (b.dim() != 1 || b.shape()[0] != w.shape()[0]) {
                throw new IllegalArgumentException("linear: expected bias of shape [" + w.shape()[0] + "], got " + Shape.str(b.shape()));
            }
        }
        int[] outShape = x.shape().clone();
        outShape[outShape.length - 1] = w.shape()[0];
        if (residual != null) {
            Checks.sameDevice("linear", x, residual);
            if (!Arrays.equals(residual.shape(), outShape)) {
                throw new IllegalArgumentException("linear: residual of shape " + Shape.str(residual.shape()) + " does not match the output's "
                        + Shape.str(outShape));
            }
        }
        return outShape;
    }

    /**
     * Whether the backend's linear takes operands already cast for autocast: x and w of one floating dtype t, the
     * residual (if any) in t or float32 beside a 16-bit t, the bias (if any) in the output's dtype.
     */
    private static boolean fusable(DType t, Tensor w, Tensor b, Tensor residual) {
        boolean widening = residual != null && residual.dtype() != t;
        boolean residualOk = residual == null || !widening || residual.dtype() == DType.FLOAT32 && (t == DType.BFLOAT16 || t == DType.FLOAT16);
        return t.isFloating() && w.dtype() == t && residualOk && (b == null || b.dtype() == (widening ? residual.dtype() : t));
    }

    /**
     * {@code linear(activation(h), w, b, residual)} as one op that keeps h alone for backward and computes
     * activation(h) again there (one elementwise pass) instead of keeping it: a transformer MLP's two widest tensors
     * (4d a token each) are then kept once. activation is GELU, GELU_TANH, SILU or RELU; residual may be null.
     */
    public static Tensor linearAfter(UnaryOp activation, Tensor h, Tensor w, Tensor b, Tensor residual) {
        BinaryOp backward = switch (activation) {
            case GELU -> BinaryOp.GELU_BACKWARD;
            case GELU_TANH -> BinaryOp.GELU_TANH_BACKWARD;
            case SILU -> BinaryOp.SILU_BACKWARD;
            case RELU -> BinaryOp.RELU_BACKWARD;
            default -> throw new IllegalArgumentException("linearAfter: activation must be GELU, GELU_TANH, SILU or RELU, got " + activation);
        };
        int[] outShape = checkLinear(h, w, b, residual);
        Tensor hl = Autocast.cast(AutocastPolicy.LINEAR, h), wl = castUnrecorded(w);
        DType t = hl.dtype();
        Tensor bl = residual != null && residual.dtype() != t ? b : castUnrecorded(b);
        if (!fusable(t, wl, bl, residual)) return linear(Elementwise.unary(activation, h), w, b, residual);
        Backend be = get(h.device());
        Tensor h2 = hl.reshape(-1, w.shape()[1]);
        Tensor r2 = residual == null ? null : residual.reshape(-1, w.shape()[0]);
        Tensor a = be.unary(activation, h2);
        Tensor y = be.linear(a, wl, bl, r2);
        a.storage().release();   // the stream runs the product before any later use of this memory
        return Autograd.record("linear_after_" + activation.name().toLowerCase(), y, out -> {
            Tensor g = out.dtype() == t ? out : out.to(t);
            Tensor recomputed = be.unary(activation, h2);
            Tensor[] wb = parameterGrads(be, g, recomputed, w, b);
            recomputed.storage().release();   // each temporary as soon as it is spent: three at once would be the step's peak
            Tensor dh = h2.requiresGrad() ? be.linearAfterBackwardInput(backward, g, wl, h2) : null;
            return new Tensor[]{dh, wb[0], wb[1], r2 != null && r2.requiresGrad() ? out : null};
        }, h2, w, b, r2).reshape(outShape);
    }

    private static int[] concat(int[] batch, int r, int c) {
        int[] s = Arrays.copyOf(batch, batch.length + 2);
        s[batch.length] = r;
        s[batch.length + 1] = c;
        return s;
    }

    private static Tensor matmul2d(Tensor a, Tensor b) {
        int m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
        Tensor out3 = get(a.device()).matmul(Views.expandRaw(a, new int[]{1, m, k}), Views.expandRaw(b, new int[]{1, k, n}));
        Tensor out = new Tensor(out3.storage(), new int[]{m, n});
        return Autograd.record("mm", out, g -> new Tensor[]{
                a.requiresGrad() ? g.matmul(b.t()) : null,
                b.requiresGrad() ? weightGrad(a, b, g) : null}, a, b);
    }

    /**
     * aᵀ·g, laid out like b. For a weight used as w.t() (column-major), computing (gᵀ·a)ᵀ instead gives w a
     * gradient that is contiguous in w's own layout: the engine can hand it over without a copy.
     */
    private static Tensor weightGrad(Tensor a, Tensor b, Tensor g) {
        int[] st = b.strides();
        boolean columnMajor = st[0] == 1 && st[1] == b.shape()[0] && b.shape()[0] > 1;
        return columnMajor ? g.t().matmul(a).t() : a.t().matmul(g);
    }

    /** (B, M, K) x (B, K, N). */
    private static Tensor bmm(Tensor a, Tensor b) {
        Tensor out = get(a.device()).matmul(a, b);
        return Autograd.record("bmm", out, g -> new Tensor[]{
                a.requiresGrad() ? bmm(g, b.transpose(1, 2)) : null,
                b.requiresGrad() ? bmm(a.transpose(1, 2), g) : null}, a, b);
    }
}
