package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autograd;
import dev.kiln.autograd.GradMode;
import dev.kiln.backend.Backend;

import java.util.Arrays;
import java.util.function.Supplier;

import static dev.kiln.Backends.get;

/**
 * Losses, as PyTorch defines them: cross-entropy (class-index targets, label smoothing, ignore_index), NLL, mean
 * squared error and binary cross-entropy with logits. Built from differentiable ops except BCE, whose fused
 * backward is exact at x = 0 where the composite's relu/abs kinks are not, and 2-D float cross-entropy, which
 * takes the backend's fused kernel (two launches instead of a dozen; tests hold it to the composite).
 */
public final class Losses {
    private Losses() {}

    /** How a loss reduces over the batch. Declared in ops so ops needs nothing from nn; nn.F.Reduction maps onto it. */
    public enum Reduction { MEAN, SUM, NONE }

    // ---------------------------------------------------------------- cross-entropy and NLL

    /**
     * logits (N, C) or (N, C, d...) or (C); target int64 (N) or (N, d...) or (). Float32/float64 logits of shape
     * (N, C) take the backend's fused kernel (label smoothing and ignore_index included): per-row loss and
     * log-sum-exp forward, and one elementwise pass backward. Everything else takes the composite.
     */
    public static Tensor crossEntropy(Tensor logits, Tensor target, double labelSmoothing, int ignoreIndex, Reduction reduction) {
        if (labelSmoothing < 0 || labelSmoothing > 1) {
            throw new IllegalArgumentException("cross_entropy: label smoothing must be in [0, 1], got " + labelSmoothing);
        }
        Checks.floating("cross_entropy", logits);
        ClassRows rows = ClassRows.of("cross_entropy", logits, target);
        if (logits.dim() == 2 && (logits.dtype() == DType.FLOAT32 || logits.dtype() == DType.FLOAT64)) {
            Tensor perRow = fusedRows(logits, rows.target(), labelSmoothing, ignoreIndex);
            if (reduction == Reduction.MEAN) return meanOverKept(perRow, rows.target(), ignoreIndex);
            return reduce(perRow, () -> rows.target().eq(ignoreIndex), reduction, rows);
        }
        return composite(rows, labelSmoothing, ignoreIndex, reduction);
    }

    /** The reference the fused kernel must match (package-visible for its tests). */
    static Tensor crossEntropyComposite(Tensor logits, Tensor target, double labelSmoothing, int ignoreIndex, Reduction reduction) {
        return composite(ClassRows.of("cross_entropy", logits, target), labelSmoothing, ignoreIndex, reduction);
    }

    /**
     * Per-row losses from the fused kernel. Its backward keeps only the logits (already alive in the graph), the
     * target and the per-row log-sum-exp: O(N), where the composite keeps the (N, C) log-softmax.
     */
    private static Tensor fusedRows(Tensor logits, Tensor target, double smoothing, int ignoreIndex) {
        Backend be = get(logits.device());
        Tensor[] lossAndLse = be.crossEntropyRows(logits, target, smoothing, ignoreIndex);
        Tensor lse = lossAndLse[1];
        return Autograd.record("cross_entropy", lossAndLse[0], g -> new Tensor[]{
                be.crossEntropyRowsBackward(logits, target, lse, g, smoothing, ignoreIndex)}, logits);
    }

    /** MEAN over the rows not ignored in one backend pass; its gradient is g / count on every row (0 on ignored ones downstream). */
    private static Tensor meanOverKept(Tensor perRow, Tensor target, int ignoreIndex) {
        Tensor[] meanAndCount = get(perRow.device()).meanOverKept(perRow, target, ignoreIndex);
        Tensor count = meanAndCount[1];
        int[] shape = perRow.shape();
        return Autograd.record("mean", meanAndCount[0], g -> new Tensor[]{g.div(count).expand(shape)}, perRow);
    }

