package dev.kiln.nn;

import dev.kiln.Tensor;

import java.util.Arrays;

/**
 * RMS norm over the trailing dimensions given (PyTorch's {@code nn.RMSNorm}, LLaMA's): x / sqrt(mean(x^2) + eps)
 * times a weight of that shape (starting at 1). eps defaults to the machine epsilon of the input's dtype, as PyTorch's.
 */
public final class RMSNorm extends Layer implements Forward {
    private final int[] normalizedShape;
    private final double eps;
    private final Tensor weight;   // null unless elementwise affine

    public RMSNorm(int... normalizedShape) { this(normalizedShape, Double.NaN, true); }

    /** eps NaN: the input dtype's machine epsilon; affine false: no weight. */
    public RMSNorm(int[] normalizedShape, double eps, boolean affine) {
        if (normalizedShape.length == 0) throw new IllegalArgumentException("RMSNorm: normalizedShape must not be empty");
        this.normalizedShape = normalizedShape.clone();
        this.eps = eps;
        this.weight = affine ? registerParameter("weight", Init.ones(normalizedShape)) : null;
    }

    @Override public Tensor forward(Tensor x) { return F.rmsNorm(x, normalizedShape, weight, eps); }

    @Override protected String extraRepr() {
        return Arrays.toString(normalizedShape).replace('[', '(').replace(']', ')') + ", eps=" + (Double.isNaN(eps) ? "None" : eps)
                + ", elementwise_affine=" + (weight != null ? "True" : "False");
    }
}
