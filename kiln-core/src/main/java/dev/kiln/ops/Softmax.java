package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.backend.Backend;

import static dev.kiln.Backends.get;

/** softmax and log_softmax along one dimension: the backend's stable kernel, and its backward from the output. */
public final class Softmax {
    private Softmax() {}

    public static Tensor softmax(Tensor x, int dim) { return apply(x, dim, false); }

    public static Tensor logSoftmax(Tensor x, int dim) { return apply(x, dim, true); }

    private static Tensor apply(Tensor x, int dim, boolean log) {
        String op = log ? "log_softmax" : "softmax";
        int d = Shape.dim(dim, x.dim(), op);
        if (!x.dtype().isFloating()) x = Elementwise.cast(x, DType.FLOAT32);
        x = Autocast.cast(log ? AutocastPolicy.LOG_SOFTMAX : AutocastPolicy.SOFTMAX, x);
        Backend be = get(x.device());
        Tensor y = be.softmax(x, d, log);
        return Autograd.record(op, y, g -> new Tensor[]{be.softmaxBackward(g, y, d, log)}, x);
    }
}
