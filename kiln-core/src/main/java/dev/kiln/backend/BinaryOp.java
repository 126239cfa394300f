package dev.kiln.backend;

/** Elementwise primitives of two inputs of one shape and dtype. Comparisons produce bool. */
public enum BinaryOp {
    ADD, SUB, MUL, DIV, POW, MAX, MIN,
    EQ, NE, LT, LE, GT, GE,
    AND, OR,
    /** a where b > 0, else 0: relu's backward in one pass (a the incoming gradient, b relu's input). */
    RELU_BACKWARD,
    /** a · gelu'(b): the exact GELU's backward in one pass (a the incoming gradient, b GELU's input). */
    GELU_BACKWARD,
    /** a · gelu_tanh'(b): the tanh-form GELU's backward in one pass. */
    GELU_TANH_BACKWARD,
    /** a · silu'(b): SiLU's backward in one pass. */
    SILU_BACKWARD;

    public boolean isComparison() {
        return switch (this) {
            case EQ, NE, LT, LE, GT, GE -> true;
            case ADD, SUB, MUL, DIV, POW, MAX, MIN, AND, OR, RELU_BACKWARD, GELU_BACKWARD, GELU_TANH_BACKWARD, SILU_BACKWARD -> false;
        };
    }
}
