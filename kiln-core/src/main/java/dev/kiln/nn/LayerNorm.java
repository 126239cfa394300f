package dev.kiln.nn;

import dev.kiln.Tensor;

import java.util.Arrays;

/** Normalises over the trailing dimensions given; weight 1 and bias 0 of that shape, eps 1e-5, as PyTorch. */
public final class LayerNorm extends Layer implements Forward {
    private final int[] normalizedShape;
    private final double eps;
    private final Tensor weight, bias; // null unless elementwise affine

    public LayerNorm(int... normalizedShape) { this(normalizedShape, 1e-5, true); }

    public LayerNorm(int[] normalizedShape, double eps, boolean affine) { this(normalizedShape, eps, affine, true); }

    /** As PyTorch's {@code LayerNorm(shape, eps, elementwise_affine, bias)}: without a bias, an affine layer norm keeps its weight only. */
    public LayerNorm(int[] normalizedShape, double eps, boolean affine, boolean bias) {
        if (normalizedShape.length == 0) throw new IllegalArgumentException("LayerNorm: normalizedShape must not be empty");
        this.normalizedShape = normalizedShape.clone();
        this.eps = eps;
        this.weight = affine ? registerParameter("weight", Init.ones(normalizedShape)) : null;
        this.bias = affine && bias ? registerParameter("bias", Init.zeros(normalizedShape)) : null;
    }

    /** Back to weight 1 and bias 0, in place. */
    public void resetParameters() {
        if (weight != null) Init.assign(weight, Init.ones(normalizedShape));
        if (bias != null) Init.assign(bias, Init.zeros(normalizedShape));
    }

    @Override public Tensor forward(Tensor x) { return F.layerNorm(x, normalizedShape, weight, bias, eps); }

    /**
     * The output for layers that compute in autocast's dtype: float32 x normalised straight into it under autocast
     * (no float32 output kept beside their cast copy), else {@link #forward(Tensor)}.
     */
    public Tensor forwardForAutocast(Tensor x) {
        dev.kiln.DType low = dev.kiln.autograd.Autocast.dtype();
        return low == null || x.dtype() != dev.kiln.DType.FLOAT32 ? forward(x) : F.layerNorm(x, normalizedShape, weight, bias, eps, low);
    }

    @Override protected String extraRepr() {
        return Arrays.toString(normalizedShape).replace('[', '(').replace(']', ')') + ", eps=" + eps + ", elementwise_affine=" + (weight != null ? "True" : "False");
    }
}
