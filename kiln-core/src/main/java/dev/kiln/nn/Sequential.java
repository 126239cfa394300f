package dev.kiln.nn;

import dev.kiln.Tensor;

import java.util.List;

/**
 * Layers applied in order, named "0", "1", ... as in PyTorch, so names read {@code 3.weight}. Each must implement
 * {@link Forward} (take one tensor); a layer with several inputs goes inside a layer of your own that supplies
 * them. A {@link Conv2d} followed by a {@link ReLU} runs as one fused op (bias add and ReLU as the convolution's
 * epilogue, ReLU mask and bias gradient in one backward pass), and so does a {@link BatchNorm} followed by a
 * {@link ReLU} (and a {@link MaxPool2d} after those two): the same values and gradients as the layers, fewer passes
 * over memory.
 */
public final class Sequential extends Model {
    private final Forward[] layers;

    /** The layers in order; each must implement {@link Forward}. */
    public Sequential(Layer... layers) { this(List.of(layers)); }

    /** The layers in order; each must implement {@link Forward}. */
    public Sequential(List<? extends Layer> layers) {
        this.layers = new Forward[layers.size()];
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            if (!(l instanceof Forward f)) {
                throw new IllegalArgumentException("Sequential: layer " + i + " (" + l.getClass().getSimpleName() + ") does not implement Forward,"
                        + " so it cannot take the previous layer's output alone; call it from the forward of a layer of your own");
            }
            registerLayer(Integer.toString(i), l);
            this.layers[i] = f;
        }
    }

    /** How many layers. */
    public int size() { return layers.length; }

    /** Layer i. */
    public Layer get(int i) { return child(Integer.toString(i)); }

    @Override protected void replaced(String name, Layer layer) { layers[Integer.parseInt(name)] = (Forward) layer; }

    @Override public Tensor forward(Tensor x) {
        x = input(x);
        for (int i = 0; i < layers.length; i++) {
            int next = i + 1;
            if (layers[i] instanceof Conv2d && next < layers.length && layers[next] instanceof BatchNorm bn && bn.isFolded()) next++; // nothing left of it
            if (layers[i] instanceof Conv2d conv && next < layers.length && layers[next] instanceof ReLU) {
                x = conv.forward(x, true);
                i = next;
            } else if (layers[i] instanceof BatchNorm bn && i + 2 < layers.length && layers[i + 1] instanceof ReLU
                    && layers[i + 2] instanceof MaxPool2d pool) {
                x = bn.forwardReluMaxPool(x, pool);
                i += 2;
            } else if (layers[i] instanceof BatchNorm bn && i + 1 < layers.length && layers[i + 1] instanceof ReLU) {
                x = bn.forward(x, null, true);
                i++;
            } else {
                x = layers[i].forward(x);
            }
        }
        return x;
    }
}
