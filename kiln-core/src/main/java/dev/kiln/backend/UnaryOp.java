package dev.kiln.backend;

/** Elementwise primitives of one input. The *_GRAD entries are the derivative f'(x), used by backward. */
public enum UnaryOp {
    NEG, EXP, LOG, SQRT, ABS, SIGN, RECIPROCAL,
    RELU, SIGMOID, TANH,
    /** GELU, exact (erf) form, as PyTorch's default. */
    GELU,
    /** GELU, tanh form: PyTorch's approximate="tanh", GPT-2's "gelu_new". */
    GELU_TANH,
    SILU,
    /** d gelu(x) / dx. */
    GELU_GRAD,
    /** d gelu_tanh(x) / dx. */
    GELU_TANH_GRAD,
    /** d silu(x) / dx. */
    SILU_GRAD,
    /** 1 where x > 0 else 0 (relu's derivative). */
    STEP,
    NOT
}
