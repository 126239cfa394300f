package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/** Argument checks shared by the ops, each naming the op and the offending shapes, dtypes or devices. */
public final class Checks {
    private Checks() {}

    public static void sameDevice(String op, Tensor a, Tensor b) {
        if (!a.device().equals(b.device())) {
            throw new IllegalArgumentException(op + ": expected all tensors on one device, got " + a.device() + " and " + b.device());
        }
    }

    public static void floating(String op, Tensor t) {
        if (!t.dtype().isFloating()) throw new IllegalArgumentException(op + ": expected a floating tensor, got " + t.dtype());
    }

    public static void dtype(String op, String what, Tensor t, DType expected) {
        if (t.dtype() != expected) {
            throw new IllegalArgumentException(op + ": " + what + " must be " + expected + ", got " + t.dtype());
        }
    }

    public static void rank(String op, String what, Tensor t, int rank) {
        if (t.dim() != rank) {
            throw new IllegalArgumentException(op + ": expected " + what + " of rank " + rank + ", got shape " + Shape.str(t.shape()));
        }
    }

    public static int[] broadcast(String op, Tensor a, Tensor b) {
        int[] s = Shape.broadcast(a.shape(), b.shape());
        if (s == null) {
            throw new IllegalArgumentException(op + ": shapes " + Shape.str(a.shape()) + " and " + Shape.str(b.shape()) + " cannot be broadcast together");
        }
        return s;
    }
}
