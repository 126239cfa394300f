package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.autograd.Autocast;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The numeric precision of a training run ({@code kiln train --precision}). Parameters, optimizer state and
 * gradients stay float32 in every mode; what changes is where the forward pass computes.
 */
public enum Precision {
    /** float32 throughout (matmuls without TF32). */
    FP32,
    /** float32 with TF32 tensor cores in matrix products (10-bit mantissa inputs, float32 accumulation). */
    TF32,
    /** autocast to bfloat16: GEMMs and convolutions in bfloat16, softmax, norms and losses in float32. */
    BF16,
    /** autocast to float16 with dynamic loss scaling ({@link dev.kiln.amp.GradScaler}). */
    FP16;

    public String cliName() { return name().toLowerCase(Locale.ROOT); }

    public static Precision parse(String name) {
        for (Precision p : values()) if (p.cliName().equalsIgnoreCase(name)) return p;
        throw new IllegalArgumentException("unknown precision '" + name + "' (choose " + names() + ")");
    }

    public static String names() { return Arrays.stream(values()).map(Precision::cliName).collect(Collectors.joining(", ")); }

    /** The autocast dtype, or null when the forward pass runs in float32. */
    public DType autocastDType() {
        return switch (this) {
            case FP32, TF32 -> null;
            case BF16 -> DType.BFLOAT16;
            case FP16 -> DType.FLOAT16;
        };
    }

    /** A scope for the forward pass: autocast in this precision, or autocast off. */
    public Autocast autocast() {
        DType t = autocastDType();
        return t == null ? Autocast.disabled() : Autocast.enable(t);
    }

    /** Whether gradients need loss scaling (float16's narrow exponent range). */
    public boolean scalesLoss() {
        return switch (this) {
            case FP32, TF32, BF16 -> false;
            case FP16 -> true;
        };
    }
}
