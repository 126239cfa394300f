package dev.kiln.quant;

import dev.kiln.Tensor;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.ops.Convolution;
import dev.kiln.ops.Matmul;

/**
 * A {@link Linear} or {@link Conv2d} trained as its int8 version will run (quantization-aware training): the input is
 * fake-quantized with the largest |x| seen in training so far (the range int8 calibration by max would find) and the
 * weight per output channel, both with {@link FakeQuantize}'s straight-through gradient. The float layer is shared,
 * not copied: an optimizer over its parameters trains it, and {@link QuantizedModel#convertQat} then gives the int8 model
 * with the ranges seen here.
 */
public final class FakeQuantized extends Layer implements Forward {
    private final Layer layer; // a Linear or a Conv2d
    private double range;      // max |x| of the inputs seen in training mode

    /** Wraps a Linear or a Conv2d. */
    public FakeQuantized(Layer layer) {
        if (!(layer instanceof Linear || layer instanceof Conv2d)) {
            throw new IllegalArgumentException("FakeQuantized wraps a Linear or a Conv2d, got " + layer.getClass().getSimpleName());
        }
        this.layer = registerLayer("layer", layer);
    }

    /** The float layer it trains. */
    public Layer layer() { return layer; }

    /** The input range seen so far (0 before any training step). */
    public double range() { return range; }

    @Override public Tensor forward(Tensor x) {
        if (isTraining()) range = Math.max(range, x.detach().abs().max().item());
        Tensor xq = FakeQuantize.perTensor(x, Int8.scaleFor(range));
        return switch (layer) {
            case Linear l -> Matmul.linear(xq, FakeQuantize.perChannel(l.weight(), FakeQuantize.channelScales(l.weight())), l.bias());
            case Conv2d c -> Convolution.conv2d(xq, FakeQuantize.perChannel(c.weight(), FakeQuantize.channelScales(c.weight())), c.bias(),
                    c.geometry(), false);
            default -> throw new IllegalStateException("checked in the constructor");
        };
    }
}
