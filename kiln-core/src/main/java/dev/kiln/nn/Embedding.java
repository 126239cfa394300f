package dev.kiln.nn;

import dev.kiln.Generator;
import dev.kiln.Tensor;

/** A lookup table: int64 ids (any shape) to rows of weight (num, dim); weight starts N(0, 1) as in PyTorch. */
public final class Embedding extends Layer implements Forward {
    private final int num, dim;
    private final Tensor weight;

    public Embedding(int num, int dim, Generator g) {
        if (num < 1 || dim < 1) throw new IllegalArgumentException("Embedding: sizes must be >= 1");
        this.num = num;
        this.dim = dim;
        this.weight = registerParameter("weight", Init.normal(g, num, dim));
    }

    /** Draws the table again from N(0, 1), in place. */
    public void resetParameters(Generator g) { Init.assign(weight, Init.normal(g, num, dim)); }

    /** The table, (num, dim). */
    public Tensor weight() { return weight; }

    @Override public Tensor forward(Tensor ids) { return F.embedding(ids, weight); }

    @Override protected String extraRepr() { return num + ", " + dim; }
}
