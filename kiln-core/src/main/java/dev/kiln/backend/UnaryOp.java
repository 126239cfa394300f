package dev.kiln.backend;

/** Elementwise primitives of one input. The *_GRAD entries are the derivative f'(x), used by backward. */
public enum UnaryOp {
    NEG, EXP, LOG, SQRT, ABS, SIGN, RECIPROCAL,
    RELU, SIGMOID, TANH,
    /** GELU, exact (erf) form, as PyTorch's default. */
    GELU,
    SILU,
    /** d gelu(x) / dx. */
    GELU_GRAD,
    /** d silu(x) / dx. */
    SILU_GRAD,
    /** 1 where x > 0 else 0 (relu's derivative). */
    STEP,
    NOT
}
