package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.function.DoubleSupplier;

/** Fused multi-tensor Adam and SGD steps on CUDA (optim.cu): up to Launch.LIST_MAX tensors per launch. */
final class OptimCuda extends CudaFamily {
    private final Kernels.Table adamStep, sgdStep;

    OptimCuda(CudaBackend backend) {
        super(backend);
        adamStep = new Kernels.Table(dev, "optim.cu", "adam_step");
        sgdStep = new Kernels.Table(dev, "optim.cu", "sgd_step");
    }

    /** Chunk of a multi-tensor launch, in elements: MT_CHUNK of optim.cu. */
    private static final int LIST_CHUNK = 4096;

    /**
     * The pointers, sizes and chunk prefix sums of a multi-tensor step: operands[op].get(k) is operand op of
     * parameter k (null lists stay null pointers). Checks one float dtype, matching sizes, contiguity and device.
     */
    private record TensorLists(long[][] ptrs, long[] numel, int[] chunkStart, DType dtype) {}

    private TensorLists tensorLists(String op, List<Tensor> params, List<Tensor> a, List<Tensor> b, List<Tensor> c) {
        int n = params.size();
        DType dt = n == 0 ? DType.FLOAT32 : params.get(0).dtype();
        requireFloat(op, dt);
        List<List<Tensor>> operands = Arrays.asList(params, a, b, c);   // c (and b) may be null
        long[][] ptrs = new long[4][];
        long[] numel = new long[n];
        int[] chunkStart = new int[n + 1];
        for (int o = 0; o < 4; o++) {
            List<Tensor> list = operands.get(o);
            if (list == null) continue;
            if (list.size() != n) throw new IllegalArgumentException(op + ": " + n + " parameters but " + list.size() + " tensors in operand " + o);
            ptrs[o] = new long[n];
            for (int k = 0; k < n; k++) {
                Tensor t = list.get(k), p = params.get(k);
                if (t.dtype() != dt || t.numel() != p.numel() || !t.isContiguous()) {
                    throw new IllegalArgumentException(op + ": tensor " + k + " of operand " + o + " is " + t.dtype() + " " + Shape.str(t.shape())
                            + (t.isContiguous() ? "" : " (not contiguous)") + ", expected contiguous " + dt + " " + Shape.str(p.shape()));
                }
                ptrs[o][k] = ptr(t);
            }
        }
        for (int k = 0; k < n; k++) {
            numel[k] = params.get(k).numel();
            chunkStart[k + 1] = Math.toIntExact(chunkStart[k] + (numel[k] + LIST_CHUNK - 1) / LIST_CHUNK);
        }
        return new TensorLists(ptrs, numel, chunkStart, dt);
    }

    /** Blocks for a launch over chunks [from, from + count) of the lists: one per chunk, at most 16 per SM. */
    private int listGrid(TensorLists l, int from, int count) {
        return Math.max(1, Math.min(l.chunkStart()[from + count] - l.chunkStart()[from], dev.multiprocessorCount() * 16));
    }

    void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, DoubleSupplier lr,
                                   double beta1, double beta2, double eps, double weightDecay, boolean decoupled, long step) {
        TensorLists l = tensorLists("adam_step", params, grads, expAvg, expAvgSq);
        // the kernel computes the bias corrections for t = (step - 1) + 1, or inside a capture (step - 1) + replays so far,
        // and inside a capture reads the learning rate from the graph's live scalar
        long replay = dev.replayCounter(), lrLive = dev.liveScalar(lr);
        Kernels.Fn fn = adamStep.get(l.dtype());
        for (int from = 0; from < params.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, params.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count)
                    .f64(beta1).f64(beta2).f64(eps).f64(weightDecay).i32(decoupled ? 1 : 0)
                    .ptr(replay).ptr(lrLive).f64(lr.getAsDouble()).f64(step - 1)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }

    void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBufs, DoubleSupplier lr, double momentum,
                                  double dampening, double weightDecay, boolean nesterov, boolean first) {
        TensorLists l = tensorLists("sgd_step", params, grads, momentumBufs, null);
        long lrLive = dev.liveScalar(lr);
        Kernels.Fn fn = sgdStep.get(l.dtype());
        for (int from = 0; from < params.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, params.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count)
                    .ptr(lrLive).f64(lr.getAsDouble()).f64(momentum).f64(1 - dampening).f64(weightDecay)
                    .i32(nesterov ? 1 : 0).i32(first ? 1 : 0).i32(momentumBufs != null ? 1 : 0)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }
}
