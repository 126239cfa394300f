package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/** A lookup table: int64 ids (any shape) to rows of weight (num, dim); weight starts N(0, 1) as in PyTorch. */
public final class Embedding extends Layer {
    private final int num, dim;

    public Embedding(int num, int dim, Generator g) {
        if (num < 1 || dim < 1) throw new IllegalArgumentException("Embedding: sizes must be >= 1");
        this.num = num;
        this.dim = dim;
        resetParameters(g);
    }

    public void resetParameters(Generator g) { registerParameter("weight", Init.normal(g, num, dim)); }

    @Override public Tensor forward(Tensor ids) { return F.embedding(ids, parameter("weight")); }

    @Override protected String extraRepr() { return num + ", " + dim; }
}
