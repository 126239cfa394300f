package dev.kiln.cpu;

import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.UnaryOp;

/** The scalar definition of every elementwise primitive: the reference the vector paths and the GPU kernels match. */
final class ScalarMath {
    private ScalarMath() {}

    private static final double SQRT1_2 = 0.7071067811865476;
    private static final double INV_SQRT_2PI = 0.3989422804014327;
    private static final double SQRT_2_PI = 0.7978845608028654, GELU_TANH_C = 0.044715; // sqrt(2/pi), the cubic's coefficient

    static double unary(UnaryOp op, double x) {
        return switch (op) {
            case NEG -> -x;
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case ABS -> Math.abs(x);
            case SIGN -> Math.signum(x);
            case RECIPROCAL -> 1 / x;
            case RELU -> x <= 0 ? 0 : x;   // keeps NaN, as the vector lanes' max and PyTorch
            case SIGMOID -> 1 / (1 + Math.exp(-x));
            case TANH -> Math.tanh(x);
            case GELU -> 0.5 * x * (1 + erf(x * SQRT1_2));
            case GELU_TANH -> 0.5 * x * (1 + Math.tanh(SQRT_2_PI * (x + GELU_TANH_C * x * x * x)));
            case SILU -> x / (1 + Math.exp(-x));
            case SIN -> Math.sin(x);
            case COS -> Math.cos(x);
            case STEP -> x > 0 ? 1 : 0;
            case NOT -> x == 0 ? 1 : 0;
        };
    }

    static double binary(BinaryOp op, double a, double b) {
        return switch (op) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case POW -> Math.pow(a, b);
            case MAX -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.max(a, b);
            case MIN -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.min(a, b);
            case EQ -> a == b ? 1 : 0;
            case NE -> a != b ? 1 : 0;
            case LT -> a < b ? 1 : 0;
            case LE -> a <= b ? 1 : 0;
            case GT -> a > b ? 1 : 0;
            case GE -> a >= b ? 1 : 0;
            case AND -> a != 0 && b != 0 ? 1 : 0;
            case OR -> a != 0 || b != 0 ? 1 : 0;
            case RELU_BACKWARD -> b > 0 ? a : 0;
            case GELU_BACKWARD -> a * (0.5 * (1 + erf(b * SQRT1_2)) + b * INV_SQRT_2PI * Math.exp(-0.5 * b * b));
            case GELU_TANH_BACKWARD -> {
                double t = Math.tanh(SQRT_2_PI * (b + GELU_TANH_C * b * b * b));
                yield a * (0.5 * (1 + t) + 0.5 * b * (1 - t * t) * SQRT_2_PI * (1 + 3 * GELU_TANH_C * b * b));
            }
            case SILU_BACKWARD -> {
                double s = 1 / (1 + Math.exp(-b));
                yield a * (s * (1 + b * (1 - s)));
            }
        };
    }

    /** erf to double precision: a power series near zero, a continued fraction for erfc in the tails. */
    static double erf(double x) {
        double ax = Math.abs(x);
        if (ax < 2.5) {
            // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 80; n++) {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
            }
            double r = 1.1283791670955126 * sum;
            return x < 0 ? -r : r;
        }
        if (ax > 6) return x < 0 ? -1 : 1;
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated by Lentz's method
        double tiny = 1e-300, f = ax, c = ax, d = 0;
        for (int n = 1; n < 200; n++) {
            double an = n * 0.5;
            d = ax + an * d;
            d = Math.abs(d) < tiny ? tiny : d;
            c = ax + an / c;
            c = Math.abs(c) < tiny ? tiny : c;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.abs(delta - 1) < 1e-16) break;
        }
        double erfc = Math.exp(-ax * ax) / (f * 1.7724538509055159);
        return x < 0 ? erfc - 1 : 1 - erfc;
    }
}
