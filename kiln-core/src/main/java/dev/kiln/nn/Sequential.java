package dev.kiln.nn;

import dev.kiln.Tensor;

import java.util.List;

/**
 * Modules applied in order, named "0", "1", ... as in PyTorch, so names read {@code 3.weight}. A {@link Conv2d}
 * followed by a {@link ReLU} runs as one fused op (bias add and ReLU as the convolution's epilogue, ReLU mask and
 * bias gradient in one backward pass): the same values and gradients as the two layers, fewer passes over memory.
 */
public final class Sequential extends Layer {
    private final int size;
    private final Layer[] layers;

    public Sequential(Layer... layers) { this(List.of(layers)); }

    public Sequential(List<? extends Layer> layers) {
        for (int i = 0; i < layers.size(); i++) registerLayer(Integer.toString(i), layers.get(i));
        this.size = layers.size();
        this.layers = layers.toArray(new Layer[0]);
    }

    public int size() { return size; }

    public Layer get(int i) { return child(Integer.toString(i)); }

    @Override public Tensor forward(Tensor x) {
        for (int i = 0; i < layers.length; i++) {
            if (layers[i] instanceof Conv2d conv && i + 1 < layers.length && layers[i + 1] instanceof ReLU) {
                x = conv.forward(x, true);
                i++;
            } else {
                x = layers[i].forward(x);
            }
        }
        return x;
    }
}