    private static Tensor composite(ClassRows rows, double labelSmoothing, int ignoreIndex, Reduction reduction) {
        Tensor logp = Softmax.logSoftmax(rows.scores(), 1);
        Tensor ignored = rows.target().eq(ignoreIndex);
        Tensor perRow = pick("cross_entropy", logp, rows.target(), ignored, ignoreIndex, rows.classes());
        if (labelSmoothing > 0) {
            // PyTorch: (1 - e) * nll + e / C * (-sum_c log p_c), ignored rows contributing 0 to both terms
            Tensor smooth = logp.sum(1, false).neg().maskedFill(ignored, 0.0);
            perRow = perRow.mul(1 - labelSmoothing).add(smooth.mul(labelSmoothing / rows.classes()));
        }
        return reduce(perRow, () -> ignored, reduction, rows);
    }

    public static Tensor nllLoss(Tensor logProbs, Tensor target, int ignoreIndex, Reduction reduction) {
        Checks.floating("nll_loss", logProbs);
        ClassRows rows = ClassRows.of("nll_loss", logProbs, target);
        Tensor ignored = rows.target().eq(ignoreIndex);
        Tensor nll = pick("nll_loss", rows.scores(), rows.target(), ignored, ignoreIndex, rows.classes());
        return reduce(nll, () -> ignored, reduction, rows);
    }

    /**
     * Scores reshaped to (rows, C) with the class dimension last, the target flattened to (rows), and the shape
     * a NONE reduction returns.
     */
    private record ClassRows(Tensor scores, Tensor target, int classes, int[] unreducedShape) {
        static ClassRows of(String op, Tensor scores, Tensor target) {
            if (target.dtype() != DType.INT64) {
                throw new IllegalArgumentException(op + ": target must be int64 class indices, got " + target.dtype()
                        + " (shape " + Shape.str(target.shape()) + ")");
            }
            Checks.sameDevice(op, scores, target);
            if (scores.dim() == 0) throw new IllegalArgumentException(op + ": input needs a class dimension, got a scalar");
            if (scores.dim() == 1) {
                // unbatched: (C) with a scalar target
                if (target.dim() != 0) {
                    throw new IllegalArgumentException(op + ": for input of shape " + Shape.str(scores.shape())
                            + " expected a scalar target, got shape " + Shape.str(target.shape()));
                }
                return new ClassRows(scores.unsqueeze(0), target.reshape(1), scores.shape()[0], new int[0]);
            }
            int[] s = scores.shape();
            int[] expected = new int[s.length - 1];
            expected[0] = s[0];
            System.arraycopy(s, 2, expected, 1, s.length - 2);
            if (!Arrays.equals(expected, target.shape())) {
                throw new IllegalArgumentException(op + ": expected target of shape " + Shape.str(expected) + " for input of shape "
                        + Shape.str(s) + " (N, C, d...), got " + Shape.str(target.shape()));
            }
            int c = s[1];
            Tensor rows = s.length == 2 ? scores : scores.permute(classDimLast(s.length));
            return new ClassRows(rows.reshape(-1, c), target.reshape(-1), c, expected);
        }
    }

    /** (0, 2, 3, ..., r-1, 1): moves the class dimension of (N, C, d...) last. */
    private static int[] classDimLast(int rank) {
        int[] p = new int[rank];
        for (int i = 1; i < rank - 1; i++) p[i] = i + 1;
        p[rank - 1] = 1;
        return p;
    }

    /** -scores[i, target[i]] per row, 0 where target == ignoreIndex (whose index may be out of range). */
    private static Tensor pick(String op, Tensor scores, Tensor target, Tensor ignored, int ignoreIndex, int classes) {
        Tensor safe = Tensor.where(ignored, Tensor.scalar(0, DType.INT64, target.device()), target);
        Tensor picked;
        try {
            picked = scores.gather(1, safe.unsqueeze(1)).squeeze(1);
        } catch (IndexOutOfBoundsException e) {
            throw new IndexOutOfBoundsException(op + ": target class out of range for " + classes + " classes (valid: 0.."
                    + (classes - 1) + " or ignore_index " + ignoreIndex + "): " + e.getMessage());
        }
        return picked.neg().maskedFill(ignored, 0.0);
    }

