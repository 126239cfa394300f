package dev.kiln.autograd;

import dev.kiln.Tensor;

/**
 * One recorded op in the autograd graph: the op's name, the inputs that may need a gradient and the function
 * that maps the output's gradient to the inputs' gradients. The function captures what the op saved for
 * backward; {@link #release()} drops it so those tensors can be freed once backward has used them.
 */
public final class Node {
    /** Maps the gradient of the op's output to one gradient per input (null where an input needs none). */
    @FunctionalInterface
    public interface Backward {
        Tensor[] apply(Tensor gradOutput);
    }

    private final String op;
    private Tensor[] inputs;
    private Backward backward;

    public Node(String op, Tensor[] inputs, Backward backward) {
        this.op = op;
        this.inputs = inputs;
        this.backward = backward;
    }

    public String op() { return op; }

    public Tensor[] inputs() { return inputs; }

    Tensor[] apply(Tensor grad) {
        if (backward == null) {
            throw new IllegalStateException("backward through '" + op + "' a second time: the graph was freed by the "
                    + "first backward; pass retainGraph=true to the first call if you need to backward twice");
        }
        return backward.apply(grad);
    }

    /** Drops the saved tensors and the links to the inputs, so a kept output does not pin the step's graph. */
    void release() {
        backward = null;
        inputs = new Tensor[0];
    }
}
