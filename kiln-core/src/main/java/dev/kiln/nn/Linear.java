package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/** y = x W^T + b, with W (out, in) and b (out). */
public final class Linear extends Layer implements Forward {
    private final int in, out;
    private final Tensor weight, bias; // bias null without one

    public Linear(int in, int out, Generator g) { this(in, out, true, g); }

    public Linear(int in, int out, boolean bias, Generator g) {
        if (in < 1 || out < 1) throw new IllegalArgumentException("Linear: sizes must be >= 1, got " + in + " -> " + out);
        this.in = in;
        this.out = out;
        this.weight = registerParameter("weight", Init.kaimingUniformA5(g, out, in));
        this.bias = bias ? registerParameter("bias", Init.uniform(g, 1 / Math.sqrt(in), out)) : null;
    }

    /** Draws the parameters again, in place: PyTorch's default, weight kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(in), 1/sqrt(in)). */
    public void resetParameters(Generator g) {
        Init.assign(weight, Init.kaimingUniformA5(g, out, in));
        if (bias != null) Init.assign(bias, Init.uniform(g, 1 / Math.sqrt(in), out));
    }

    /** The weight, (out, in). */
    public Tensor weight() { return weight; }

    /** The bias, (out), or null. */
    public Tensor bias() { return bias; }

    @Override public Tensor forward(Tensor x) { return F.linear(x, weight, bias); }

    /** {@code residual + forward(x)} as one op: the sum is the only new tensor (see {@link F#linear(Tensor, Tensor, Tensor, Tensor)}). */
    public Tensor forward(Tensor x, Tensor residual) { return F.linear(x, weight, bias, residual); }

    @Override protected String extraRepr() {
        return "in_features=" + in + ", out_features=" + out + ", bias=" + (bias != null ? "True" : "False");
    }
}
