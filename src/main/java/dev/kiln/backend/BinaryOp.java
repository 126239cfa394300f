package dev.kiln.backend;

/** Elementwise primitives of two inputs of one shape and dtype. Comparisons produce bool. */
public enum BinaryOp {
    ADD, SUB, MUL, DIV, POW, MAX, MIN,
    EQ, NE, LT, LE, GT, GE,
    AND, OR;

    public boolean isComparison() {
        return switch (this) {
            case EQ, NE, LT, LE, GT, GE -> true;
            case ADD, SUB, MUL, DIV, POW, MAX, MIN, AND, OR -> false;
        };
    }
}
