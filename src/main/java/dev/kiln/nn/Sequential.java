package dev.kiln.nn;

import dev.kiln.Tensor;

import java.util.List;

/** Modules applied in order, named "0", "1", ... as in PyTorch, so names read {@code 3.weight}. */
public final class Sequential extends Module {
    private final int size;

    public Sequential(Module... layers) { this(List.of(layers)); }

    public Sequential(List<? extends Module> layers) {
        for (int i = 0; i < layers.size(); i++) registerModule(Integer.toString(i), layers.get(i));
        this.size = layers.size();
    }

    public int size() { return size; }

    public Module get(int i) { return child(Integer.toString(i)); }

    @Override public Tensor forward(Tensor x) {
        for (Module m : children().values()) x = m.forward(x);
        return x;
    }
}
