package dev.kiln.backend;

/**
 * The 8-bit formats of quantized inference. Both carry their codes as uint8 tensors (Kiln has no 8-bit signed or float
 * dtype) and scale them the same way: one scale per weight row (output channel), one per input tensor.
 * {@code INT8}: symmetric integers ±127, products summed exactly in int32. {@code FP8_E4M3}: the codes of
 * {@link Fp8E4M3} (max 448), products summed in float32.
 */
public enum QuantFormat {
    INT8, FP8_E4M3;

    /** The largest code's magnitude, onto which a tensor's range is mapped. */
    public float max() { return this == INT8 ? 127f : 448f; }

    /** The name in checkpoints and on the command line. */
    public String cliName() { return this == INT8 ? "int8" : "fp8"; }
}
