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

/** Elementwise ops and their gradients: unary maths and activations, binary arithmetic, comparisons, where, cast. */
public final class Elementwise {
    private Elementwise() {}

    private static String name(Enum<?> op) { return op.name().toLowerCase(); }

    // ---------------------------------------------------------------- unary

    public static Tensor unary(UnaryOp op, Tensor x) {
        if (needsFloat(op) && !x.dtype().isFloating()) x = cast(x, DType.FLOAT32);
        AutocastPolicy rule = autocastRule(op);
        if (rule != null) x = Autocast.cast(rule, x);
        Backend be = get(x.device());
        Tensor out = be.unary(op, x);
        Tensor in = x;
        return Autograd.record(name(op), out, g -> new Tensor[]{unaryGrad(op, in, out, g)}, x);
    }

    private static boolean needsFloat(UnaryOp op) {
        return switch (op) {
            case EXP, LOG, SQRT, RECIPROCAL, SIGMOID, TANH, GELU, SILU, GELU_TANH, SIN, COS -> true;
            case NEG, ABS, SIGN, RELU, STEP, NOT -> false;
        };
    }

    /** The autocast rule of a unary op, or null when it runs in its input's dtype. */
    private static AutocastPolicy autocastRule(UnaryOp op) {
        return switch (op) {
            case EXP -> AutocastPolicy.EXP;
            case LOG -> AutocastPolicy.LOG;
            case RECIPROCAL -> AutocastPolicy.RECIPROCAL;
            case NEG, ABS, SIGN, RELU, STEP, NOT, SQRT, SIGMOID, TANH, GELU, SILU, GELU_TANH, SIN, COS -> null;
        };
    }

    /** d op(x) / dx times g, written with ops so it runs on x's device. */
    private static Tensor unaryGrad(UnaryOp op, Tensor x, Tensor y, Tensor g) {
        return switch (op) {
            case NEG -> g.neg();
            case EXP -> g.mul(y);
            case LOG -> g.div(x);
            case SQRT -> g.mul(0.5).div(y);
            case ABS -> g.mul(unary(UnaryOp.SIGN, x));
            case RECIPROCAL -> g.mul(y).mul(y).neg();
            case RELU -> binary(BinaryOp.RELU_BACKWARD, g, x);
            case SIGMOID -> g.mul(y.mul(y.rsub(1)));
            case TANH -> g.mul(y.mul(y).rsub(1));
            case GELU -> binary(BinaryOp.GELU_BACKWARD, g, x);
            case SILU -> binary(BinaryOp.SILU_BACKWARD, g, x);
            case GELU_TANH -> binary(BinaryOp.GELU_TANH_BACKWARD, g, x);
            case SIN -> g.mul(unary(UnaryOp.COS, x));
            case COS -> g.mul(unary(UnaryOp.SIN, x)).neg();
            case SIGN, STEP, NOT -> zerosLike(x);
        };
    }

    /** {@code x > 0 ? x : slope * x} (PyTorch's leaky_relu: NaN stays NaN, the gradient at 0 is slope). */
    public static Tensor leakyRelu(Tensor x, double slope) {
        return where(x.gt(0), x, x.mul(slope));
    }

    static Tensor zerosLike(Tensor x) { return Tensor.zeros(x.shape(), x.dtype(), x.device()); }

    // ---------------------------------------------------------------- binary

    public static Tensor binary(BinaryOp op, Tensor a, Tensor b) {
        String opName = name(op);
        Checks.sameDevice(opName, a, b);
        if (op == BinaryOp.POW) {
            a = Autocast.cast(AutocastPolicy.POW, a);
            b = Autocast.cast(AutocastPolicy.POW, b);
        }
        DType t = DType.promote(a.dtype(), b.dtype());
        if (op == BinaryOp.DIV && !t.isFloating()) t = DType.FLOAT32;
        if (a.dtype() != t) a = cast(a, t);
        if (b.dtype() != t) b = cast(b, t);
        int[] shape = Checks.broadcast(opName, a, b);
        Tensor out = get(a.device()).binary(op, Views.expandRaw(a, shape), Views.expandRaw(b, shape));
        if (op.isComparison() || op == BinaryOp.AND || op == BinaryOp.OR) return out;
        Tensor ta = a, tb = b;
        return Autograd.record(opName, out, g -> {
            Tensor[] gs = binaryGrad(op, ta, tb, out, g);
            return new Tensor[]{sumToOrNull(gs[0], ta), sumToOrNull(gs[1], tb)};
        }, a, b);
    }

    private static Tensor sumToOrNull(Tensor g, Tensor like) {
        return g == null || !like.requiresGrad() ? null : g.sumTo(like.shape());
    }

    private static Tensor[] binaryGrad(BinaryOp op, Tensor a, Tensor b, Tensor y, Tensor g) {
        return switch (op) {
            case ADD -> new Tensor[]{g, g};
            case SUB -> new Tensor[]{g, g.neg()};
            case MUL -> new Tensor[]{g.mul(b), g.mul(a)};
            case DIV -> new Tensor[]{g.div(b), b.requiresGrad() ? g.mul(a).div(b.mul(b)).neg() : null};
            case POW -> new Tensor[]{g.mul(b).mul(a.pow(b.sub(1))), b.requiresGrad() ? g.mul(y).mul(a.log()) : null};
            case MAX, MIN -> {
                // ties split the gradient evenly, as PyTorch's maximum/minimum do
                Tensor winA = op == BinaryOp.MAX ? a.gt(b) : a.lt(b);
                Tensor tie = a.eq(b);
                Tensor wa = cast(winA, g.dtype()).add(cast(tie, g.dtype()).mul(0.5));
                yield new Tensor[]{g.mul(wa), g.mul(wa.rsub(1))};
            }
            case EQ, NE, LT, LE, GT, GE, AND, OR, RELU_BACKWARD -> throw new IllegalStateException("not differentiable: " + op);
            case GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD -> throw new UnsupportedOperationException(
                    "second derivatives of gelu and silu are not supported");
        };
    }

