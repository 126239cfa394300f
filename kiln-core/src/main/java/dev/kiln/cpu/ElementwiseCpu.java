package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.UnaryOp;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;
import static dev.kiln.cpu.CpuStorage.unsetTensor;

/**
 * The CPU kernels of the Elementwise family: fill, copy, unary, binary, binaryScalar, where. float32 has fast paths
 * (Vector API over unit-stride rows); every other dtype goes through the general path, which computes in double via
 * {@link ScalarMath}, the reference for all of them.
 */
final class ElementwiseCpu {
    private ElementwiseCpu() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    // ---------------------------------------------------------------- fill, copy

    static void fill(Tensor out, double v) {
        Object a = arrayOf(out);
        DType t = out.dtype();
        if (t == DType.FLOAT32 && out.isContiguous()) {
            Parallel.fill((float[]) a, out.offset(), out.offset() + (int) out.numel(), (float) v);
            return;
        }
        Rows.forEach(out.shape(), new Tensor[]{out}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
            for (int i = 0; i < n; i++) HostArrays.set(a, t, o0 + i * s0, v);
        });
    }

    /** x converted to dtype t in a new contiguous tensor, or x itself when it already is t. */
    static Tensor cast(Tensor x, DType t) {
        if (x.dtype() == t) return x;
        Tensor out = unsetTensor(x.shape(), t);
        copy(out, x);
        return out;
    }

    static void copy(Tensor dst, Tensor src) {
        Object d = arrayOf(dst), s = arrayOf(src);
        DType dt = dst.dtype(), st = src.dtype();
        if (dt == DType.FLOAT32 && st == DType.FLOAT32) {
            float[] fd = (float[]) d, fs = (float[]) s;
            Rows.forEach(dst.shape(), new Tensor[]{dst, src}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
                if (s0 == 1 && s1 == 1) System.arraycopy(fs, o1, fd, o0, n);
                else for (int i = 0; i < n; i++) fd[o0 + i * s0] = fs[o1 + i * s1];
            });
            return;
        }
        if (dt == st && dt.byteSize() == 8 && !dt.isFloating() || dt == st && dt == DType.INT32) {
            Rows.forEach(dst.shape(), new Tensor[]{dst, src}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
                if (s0 == 1 && s1 == 1) System.arraycopy(s, o1, d, o0, n);
                else for (int i = 0; i < n; i++) java.lang.reflect.Array.set(d, o0 + i * s0, java.lang.reflect.Array.get(s, o1 + i * s1));
            });
            return;
        }
        Rows.forEach(dst.shape(), new Tensor[]{dst, src}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
            for (int i = 0; i < n; i++) HostArrays.set(d, dt, o0 + i * s0, HostArrays.get(s, st, o1 + i * s1));
        });
    }

    // ---------------------------------------------------------------- unary

    static Tensor unary(UnaryOp op, Tensor x) {
        DType t = x.dtype();
        Tensor out = unsetTensor(x.shape(), t);
        Object o = arrayOf(out), a = arrayOf(x);
        if (t == DType.FLOAT32) {
            float[] fo = (float[]) o, fa = (float[]) a;
            Rows.forEach(x.shape(), new Tensor[]{out, x}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> unaryF32(op, fo, o0, s0, fa, o1, s1, n));
            return out;
        }
        Rows.forEach(x.shape(), new Tensor[]{out, x}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
            for (int i = 0; i < n; i++) HostArrays.set(o, t, o0 + i * s0, ScalarMath.unary(op, HostArrays.get(a, t, o1 + i * s1)));
        });
        return out;
    }

    private static void unaryF32(UnaryOp op, float[] out, int oo, int os, float[] x, int xo, int xs, int n) {
        if (os == 1 && xs == 1 && unaryContiguousF32(op, out, oo, x, xo, n)) return;
        for (int i = 0; i < n; i++) out[oo + i * os] = (float) ScalarMath.unary(op, x[xo + i * xs]);
    }

    /** The fast paths over unit-stride rows; false where the op has none (the caller then loops over ScalarMath). */
    private static boolean unaryContiguousF32(UnaryOp op, float[] out, int oo, float[] x, int xo, int n) {
        return switch (op) {
            case NEG, ABS, RELU, STEP -> {
                int i = 0;
                for (; i <= n - F.length(); i += F.length()) lanes(op, FloatVector.fromArray(F, x, xo + i)).intoArray(out, oo + i);
                for (; i < n; i++) out[oo + i] = (float) ScalarMath.unary(op, x[xo + i]);
                yield true;
            }
            case EXP -> {
                for (int i = 0; i < n; i++) out[oo + i] = (float) Math.exp(x[xo + i]);
                yield true;
            }
            case GELU -> {
                int i = 0;
                for (; i <= n - F.length(); i += F.length()) gelu(FloatVector.fromArray(F, x, xo + i)).intoArray(out, oo + i);
                for (; i < n; i++) out[oo + i] = gelu(x[xo + i]);
                yield true;
            }
            case SIGMOID -> {
                sigmoidF32(out, oo, x, xo, n);
                yield true;
            }
            case TANH -> {
                tanhF32(out, oo, x, xo, n);
                yield true;
            }
            case SILU -> {
                sigmoidTimesF32(out, oo, x, xo, n, 1f, 0f);
                yield true;
            }
            case GELU_TANH -> {
                // 0.5·x·(1 + tanh(u)) = x·sigmoid(2u), u = sqrt(2/π)·(x + 0.044715·x³)
                sigmoidTimesF32(out, oo, x, xo, n, (float) (2 * Math.sqrt(2 / Math.PI)), 0.044715f);
                yield true;
            }
            case LOG, SQRT, SIGN, RECIPROCAL, NOT, SIN, COS -> false;
        };
    }

    // sigmoid, tanh, SiLU and GELU's tanh form from this file's exp (adds, multiplies, fmas and divides only, so compiled
    // and interpreted code agree), each in a method of its own: one exp to a compile (see sigmoid). They went through
    // the double ScalarMath one element at a time, 3-6x GELU's time.

    /**
     * sigmoid(x) from e = exp(-|x|) (never past exp's range): 1 / (1 + e), or e / (1 + e) below zero; RecurrentCpu's
     * cells use it too. The caller writes the exp, one to a loop: a helper holding one compiled large on its own, and
     * the LSTM cell's five in one method stopped C2 inlining (NodeCountInliningCutoff); either way sigmoid and tanh were
     * called with their vectors boxed in new arrays, and the cell took 13-14 ns an element, a 64 x 512 cell 0.45 ms.
     */
    static FloatVector sigmoid(FloatVector x, FloatVector e) {
        FloatVector s = E1.div(E1.add(e));
        return s.blend(e.mul(s), x.compare(VectorOperators.LT, 0f));
    }

    private static float sigmoid(float x, float e) {
        float s = 1f / (1f + e);
        return x < 0 ? e * s : s;
    }

    /** tanh(x) from e = exp(-2|x|): (1 - e) / (1 + e), signed as x (absolute error ~1e-7 near zero); the exp as sigmoid's. */
    static FloatVector tanh(FloatVector x, FloatVector e) {
        FloatVector t = E1.sub(e).div(E1.add(e));
        return t.blend(t.neg(), x.compare(VectorOperators.LT, 0f));
    }

    private static void sigmoidF32(float[] out, int oo, float[] x, int xo, int n) {
        int i = 0;
        for (; i <= n - F.length(); i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, xo + i);
            sigmoid(v, exp(v.abs().neg())).intoArray(out, oo + i);
        }
        for (; i < n; i++) out[oo + i] = sigmoid(x[xo + i], exp(-Math.abs(x[xo + i])));
    }

    /** x·sigmoid(a·(x + b·x³)): SiLU (a 1, b 0) and the tanh form of GELU. */
    private static void sigmoidTimesF32(float[] out, int oo, float[] x, int xo, int n, float a, float b) {
        int i = 0;
        for (; i <= n - F.length(); i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, xo + i), u = v.mul(v).mul(b).fma(v, v).mul(a);
            v.mul(sigmoid(u, exp(u.abs().neg()))).intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            float v = x[xo + i], u = Math.fma(v * v * b, v, v) * a;
            out[oo + i] = v * sigmoid(u, exp(-Math.abs(u)));
        }
    }

    /** Below this |x| tanh is its series to x^7 (error under 1e-12): (1 - e) / (1 + e) loses x's digits to cancellation there. */
    private static final float TANH_SERIES = 0.0625f;
    private static final FloatVector T3 = v(-1f / 3), T5 = v(2f / 15), T7 = v(-17f / 315), V_TANH_SERIES = v(TANH_SERIES);

    /** tanh from e = exp(-2|x|): (1 - e) / (1 + e), signed as x; its series near zero. */
    private static void tanhF32(float[] out, int oo, float[] x, int xo, int n) {
        int i = 0;
        for (; i <= n - F.length(); i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, x, xo + i), a = v.abs(), t = tanh(v, exp(a.mul(-2f)));
            FloatVector v2 = v.mul(v), p = v2.fma(v2.fma(T7, T5), T3), series = v.mul(v2).fma(p, v);
            // below 2^-12, x itself (x^3 / 3 is under half an ulp of x; and -0 stays -0)
            t = t.blend(series, a.compare(VectorOperators.LT, V_TANH_SERIES));
            t.blend(v, a.compare(VectorOperators.LT, 0x1p-12f)).intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            float v = x[xo + i], a = Math.abs(v), e = exp(-2f * a), t = (1f - e) / (1f + e), v2 = v * v;
            float p = Math.fma(v2, Math.fma(v2, -17f / 315, 2f / 15), -1f / 3);
            out[oo + i] = a < 0x1p-12f ? v : a < TANH_SERIES ? Math.fma(v * v2, p, v) : v < 0 ? -t : t;
        }
    }

    /** One vector of the lane-wise unary ops. */
    private static FloatVector lanes(UnaryOp op, FloatVector v) {
        return switch (op) {
            case NEG -> v.neg();
            case ABS -> v.abs();
            case RELU -> v.max(0f);
            case STEP -> FloatVector.zero(F).blend(1f, v.compare(VectorOperators.GT, 0f));
            case EXP, LOG, SQRT, SIGN, RECIPROCAL, SIGMOID, TANH, GELU, SILU, NOT, GELU_TANH, SIN, COS ->
                    throw new IllegalStateException("no lane-wise kernel for " + op);
        };
    }

    // ---- GELU in float32: x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2. The Vector API has no erf, and ScalarMath's
    // double series took a third of a GPT step on the CPU, so erfc comes from the Chebyshev fit of Numerical Recipes'
    // erfcc (fractional error below 1.2e-7 for every z >= 0; with float arithmetic about 1e-6 relative, within float32
    // tolerances of the double reference), written twice below: lanes and the scalar tail.

    private static final float SQRT1_2 = 0.70710677f, INV_SQRT_2PI = 0.3989423f;

    // exp(x) for x <= 1 from IEEE adds, multiplies and fmas only, in lanes and in the scalar tail alike: the Vector
    // API's lanewise EXP is the platform's vector library once compiled and Math.exp before, so one input could give
    // two results in one run. x = k ln2 + r (k rounded by the 1.5 * 2^23 trick, ln2 in two parts), e^r by its Taylor
    // series to r^7 (|r| <= ln2/2: relative error below 1e-8), 2^k put in the exponent bits; below -87, 0.
    private static final float LOG2E = 1.442695f, LN2_HI = 0.6931457519f, LN2_LO = 1.4286068e-6f, ROUNDER = 12582912f;

    /** The constants of exp and erfc as vectors, made once: fewer operations for C2 to inline in each kernel. */
    private static FloatVector v(float c) { return FloatVector.broadcast(F, c); }

    private static final FloatVector E7 = v(1f / 5040), E6 = v(1f / 720), E5 = v(1f / 120), E4 = v(1f / 24), E3 = v(1f / 6),
            E2 = v(0.5f), E1 = v(1f), V_LOG2E = v(LOG2E), V_ROUNDER = v(ROUNDER), V_LN2_HI = v(LN2_HI), V_LN2_LO = v(LN2_LO),
            V_MIN = v(-87f), V_ZERO = v(0f);
    private static final jdk.incubator.vector.IntVector BIAS = jdk.incubator.vector.IntVector.broadcast(jdk.incubator.vector.IntVector.SPECIES_PREFERRED, 127),
            EXPONENT = jdk.incubator.vector.IntVector.broadcast(jdk.incubator.vector.IntVector.SPECIES_PREFERRED, 1 << 23);

    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(V_MIN), k = c.fma(V_LOG2E, V_ROUNDER).sub(V_ROUNDER);
        FloatVector r = c.sub(k.mul(V_LN2_HI)).sub(k.mul(V_LN2_LO));   // k * LN2_HI is exact: LN2_HI has 16 significant bits
        FloatVector p = r.fma(E7, E6).fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, E1).fma(r, E1);
        jdk.incubator.vector.IntVector bits = ((jdk.incubator.vector.IntVector) k.convert(VectorOperators.F2I, 0)).add(BIAS).mul(EXPONENT);
        return p.mul(bits.reinterpretAsFloats()).blend(V_ZERO, x.compare(VectorOperators.LT, V_MIN));
    }

    static float exp(float x) {
        float c = Math.max(x, -87f), k = Math.fma(c, LOG2E, ROUNDER) - ROUNDER;
        float r = c - k * LN2_HI - k * LN2_LO;
        float p = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(r, 1f / 5040, 1f / 720), r, 1f / 120), r, 1f / 24), r, 1f / 6), r, 0.5f), r, 1f), r, 1f);
        float e = p * Float.intBitsToFloat(((int) k + 127) << 23);
        return x < -87f ? 0f : e;
    }

    private static final FloatVector C9 = v(0.17087277f), C8 = v(-0.82215223f), C7 = v(1.48851587f), C6 = v(-1.13520398f),
            C5 = v(0.27886807f), C4 = v(-0.18628806f), C3 = v(0.09678418f), C2 = v(0.37409196f), C1 = v(1.00002368f),
            C0 = v(-1.26551223f);

    /** erfc(z) for z >= 0 (NaN stays NaN, +inf gives 0). */
    private static FloatVector erfc(FloatVector z) {
        FloatVector t = E1.div(z.fma(E2, E1));
        FloatVector p = C9.fma(t, C8).fma(t, C7).fma(t, C6).fma(t, C5).fma(t, C4).fma(t, C3).fma(t, C2).fma(t, C1).fma(t, C0);
        return t.mul(exp(p.sub(z.mul(z))));
    }

    private static float erfc(float z) {
        float t = 1f / (1f + 0.5f * z), p = 0.17087277f;
        p = Math.fma(p, t, -0.82215223f);
        p = Math.fma(p, t, 1.48851587f);
        p = Math.fma(p, t, -1.13520398f);
        p = Math.fma(p, t, 0.27886807f);
        p = Math.fma(p, t, -0.18628806f);
        p = Math.fma(p, t, 0.09678418f);
        p = Math.fma(p, t, 0.37409196f);
        p = Math.fma(p, t, 1.00002368f);
        p = Math.fma(p, t, -1.26551223f);
        return t * exp(p - z * z);
    }

    /** Phi(x) from e = erfc(|x| / sqrt 2): 1 - e/2 for x >= 0, e/2 below. */
    private static FloatVector phi(FloatVector x, FloatVector e) {
        FloatVector half = e.mul(E2);
        return E1.sub(half).blend(half, x.compare(VectorOperators.LT, V_ZERO));
    }

    private static final FloatVector V_SQRT1_2 = v(SQRT1_2), V_INV_SQRT_2PI = v(INV_SQRT_2PI), V_MINUS_HALF = v(-0.5f);

    static FloatVector gelu(FloatVector x) { return x.mul(phi(x, erfc(x.abs().mul(V_SQRT1_2)))); }

    static float gelu(float x) {
        float e = 0.5f * erfc(Math.abs(x) * SQRT1_2);
        return x * (x < 0 ? e : 1 - e);
    }

    /** g * (Phi(x) + x * phi(x)), phi the normal density: GELU's backward (the two passes' operations in their order). */
    static float geluBackward(float g, float x) {
        float e = 0.5f * erfc(Math.abs(x) * SQRT1_2), density = exp(x * x * -0.5f) * INV_SQRT_2PI;
        return g * Math.fma(x, density, x < 0 ? e : 1 - e);
    }

    // ---------------------------------------------------------------- binary

    static Tensor binary(BinaryOp op, Tensor a, Tensor b) {
        DType t = a.dtype();
        DType outType = op.isComparison() || op == BinaryOp.AND || op == BinaryOp.OR ? DType.BOOL : t;
        Tensor out = unsetTensor(a.shape(), outType);
        Object o = arrayOf(out), x = arrayOf(a), y = arrayOf(b);
        if (t == DType.FLOAT32 && outType == DType.FLOAT32) {
            binaryF32Rows(op, out, a, b, (float[]) o, (float[]) x, (float[]) y);
            return out;
        }
        Rows.forEach(a.shape(), new Tensor[]{out, a, b}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
            for (int i = 0; i < n; i++) {
                double r = ScalarMath.binary(op, HostArrays.get(x, t, o1 + i * s1), HostArrays.get(y, t, o2 + i * s2));
                HostArrays.set(o, outType, o0 + i * s0, r);
            }
        });
        return out;
    }

    /**
     * out = a op b over float32 rows by binaryF32, b null for one value fy[0] broadcast (binaryScalar); GELU's backward
     * then gets its second pass, a lambda of its own: see geluPhiPass.
     */
    private static void binaryF32Rows(BinaryOp op, Tensor out, Tensor a, Tensor b, float[] fo, float[] fx, float[] fy) {
        boolean one = b == null;
        Tensor[] rows = one ? new Tensor[]{out, a} : new Tensor[]{out, a, b};
        Rows.forEach(a.shape(), rows, (n, o0, s0, o1, s1, o2, s2, o3, s3) ->
                binaryF32(op, fo, o0, s0, fx, o1, s1, fy, one ? 0 : o2, one ? 0 : s2, n));
        if (op == BinaryOp.GELU_BACKWARD) {
            Rows.forEach(a.shape(), rows, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
                if (vectorRow(s0, s1, one ? 0 : s2)) geluDensityPass(fo, o0, fx, o1, fy, one ? 0 : o2, one ? 0 : s2, n);
            });
        }
    }

    /** One row of binaryF32Rows (GELU's backward: its first pass only, or all of it where the row is not vectorRow's). */
    private static void binaryF32(BinaryOp op, float[] out, int oo, int os, float[] x, int xo, int xs, float[] y, int yo, int ys, int n) {
        boolean fast = vectorRow(os, xs, ys) && laneWise(op);
        if (fast && op == BinaryOp.GELU_BACKWARD) {
            geluPhiPass(out, oo, x, xo, y, yo, ys, n);
            return;
        }
        if (fast) {
            int i = 0;
            for (; i <= n - F.length(); i += F.length()) {
                FloatVector u = FloatVector.fromArray(F, x, xo + i);
                FloatVector v = ys == 0 ? FloatVector.broadcast(F, y[yo]) : FloatVector.fromArray(F, y, yo + i);
                FloatVector r = switch (op) {
                    case ADD -> u.add(v);
                    case SUB -> u.sub(v);
                    case MUL -> u.mul(v);
                    case DIV -> u.div(v);
                    case MAX -> u.max(v);
                    case MIN -> u.min(v);
                    case RELU_BACKWARD -> u.blend(0f, v.compare(VectorOperators.GT, 0f).not());
                    case GELU_BACKWARD, POW, EQ, NE, LT, LE, GT, GE, AND, OR, GELU_TANH_BACKWARD, SILU_BACKWARD ->
                            throw new IllegalStateException("no vector kernel for " + op);
                };
                r.intoArray(out, oo + i);
            }
            for (; i < n; i++) out[oo + i] = (float) ScalarMath.binary(op, x[xo + i], y[yo + i * ys]);
            return;
        }
        for (int i = 0; i < n; i++) out[oo + i * os] = (float) ScalarMath.binary(op, x[xo + i * xs], y[yo + i * ys]);
    }

    /**
     * out = g * GELU'(x) = g * (Phi(x) + x * phi(x)) in two vector passes, each run by its own lambda (so C2 compiles
     * each as a method of its own): Phi(x) into out, then the density and the rest. As one loop, or two in one method,
     * C2 did not inline all of its two exps and erfc and boxed every vector they made (JFR on a CPU GPT step: 5 GB of
     * vector objects in 60 steps, no other kernel close). The same operations in the same order as the scalar tail,
     * which the first pass finishes, so the same bits as one loop.
     */
    private static void geluPhiPass(float[] out, int oo, float[] g, int go, float[] x, int xo, int xs, int n) {
        int lanes = F.length(), vec = n - n % lanes;
        for (int i = 0; i < vec; i += lanes) {
            FloatVector v = xs == 0 ? FloatVector.broadcast(F, x[xo]) : FloatVector.fromArray(F, x, xo + i);
            phi(v, erfc(v.abs().mul(V_SQRT1_2))).intoArray(out, oo + i);
        }
        for (int i = vec; i < n; i++) out[oo + i] = geluBackward(g[go + i], x[xo + i * xs]);
    }

    /** Whether binaryF32's vector loops take a row: out and x unit-stride, y too or one value broadcast. */
    private static boolean vectorRow(int os, int xs, int ys) { return os == 1 && xs == 1 && (ys == 1 || ys == 0); }

    private static void geluDensityPass(float[] out, int oo, float[] g, int go, float[] x, int xo, int xs, int n) {
        int lanes = F.length(), vec = n - n % lanes;
        for (int i = 0; i < vec; i += lanes) {
            FloatVector v = xs == 0 ? FloatVector.broadcast(F, x[xo]) : FloatVector.fromArray(F, x, xo + i);
            FloatVector density = exp(v.mul(v).mul(V_MINUS_HALF)).mul(V_INV_SQRT_2PI);
            FloatVector.fromArray(F, g, go + i).mul(v.fma(density, FloatVector.fromArray(F, out, oo + i))).intoArray(out, oo + i);
        }
    }

    /** Whether binaryF32's vector loop has the op (comparisons never reach it: they produce bool). */
    private static boolean laneWise(BinaryOp op) {
        return switch (op) {
            case ADD, SUB, MUL, DIV, MAX, MIN, RELU_BACKWARD, GELU_BACKWARD -> true;
            case POW, EQ, NE, LT, LE, GT, GE, AND, OR, GELU_TANH_BACKWARD, SILU_BACKWARD -> false;
        };
    }

    static Tensor binaryScalar(BinaryOp op, Tensor a, double s, boolean scalarFirst) {
        DType t = a.dtype();
        DType outType = op.isComparison() || op == BinaryOp.AND || op == BinaryOp.OR ? DType.BOOL : t;
        Tensor out = unsetTensor(a.shape(), outType);
        Object o = arrayOf(out), x = arrayOf(a);
        if (t == DType.FLOAT32 && outType == DType.FLOAT32 && !scalarFirst && laneWise(op)) {
            binaryF32Rows(op, out, a, null, (float[]) o, (float[]) x, new float[]{(float) s});
            return out;
        }
        Rows.forEach(a.shape(), new Tensor[]{out, a}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
            for (int i = 0; i < n; i++) {
                double v = HostArrays.get(x, t, o1 + i * s1);
                double r = scalarFirst ? ScalarMath.binary(op, s, v) : ScalarMath.binary(op, v, s);
                HostArrays.set(o, outType, o0 + i * s0, r);
            }
        });
        return out;
    }

    /** Bytes a float32 vector's lanes of condition take (null where a float vector has fewer than 8 lanes). */
    private static final VectorSpecies<Byte> CONDITION = F.length() < 8 ? null
            : VectorSpecies.of(byte.class, VectorShape.forBitSize(F.length() * 8));

    /**
     * One row of where: vectors where out, the condition and each operand run along the row or the operand is one value
     * (a masked fill's value), else a scalar loop (a causal mask's fill was ~2% of a CPU GPT step as one).
     */
    private static void whereF32(float[] out, int oo, int os, byte[] c, int co, int cs, float[] x, int xo, int xs, float[] y, int yo, int ys, int n) {
        int i = 0;
        if (CONDITION != null && os == 1 && cs == 1 && xs <= 1 && ys <= 1) {
            for (; i <= n - F.length(); i += F.length()) {
                var take = ByteVector.fromArray(CONDITION, c, co + i).compare(VectorOperators.NE, (byte) 0).cast(F);
                FloatVector u = xs == 0 ? FloatVector.broadcast(F, x[xo]) : FloatVector.fromArray(F, x, xo + i);
                FloatVector v = ys == 0 ? FloatVector.broadcast(F, y[yo]) : FloatVector.fromArray(F, y, yo + i);
                v.blend(u, take).intoArray(out, oo + i);
            }
        }
        for (; i < n; i++) out[oo + i * os] = c[co + i * cs] != 0 ? x[xo + i * xs] : y[yo + i * ys];
    }

    static Tensor where(Tensor cond, Tensor a, Tensor b) {
        DType t = a.dtype();
        Tensor out = newTensor(a.shape(), t);
        byte[] c = (byte[]) arrayOf(cond);
        Object o = arrayOf(out), x = arrayOf(a), y = arrayOf(b);
        if (t == DType.FLOAT32) {
            float[] fo = (float[]) o, fx = (float[]) x, fy = (float[]) y;
            Rows.forEach(a.shape(), new Tensor[]{out, cond, a, b}, (n, o0, s0, o1, s1, o2, s2, o3, s3) ->
                    whereF32(fo, o0, s0, c, o1, s1, fx, o2, s2, fy, o3, s3, n));
            return out;
        }
        Rows.forEach(a.shape(), new Tensor[]{out, cond, a, b}, (n, o0, s0, o1, s1, o2, s2, o3, s3) -> {
            for (int i = 0; i < n; i++) {
                HostArrays.set(o, t, o0 + i * s0, c[o1 + i * s1] != 0 ? HostArrays.get(x, t, o2 + i * s2) : HostArrays.get(y, t, o3 + i * s3));
            }
        });
        return out;
    }
}
