package dev.kiln.nn;

import dev.kiln.Tensor;

/**
 * A whole network of one input: a {@link Layer} that is also a {@link Forward}. The zoo builds Models, and
 * {@code kiln train}, evaluation and checkpoint loading take them; {@link Sequential} is one, and so is a
 * user-written network that extends this class.
 */
public abstract class Model extends Layer implements Forward {
    private boolean channelsLast;

    /** For subclasses: register parameters and layers in the constructor. */
    protected Model() {}

    /**
     * Whether forward lays a 4-D input out channels-last (PyTorch's {@code model.to(memory_format=torch.channels_last)}
     * with the input converted too): on CUDA the activations then stay channels-last through convolutions, batch norm,
     * pooling and elementwise ops, the layout of cuDNN's fastest 16-bit kernels. The 4-D parameters (filters) are laid
     * out so too, in place ({@link Tensor#setData}; back to contiguous when off), as PyTorch does: a convolution then
     * takes its filter as cuDNN's KRSC filter and its gradient as cuDNN writes it, with no copy either way, and the
     * optimizers' state follows the layout. Values, state dicts and checkpoints do not change (they are in logical
     * order). Call it before building an optimizer or wrapping for data parallel. Returns this.
     */
    public Model channelsLast(boolean on) {
        channelsLast = on;
        Tensor.noGrad(() -> {
            for (Tensor p : parameters()) {
                if (p.dim() != 4 || (on ? p.isChannelsLast() : p.isContiguous())) continue;
                p.setData(on ? p.detach().toChannelsLast() : p.detach().contiguous());
            }
            return null;
        });
        return this;
    }

    public boolean channelsLast() { return channelsLast; }

    /** The input as forward should take it: channels-last when {@link #channelsLast(boolean)} asked for it. */
    protected Tensor input(Tensor x) { return channelsLast && x.dim() == 4 ? x.toChannelsLast() : x; }
}