    public static Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst) {
        if (op == BinaryOp.POW) a = Autocast.cast(AutocastPolicy.POW, a);
        boolean integral = s == Math.rint(s) && !Double.isInfinite(s);
        boolean arithmetic = !op.isComparison() && op != BinaryOp.AND && op != BinaryOp.OR;
        if (arithmetic && !a.dtype().isFloating() && (!integral || op == BinaryOp.DIV || (op == BinaryOp.POW && s < 0))) {
            a = cast(a, DType.FLOAT32);
        }
        Tensor out = get(a.device()).binaryScalar(op, a, s, scalarFirst);
        if (!arithmetic) return out;
        Tensor x = a;
        return Autograd.record(name(op) + "_scalar", out, g -> new Tensor[]{switch (op) {
            case ADD -> g;
            case SUB -> scalarFirst ? g.neg() : g;
            case MUL -> g.mul(s);
            case DIV -> scalarFirst ? g.mul(-s).div(x.mul(x)) : g.div(s);
            case POW -> scalarFirst ? g.mul(out).mul(Math.log(s)) : g.mul(s).mul(x.pow(s - 1));
            case MAX, MIN -> {
                Tensor win = cast(op == BinaryOp.MAX ? x.gt(s) : x.lt(s), g.dtype());
                Tensor tie = cast(x.eq(s), g.dtype());
                yield g.mul(win.add(tie.mul(0.5)));
            }
            case EQ, NE, LT, LE, GT, GE, AND, OR, RELU_BACKWARD -> throw new IllegalStateException("not differentiable: " + op);
            case GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD -> throw new UnsupportedOperationException(
                    "second derivatives of gelu and silu are not supported");
        }}, a);
    }

    public static Tensor clamp(Tensor x, double min, double max) {
        if (min > max) throw new IllegalArgumentException("clamp: min " + min + " is greater than max " + max);
        Backend be = get(x.device());
        Tensor out = be.binaryScalar(BinaryOp.MIN, be.binaryScalar(BinaryOp.MAX, x, min, false), max, false);
        return Autograd.record("clamp", out, g -> {
            Tensor inside = be.binary(BinaryOp.AND, be.binaryScalar(BinaryOp.GE, x, min, false), be.binaryScalar(BinaryOp.LE, x, max, false));
            return new Tensor[]{g.mul(cast(inside, g.dtype()))};
        }, x);
    }

    // ---------------------------------------------------------------- where, masked fill, cast

    public static Tensor where(Tensor cond, Tensor a, Tensor b) {
        Checks.sameDevice("where", cond, a);
        Checks.sameDevice("where", a, b);
        if (cond.dtype() != DType.BOOL) cond = cast(cond, DType.BOOL);
        DType t = DType.promote(a.dtype(), b.dtype());
        if (a.dtype() != t) a = cast(a, t);
        if (b.dtype() != t) b = cast(b, t);
        int[] shape = Shape.broadcast(Checks.broadcast("where", cond, a), b.shape());
        if (shape == null) {
            throw new IllegalArgumentException("where: shapes " + Shape.str(cond.shape()) + ", " + Shape.str(a.shape())
                    + " and " + Shape.str(b.shape()) + " cannot be broadcast together");
        }
        Tensor c = cond, ta = a, tb = b;
        Tensor out = get(a.device()).where(Views.expandRaw(cond, shape), Views.expandRaw(a, shape), Views.expandRaw(b, shape));
        return Autograd.record("where", out, g -> {
            Tensor zero = Tensor.zeros(new int[0], g.dtype(), g.device());
            return new Tensor[]{
                    ta.requiresGrad() ? where(c, g, zero).sumTo(ta.shape()) : null,
                    tb.requiresGrad() ? where(c, zero, g).sumTo(tb.shape()) : null};
        }, a, b);
    }

    public static Tensor maskedFill(Tensor x, Tensor mask, double value) {
        if (!Arrays.equals(Shape.broadcast(x.shape(), mask.shape()), x.shape())) {
            throw new IllegalArgumentException("masked_fill: mask of shape " + Shape.str(mask.shape())
                    + " does not broadcast to the tensor's shape " + Shape.str(x.shape()));
        }
        return where(mask, Tensor.scalar(value, x.dtype(), x.device()), x);
    }

    public static Tensor cast(Tensor x, DType target) {
        if (x.dtype() == target) return x;
        Tensor out = x.emptyLike(target);   // a channels-last activation stays channels-last
        get(x.device()).copy(out, x);
        if (!target.isFloating() || !x.dtype().isFloating()) return out;
        DType source = x.dtype();
        return Autograd.record("to_" + target.label(), out, g -> {
            // a float32 parameter cast for autocast: its gradient cast straight into its gradient buffer where granted
            Tensor d = Autograd.gradientDestination(x);
            if (d == null) return new Tensor[]{cast(g, source)};
            return new Tensor[]{d.copyFrom(g)};
        }, x);
    }
}
