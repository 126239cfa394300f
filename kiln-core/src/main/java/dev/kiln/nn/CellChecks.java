package dev.kiln.nn;

import dev.kiln.Shape;
import dev.kiln.Tensor;

/** What {@link LSTMCell} and {@link GRUCell} share: the input check and the state's shape. */
final class CellChecks {
    private CellChecks() {}

    static void checkInput(String name, Tensor x, int inputSize) {
        if ((x.dim() != 1 && x.dim() != 2) || x.size(-1) != inputSize) {
            throw new IllegalArgumentException(name + ": expected input of shape (B, " + inputSize + ") or (" + inputSize + "), got "
                    + Shape.str(x.shape()));
        }
    }

    static Tensor zeros(Tensor like, int hidden) { return Tensor.zeros(new int[]{like.size(0), hidden}, like.dtype(), like.device()); }

    /** A given state as (B, H); it must be (H) for an unbatched input. */
    static Tensor state(String name, String what, Tensor s, boolean batched) {
        if (s == null) throw new IllegalArgumentException(name + ": the state's " + what + " is null (pass a null state for zeros)");
        if (s.dim() != (batched ? 2 : 1)) {
            throw new IllegalArgumentException(name + ": expected " + what + " of rank " + (batched ? 2 : 1) + " for "
                    + (batched ? "a batched" : "an unbatched") + " input, got shape " + Shape.str(s.shape()));
        }
        return batched ? s : s.unsqueeze(0);
    }
}
