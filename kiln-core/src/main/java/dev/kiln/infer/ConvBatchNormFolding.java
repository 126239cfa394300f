package dev.kiln.infer;

import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Sequential;

/**
 * Folds each batch norm that follows a convolution into it, for inference: the convolution's weight is scaled and its
 * bias shifted so that it alone gives what the two gave (see {@link dev.kiln.nn.BatchNorm#foldInto}). Kiln has no
 * traced graph, so "follows" is read from the layout: a {@link BatchNorm2d} right after a {@link Conv2d} in a
 * {@link Sequential}, and sibling layers named {@code convK} and {@code bnK} (torchvision's ResNet names, which the zoo
 * keeps). {@link Predictor} checks that the folded model gives the unfolded one's outputs, so a layer that broke the
 * naming rule is caught, not served.
 */
public final class ConvBatchNormFolding {
    private ConvBatchNormFolding() {}

    /** Folds every pair found in {@code model} (in place; the model must be in evaluation mode); returns how many. */
    public static int fold(Layer model) {
        if (model.isTraining()) throw new IllegalStateException("fold batch norms only into a model in evaluation mode (call eval() first)");
        int folded = 0;
        for (Layer layer : model.layers()) {
            if (layer instanceof Sequential s) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i) instanceof Conv2d conv && s.get(i + 1) instanceof BatchNorm2d bn) folded += fold(conv, bn);
                }
            }
            for (var child : layer.children().entrySet()) {
                String name = child.getKey();
                if (child.getValue() instanceof Conv2d conv && name.startsWith("conv")
                        && layer.children().get("bn" + name.substring(4)) instanceof BatchNorm2d bn) {
                    folded += fold(conv, bn);
                }
            }
        }
        return folded;
    }

    /** 1 when bn was folded into conv now, 0 when it was already (the ResNet stem is both a Sequential and named). */
    private static int fold(Conv2d conv, BatchNorm2d bn) {
        if (bn.isFolded()) return 0;
        bn.foldInto(conv);
        return 1;
    }
}
