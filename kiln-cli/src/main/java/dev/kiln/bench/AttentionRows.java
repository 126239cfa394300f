package dev.kiln.bench;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;

import java.util.function.BiConsumer;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Kiln bench's attention rows: causal attention forward and backward, fused and composed, at the GPT workload's shape
 * (B 64, H 6, T 256, d 64) and at a larger model's (B 8, H 16, T 1024, d 128; 16-bit only: float32 past 64 is
 * composed). Not WORKLOADS.md rows: bench/torch_attention.py prints the same keys for PyTorch's
 * scaled_dot_product_attention.
 */
final class AttentionRows {
    private AttentionRows() {}

    /** Bench's timing of one call: mean seconds over iters calls after warm ones. */
    interface Timer {
        double perCall(Supplier<Object> fn, int iters, int warm);
    }

    static void run(Device device, Predicate<String> want, Timer timer, BiConsumer<String, Double> record) {
        for (int[] z : new int[][]{{64, 6, 256, 64}, {8, 16, 1024, 128}}) {
            for (DType t : z[3] > 64 ? new DType[]{DType.BFLOAT16} : new DType[]{DType.FLOAT32, DType.BFLOAT16}) {
                String key = "attention_b" + z[0] + "_h" + z[1] + "_t" + z[2] + "_d" + z[3] + "_" + (t == DType.FLOAT32 ? "fp32" : "bf16") + "_fwd_bwd_ms";
                if (!want.test(key)) continue;
                Tensor q = Tensor.randn(new Generator(5), z, DType.FLOAT32, device).to(t).requiresGrad(true);
                Tensor k = Tensor.randn(new Generator(6), z, DType.FLOAT32, device).to(t).requiresGrad(true);
                Tensor v = Tensor.randn(new Generator(7), z, DType.FLOAT32, device).to(t).requiresGrad(true);
                Tensor g = Tensor.randn(new Generator(8), z, DType.FLOAT32, device).to(t).keep();
                double s = timer.perCall(() -> {
                    F.scaledDotProductAttention(q, k, v, true).backward(g, false);
                    for (Tensor x : new Tensor[]{q, k, v}) x.zeroGrad();
                    return null;
                }, 50, 5);
                record.accept(key, Bench.round(s * 1e3, 3));
                // the same through the composite (the (T, T) scores in memory: cuBLAS products, masked fill, softmax)
                Tensor future = Tensor.arange(z[2], device).unsqueeze(0).gt(Tensor.arange(z[2], device).unsqueeze(1)).keep();
                double c = timer.perCall(() -> {
                    Tensor scores = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(z[3])).maskedFill(future, Double.NEGATIVE_INFINITY);
                    F.softmax(scores, -1).to(t).matmul(v).backward(g, false);
                    for (Tensor x : new Tensor[]{q, k, v}) x.zeroGrad();
                    return null;
                }, 50, 5);
                record.accept(key.replace("_fwd_bwd_ms", "_composite_fwd_bwd_ms"), Bench.round(c * 1e3, 3));
            }
        }
    }
}
