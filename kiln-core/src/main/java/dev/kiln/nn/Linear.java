package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/** y = x W^T + b, with W (out, in) and b (out). */
public final class Linear extends Layer {
    private final int in, out;
    private final boolean bias;

    public Linear(int in, int out, Generator g) { this(in, out, true, g); }

    public Linear(int in, int out, boolean bias, Generator g) {
        if (in < 1 || out < 1) throw new IllegalArgumentException("Linear: sizes must be >= 1, got " + in + " -> " + out);
        this.in = in;
        this.out = out;
        this.bias = bias;
        resetParameters(g);
    }

    /** PyTorch's default: weight kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(in), 1/sqrt(in)). */
    public void resetParameters(Generator g) {
        registerParameter("weight", Init.kaimingUniformA5(g, out, in));
        if (bias) registerParameter("bias", Init.uniform(g, 1 / Math.sqrt(in), out));
    }

    @Override public Tensor forward(Tensor x) {
        return F.linear(x, parameter("weight"), bias ? parameter("bias") : null);
    }

    @Override protected String extraRepr() {
        return "in_features=" + in + ", out_features=" + out + ", bias=" + (bias ? "True" : "False");
    }
}
