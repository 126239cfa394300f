package dev.kiln.cpu;

import dev.kiln.DType;

/** The dtypes the fused kernels take (Backend's fused section); the op layer falls back to the composite for others. */
final class DTypeChecks {
    private DTypeChecks() {}

    static void requireFloat(String op, DType t) {
        if (t != DType.FLOAT32 && t != DType.FLOAT64) throw new IllegalArgumentException(op + ": fused kernel takes float32 or float64, got " + t);
    }

    static void requireAnyFloat(String op, DType t) {
        if (!t.isFloating()) throw new IllegalArgumentException(op + ": fused kernel takes a floating-point tensor, got " + t);
    }
}
