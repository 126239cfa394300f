package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.models.GPT;
import dev.kiln.nn.F;
import dev.kiln.nn.KvCache;
import dev.kiln.nn.MultiheadAttention;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

/**
 * The transformer layers on cuda:0 against the CPU: MultiheadAttention with PyTorch-convention masks (values,
 * averaged weights, gradients) and a small GPT, by a full pass and by steps over the key/value cache, whose in-place
 * writes into the cache's memory run on the device. TF32 off: float32 tolerances. Skips without a GPU.
 */
class TransformerGpuTest extends GpuBackendComparison {
    static boolean tf32;

    @BeforeAll static void requireGpu() {
        setUpGpu(TransformerGpuTest.class);
        tf32 = Cuda.allowTf32(GPU);
        Cuda.setAllowTf32(GPU, false);
    }

    @AfterAll static void restoreTf32() { Cuda.setAllowTf32(GPU, tf32); }

    @Test void multiheadAttentionWithMasks() {
        MultiheadAttention cpu = new MultiheadAttention(16, 4, true, true, new Generator(1));
        MultiheadAttention gpu = new MultiheadAttention(16, 4, true, true, new Generator(1)).to(GPU);
        // every query keeps a visible key (causal plus padding): a row that sees none is NaN in the composite's gradient
        // and 0 in the fused kernels', so such rows would compare the two paths, not the devices
        Tensor pad = Tensor.of(new double[]{0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0}, 2, 6).gt(0.5);
        Tensor attn = randn(DType.FLOAT32, 5, 6);
        for (boolean weights : new boolean[]{false, true}) {
            compareGraph("mha, weights " + weights, tol(DType.FLOAT32) * 10, in -> {
                boolean onGpu = in[0].device().equals(GPU);
                MultiheadAttention m = onGpu ? gpu : cpu;
                MultiheadAttention.Output o = m.forward(in[0], in[1], in[2], onGpu ? gpu(pad) : pad, onGpu ? gpu(attn) : attn, true, weights);
                return weights ? Tensor.cat(List.of(o.output(), o.weights()), -1) : o.output();
            }, randn(DType.FLOAT32, 2, 5, 16), randn(DType.FLOAT32, 2, 6, 16), randn(DType.FLOAT32, 2, 6, 16));
        }
    }

    @Test void gptFullPassAndCachedSteps() {
        GPT.Config c = new GPT.Config(37, 16, 2, 4, 32, 0, true, false, true, F.GeluApproximation.TANH, 1e-5);
        GPT cpu = new GPT(c, new Generator(2)).eval(), gpu = new GPT(c, new Generator(2)).eval().to(GPU);
        long[] v = new long[2 * 14];
        for (int i = 0; i < v.length; i++) v[i] = (i * 7 + 3) % 37;
        Tensor ids = Tensor.of(v, 2, 14);
        Tensor want = Tensor.noGrad(() -> cpu.forward(ids));
        close(want, Tensor.noGrad(() -> gpu.forward(ids.to(GPU))), tol(DType.FLOAT32) * 10, "gpt full pass");
        close(want, stepped(gpu, ids.to(GPU)), tol(DType.FLOAT32) * 10, "gpt cached steps");
    }

    /**
     * A training step's gradients of a transformer block on the GPU against the CPU: linear's fused bias and bias
     * gradient, the query/key/value split's one gradient buffer and the engine's early release of spent gradients,
     * in float32 and under bf16 autocast.
     */
    @Test void blockGradientsMatchTheCpu() {
        for (DType amp : new DType[]{null, DType.BFLOAT16}) {
            dev.kiln.nn.TransformerBlock cpu = new dev.kiln.nn.TransformerBlock(32, 4, true, 0, F.GeluApproximation.NONE, 1e-5, new Generator(3));
            dev.kiln.nn.TransformerBlock gpu = new dev.kiln.nn.TransformerBlock(32, 4, true, 0, F.GeluApproximation.NONE, 1e-5, new Generator(3)).to(GPU);
            Tensor x = randn(DType.FLOAT32, 3, 10, 32), w = randn(DType.FLOAT32, 3, 10, 32);
            Tensor xc = x.detach().requiresGrad(true), xg = gpu(x).requiresGrad(true);
            for (Object[] run : new Object[][]{{cpu, xc, w}, {gpu, xg, gpu(w)}}) {
                try (dev.kiln.autograd.Autocast ac = amp == null ? dev.kiln.autograd.Autocast.disabled() : dev.kiln.autograd.Autocast.enable(amp)) {
                    Tensor y = ((dev.kiln.nn.TransformerBlock) run[0]).forward((Tensor) run[1]).to(DType.FLOAT32);
                    ac.close();
                    y.mul((Tensor) run[2]).sum().backward();
                }
            }
            double tl = amp == null ? 1e-3 : 1e-1;   // bf16: the GPU's fused attention against the CPU's composite
            String what = "block " + (amp == null ? "float32" : "bf16 autocast");
            close(xc.grad(), xg.grad(), tl, what + ": input gradient");
            var gp = gpu.namedParameters();
            cpu.namedParameters().forEach((name, p) -> close(p.grad(), gp.get(name).grad(), tl, what + ": gradient of " + name));
        }
    }

    private static Tensor stepped(GPT m, Tensor ids) {
        return Tensor.noGrad(() -> {
            try (KvCache cache = m.newCache()) {
                List<Tensor> parts = new ArrayList<>();
                parts.add(m.forward(ids.narrow(1, 0, 5), cache));
                parts.add(m.forward(ids.narrow(1, 5, 3), cache));
                for (int t = 8; t < ids.size(1); t++) parts.add(m.forward(ids.narrow(1, t, 1), cache));
                return Tensor.cat(parts, 1);
            }
        });
    }
}