    /** MEAN divides by the number of rows not ignored (NaN when all are, as PyTorch); only MEAN needs the ignored mask. */
    private static Tensor reduce(Tensor perRow, Supplier<Tensor> ignored, Reduction reduction, ClassRows rows) {
        return switch (reduction) {
            case NONE -> perRow.reshape(rows.unreducedShape());
            case SUM -> perRow.sum();
            case MEAN -> perRow.sum().div(ignored.get().to(perRow.dtype()).rsub(1).sum());
        };
    }

    // ---------------------------------------------------------------- regression and binary losses

    public static Tensor mseLoss(Tensor input, Tensor target, Reduction reduction) {
        sameShape("mse_loss", input, target);
        Tensor d = input.sub(target);
        return reduceAll(d.mul(d), reduction);
    }

    /** Absolute error |input - target| (PyTorch's l1_loss; the gradient at 0 is 0). */
    public static Tensor l1Loss(Tensor input, Tensor target, Reduction reduction) {
        sameShape("l1_loss", input, target);
        return reduceAll(input.sub(target).abs(), reduction);
    }

    /**
     * PyTorch's smooth_l1_loss: 0.5 d^2 / beta where |d| is below beta, else |d| - 0.5 beta (d = input - target; beta 0: the
     * L1 loss). Huber's loss with delta is delta times this with beta = delta.
     */
    public static Tensor smoothL1Loss(Tensor input, Tensor target, Reduction reduction, double beta) {
        sameShape("smooth_l1_loss", input, target);
        if (!(beta >= 0) || Double.isInfinite(beta)) throw new IllegalArgumentException("smooth_l1_loss: beta must be finite and >= 0, got " + beta);
        Tensor d = input.sub(target), a = d.abs();
        Tensor loss = beta == 0 ? a : Tensor.where(a.lt(beta), d.mul(d).mul(0.5 / beta), a.sub(0.5 * beta));
        return reduceAll(loss, reduction);
    }

    /**
     * max(x, 0) - x t + log(1 + exp(-|x|)), which never overflows. The gradient is recorded directly:
     * d/dx = sigmoid(x) - t, d/dt = -x.
     */
    public static Tensor binaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction) {
        sameShape("binary_cross_entropy_with_logits", logits, target);
        Checks.floating("binary_cross_entropy_with_logits", logits);
        Tensor t = target.dtype() == logits.dtype() ? target : target.to(logits.dtype());
        Tensor loss;
        try (GradMode g = GradMode.disabled()) {
            loss = logits.relu().sub(logits.mul(t)).add(logits.abs().neg().exp().add(1).log());
        }
        Tensor out = Autograd.record("binary_cross_entropy_with_logits", loss, g -> new Tensor[]{
                logits.requiresGrad() ? g.mul(logits.sigmoid().sub(t)) : null,
                t.requiresGrad() ? g.mul(logits).neg() : null}, logits, t);
        return reduceAll(out, reduction);
    }

    private static void sameShape(String op, Tensor input, Tensor target) {
        Checks.sameDevice(op, input, target);
        if (!Arrays.equals(input.shape(), target.shape())) {
            throw new IllegalArgumentException(op + ": input shape " + Shape.str(input.shape()) + " and target shape "
                    + Shape.str(target.shape()) + " differ (broadcasting a loss is almost always a bug; reshape one of them)");
        }
    }

    private static Tensor reduceAll(Tensor loss, Reduction reduction) {
        return switch (reduction) {
            case NONE -> loss;
            case SUM -> loss.sum();
            case MEAN -> loss.mean();
        };
    }
}
