package dev.kiln.autograd;

import dev.kiln.DType;
import dev.kiln.Tensor;

/**
 * Automatic mixed precision for this thread, as PyTorch's {@code torch.autocast}:
 * {@code try (var ac = Autocast.enable(DType.BFLOAT16)) { loss = lossFn(model.forward(x), y); }}. Inside the
 * scope the ops {@link AutocastPolicy} lists as {@code LOW} cast their float32 inputs to the
 * autocast dtype (tensor-core GEMMs and convolutions), and those it lists as {@code FLOAT32} cast
 * 16-bit inputs up first (softmax, norms, sums, losses). The casts are ordinary differentiable ops, so float32
 * parameters receive float32 gradients. Backward runs with autocast off: each op's gradient runs in the dtypes its
 * forward used. Scopes nest; closing one restores what was in force before it.
 */
public final class Autocast implements AutoCloseable {
    /** The autocast dtype of this thread, or null when autocast is off (one slot, so scopes restore by value). */
    private static final ThreadLocal<DType[]> CURRENT = ThreadLocal.withInitial(() -> new DType[1]);

    private final DType[] slot;
    private final DType previous;
    private boolean closed;

    private Autocast(DType dtype) {
        this.slot = CURRENT.get();
        this.previous = slot[0];
        slot[0] = dtype;
    }

    /** Turns autocast on with bfloat16 or float16 as the low precision. */
    public static Autocast enable(DType lowPrecision) {
        if (lowPrecision != DType.BFLOAT16 && lowPrecision != DType.FLOAT16) {
            throw new IllegalArgumentException("autocast: the low precision must be bfloat16 or float16, got " + lowPrecision);
        }
        return new Autocast(lowPrecision);
    }

    /** A scope with autocast off (backward uses it; so can code that must run in float32 inside an autocast scope). */
    public static Autocast disabled() { return new Autocast(null); }

    public static boolean isEnabled() { return CURRENT.get()[0] != null; }

    /** The low precision in force on this thread, or null when autocast is off. */
    public static DType dtype() { return CURRENT.get()[0]; }

    /** x cast as the op's rule asks when autocast is on; x itself otherwise (and for null or non-float32 tensors). */
    public static Tensor cast(AutocastPolicy op, Tensor x) { return x == null ? null : x.to(castType(op, x)); }

    /** The dtype {@link #cast} gives x. */
    public static DType castType(AutocastPolicy op, Tensor x) {
        DType low = dtype();
        if (low == null) return x.dtype();
        return switch (op.precision()) {
            case LOW -> x.dtype() == DType.FLOAT32 ? low : x.dtype();
            case FLOAT32 -> x.dtype() == DType.BFLOAT16 || x.dtype() == DType.FLOAT16 ? DType.FLOAT32 : x.dtype();
        };
    }

    @Override public void close() {
        if (!closed) {
            closed = true;
            slot[0] = previous;
        }
    }
}
