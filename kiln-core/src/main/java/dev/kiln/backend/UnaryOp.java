package dev.kiln.backend;

/** Elementwise primitives of one input (their backward passes are {@link BinaryOp}s: RELU_BACKWARD, GELU_BACKWARD, ...). */
public enum UnaryOp {
    NEG, EXP, LOG, SQRT, ABS, SIGN, RECIPROCAL,
    /** max(x, 0); NaN stays NaN, as PyTorch's (every backend and fused epilogue alike; its backward passes no gradient there). */
    RELU,
    SIGMOID, TANH,
    /** GELU, exact (erf) form, as PyTorch's default. */
    GELU,
    /** GELU, tanh form: PyTorch's approximate="tanh", GPT-2's "gelu_new". */
    GELU_TANH,
    SILU,
    /** Sine and cosine (radians): positional encodings and rotary embeddings. */
    SIN, COS,
    /** 1 where x > 0 else 0 (relu's derivative). */
    STEP,
    NOT
}
