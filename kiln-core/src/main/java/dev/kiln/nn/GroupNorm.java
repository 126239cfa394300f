package dev.kiln.nn;

import dev.kiln.Tensor;

/**
 * Group norm of (N, C, *) (PyTorch's {@code nn.GroupNorm}): the channels in numGroups groups, each sample's group
 * normalised by its own statistics, then a weight (1) and bias (0) per channel; eps 1e-5.
 */
public final class GroupNorm extends Layer implements Forward {
    private final int numGroups, numChannels;
    private final double eps;
    private final Tensor weight, bias;   // null unless affine

    public GroupNorm(int numGroups, int numChannels) { this(numGroups, numChannels, 1e-5, true); }

    public GroupNorm(int numGroups, int numChannels, double eps, boolean affine) {
        if (numGroups < 1 || numChannels % numGroups != 0) {
            throw new IllegalArgumentException("GroupNorm: " + numChannels + " channels do not split into " + numGroups + " groups");
        }
        this.numGroups = numGroups;
        this.numChannels = numChannels;
        this.eps = eps;
        this.weight = affine ? registerParameter("weight", Init.ones(numChannels)) : null;
        this.bias = affine ? registerParameter("bias", Init.zeros(numChannels)) : null;
    }

    @Override public Tensor forward(Tensor x) { return F.groupNorm(x, numGroups, weight, bias, eps); }

    public int numGroups() { return numGroups; }

    public double eps() { return eps; }

    /** (C), or null without affine parameters. */
    public Tensor weight() { return weight; }

    /** (C), or null without affine parameters. */
    public Tensor bias() { return bias; }

    @Override protected String extraRepr() {
        return numGroups + ", " + numChannels + ", eps=" + eps + ", affine=" + (weight != null ? "True" : "False");
    }
}
