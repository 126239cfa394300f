package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;

/** Initialisers as in {@code torch.nn.init}; float32 on the CPU (move the module afterwards). */
public final class Init {
    private Init() {}

    /** U(-bound, bound). */
    public static Tensor uniform(Generator g, double bound, int... shape) {
        return Tensor.uniform(g, shape, -bound, bound, DType.FLOAT32, Device.CPU);
    }

    /** The inputs feeding one output: shape[1] times the receptive field (kernel size) for conv weights. */
    public static int fanIn(int[] weightShape) {
        int fan = weightShape.length > 1 ? weightShape[1] : weightShape[0];
        for (int i = 2; i < weightShape.length; i++) fan *= weightShape[i];
        return fan;
    }

    /**
     * PyTorch's default for Linear and Conv weights: kaiming_uniform_(w, a=sqrt(5)). The gain sqrt(2/(1+a^2)) is
     * sqrt(1/3), so the bound gain*sqrt(3/fan_in) is exactly 1/sqrt(fan_in).
     */
    public static Tensor kaimingUniformA5(Generator g, int... shape) {
        return uniform(g, 1 / Math.sqrt(fanIn(shape)), shape);
    }

    /**
     * kaiming_normal_(w, mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out), fan_out = shape[0] times the
     * receptive field. torchvision's ResNets initialise their convolutions so.
     */
    public static Tensor kaimingNormalFanOut(Generator g, int... shape) {
        int fanOut = shape[0];
        for (int i = 2; i < shape.length; i++) fanOut *= shape[i];
        double std = Math.sqrt(2.0 / fanOut);
        return Tensor.noGrad(() -> normal(g, shape).mul(std));
    }

    /**
     * xavier_uniform_(w): U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), fan_out = shape[0] times the receptive
     * field. nn.MultiheadAttention's in_proj_weight starts so.
     */
    public static Tensor xavierUniform(Generator g, int... shape) {
        int fanOut = shape[0];
        for (int i = 2; i < shape.length; i++) fanOut *= shape[i];
        return uniform(g, Math.sqrt(6.0 / (fanIn(shape) + fanOut)), shape);
    }

    /** N(0, std²): GPT-2's and nanoGPT's linear and embedding weights start from std 0.02. */
    public static Tensor normalWithStd(Generator g, double std, int... shape) {
        return Tensor.noGrad(() -> normal(g, shape).mul(std));
    }

    public static Tensor normal(Generator g, int... shape) {
        return Tensor.randn(g, shape, DType.FLOAT32, Device.CPU);
    }

    public static Tensor ones(int... shape) { return Tensor.ones(shape); }

    public static Tensor zeros(int... shape) { return Tensor.zeros(shape); }

    /**
     * Writes {@code values} into {@code target} in place, outside autograd, converting dtype and device (for
     * re-initialising a parameter that may have been moved: the tensor object stays). Returns target.
     */
    public static Tensor assign(Tensor target, Tensor values) {
        return Tensor.noGrad(() -> target.copyFrom(values.to(target.dtype())));
    }
}
