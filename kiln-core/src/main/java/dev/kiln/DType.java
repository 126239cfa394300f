package dev.kiln;

/** Element types of a tensor. bfloat16 and float16 are stored as raw 16-bit patterns on the CPU. */
public enum DType {
    FLOAT32("float32", 4, true),
    FLOAT64("float64", 8, true),
    BFLOAT16("bfloat16", 2, true),
    FLOAT16("float16", 2, true),
    INT64("int64", 8, false),
    INT32("int32", 4, false),
    UINT8("uint8", 1, false),
    BOOL("bool", 1, false);

    private final String label;
    private final int byteSize;
    private final boolean floating;

    DType(String label, int byteSize, boolean floating) {
        this.label = label;
        this.byteSize = byteSize;
        this.floating = floating;
    }

    public int byteSize() { return byteSize; }

    public boolean isFloating() { return floating; }

    /** The name PyTorch and safetensors use ("float32", ...). */
    public String label() { return label; }

    @Override public String toString() { return label; }

    /**
     * The type sums, statistics, softmax and normalisation parameters of this type are kept in: float64 for float64,
     * float32 for everything else (16-bit values lose too much in their own type, as in PyTorch's kernels).
     */
    public DType accumulation() { return this == FLOAT64 ? FLOAT64 : FLOAT32; }

    public static DType parse(String name) {
        for (DType t : values()) if (t.label.equalsIgnoreCase(name) || t.name().equalsIgnoreCase(name)) return t;
        throw new IllegalArgumentException("unknown dtype '" + name + "'");
    }

    /** The result type of a binary op between two tensors, as PyTorch's type promotion for these types. */
    public static DType promote(DType a, DType b) {
        if (a == b) return a;
        if (a.floating != b.floating) return a.floating ? a : b;
        if (a.floating) {
            if (a == FLOAT64 || b == FLOAT64) return FLOAT64;
            return FLOAT32; // bf16 with fp16, or either with fp32
        }
        if (a == BOOL) return b;
        if (b == BOOL) return a;
        return rank(a) >= rank(b) ? a : b;
    }

    private static int rank(DType t) {
        return switch (t) {
            case BOOL -> 0;
            case UINT8 -> 1;
            case INT32 -> 2;
            case INT64 -> 3;
            case FLOAT16, BFLOAT16 -> 4;
            case FLOAT32 -> 5;
            case FLOAT64 -> 6;
        };
    }
}
