package dev.kiln.train;

import dev.kiln.Tensor;
import dev.kiln.optim.Adam;
import dev.kiln.optim.AdamW;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;

import java.util.List;

/** The optimizers the command line offers, each with a default learning rate that suits it. */
public enum OptimizerKind {
    ADAM(1e-3), ADAMW(1e-3), SGD(0.05);

    private final double defaultLr;

    OptimizerKind(double defaultLr) { this.defaultLr = defaultLr; }

    public double defaultLr() { return defaultLr; }

    public static OptimizerKind parse(String name) {
        for (OptimizerKind k : values()) if (k.name().equalsIgnoreCase(name)) return k;
        throw new IllegalArgumentException("unknown optimizer '" + name + "' (choose adam, adamw or sgd)");
    }

    /** Adam and AdamW with PyTorch's defaults; SGD with momentum 0.9. */
    public Optimizer create(List<Tensor> params, double lr) {
        return switch (this) {
            case ADAM -> new Adam(params, lr);
            case ADAMW -> new AdamW(params, lr);
            case SGD -> new dev.kiln.optim.SGD(params, lr, 0.9, 0, false);
        };
    }
}
